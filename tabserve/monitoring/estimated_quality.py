"""Quality without labels: a classifier's accuracy, F1 and ROC AUC estimated from its probabilities.

Confidence-based performance estimation (CBPE, as NannyML names it). At training, one isotonic
curve per class maps the model's probability to the observed frequency of that class on the
held-out split (binary: the positive class only; multiclass: one-vs-rest, then each row
normalised). The curves are stored with the model as plain numbers (`calibration` in its
metadata), never a pickle. On a live window, with calibrated probabilities `p`:

- accuracy: the mean of `p` of the predicted class;
- F1 (the definition of `training.evaluation`: the positive class's for binary, macro for
  multiclass): from the expected confusion matrix, tp = sum of p_k over rows predicted k,
  fp = rows predicted k - tp, fn = sum of p_k over the other rows;
- ROC AUC: rows ranked by the model's own score, each counted as positive with weight p_k and
  negative with 1 - p_k (expected TPR and FPR at every threshold); multiclass: one-vs-rest, macro.

The one assumption: the relationship between features and label is the one seen at training
(covariate shift only). A window drawn from another part of the feature space is estimated
well (tests: within 0.03 of the realized accuracy on 5,000 rows, a realized drop of ~0.15
followed); labels that change for the same features (concept shift) are invisible to it: the
estimate stays at the training level while realized accuracy collapses (a test shows that too).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import roc_auc_score

if TYPE_CHECKING:
    from tabserve.model_store import StoredModel

CALIBRATION_KEY = "calibration"  # the model's metadata key
METHOD = "isotonic"
MAX_KNOTS = 256  # points kept per curve (measured: ~70 on 5,000 held-out rows; bounds model.yaml)
DECIMALS = 6
ESTIMATED_METRICS = ("accuracy", "f1", "roc_auc")


def fit_calibration(proba: np.ndarray, y_true: npt.ArrayLike, classes: Sequence[Any]) -> dict[str, Any]:
    """Isotonic curves from held-out probabilities and labels, as JSON-able metadata."""
    truth = np.asarray(y_true)
    columns = [len(classes) - 1] if len(classes) == 2 else range(len(classes))
    curves = []
    for column in columns:
        fitted = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
        fitted.fit(proba[:, column], (truth == classes[column]).astype(float))
        x, y = _thin(fitted.X_thresholds_, fitted.y_thresholds_)
        curves.append({"x": _rounded(x), "y": _rounded(y)})
    return {"method": METHOD, "classes": [str(c) for c in classes], "curves": curves}


def _thin(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """At most MAX_KNOTS knots, evenly spaced along the curve (ends kept; still non-decreasing)."""
    if len(x) <= MAX_KNOTS:
        return x, y
    keep = np.unique(np.linspace(0, len(x) - 1, MAX_KNOTS).round().astype(int))
    return x[keep], y[keep]


def _rounded(values: np.ndarray) -> list[float]:
    return [round(float(value), DECIMALS) for value in values]


def calibrate(proba: np.ndarray, calibration: dict[str, Any]) -> np.ndarray:
    """The model's probabilities (rows x classes, the model's class order) -> calibrated ones."""
    curves = calibration["curves"]
    if len(curves) == 1:  # binary: the positive class's curve
        positive = np.interp(proba[:, -1], curves[0]["x"], curves[0]["y"])
        return np.column_stack([1.0 - positive, positive])
    if len(curves) != proba.shape[1]:
        raise ValueError(f"calibration has {len(curves)} curves for {proba.shape[1]} classes")
    calibrated = np.column_stack(
        [np.interp(proba[:, k], curve["x"], curve["y"]) for k, curve in enumerate(curves)]
    )
    total = calibrated.sum(axis=1, keepdims=True)
    # A row every curve maps to 0 keeps the model's own probabilities (no information to use).
    return np.where(total > 0, calibrated / np.where(total > 0, total, 1.0), proba)


def expected_accuracy(calibrated: np.ndarray, predicted: np.ndarray) -> float:
    return float(calibrated[np.arange(len(calibrated)), predicted].mean())


def _expected_f1(calibrated: np.ndarray, predicted: np.ndarray, column: int) -> float:
    chosen = predicted == column
    tp = calibrated[chosen, column].sum()
    fp = chosen.sum() - tp
    fn = calibrated[~chosen, column].sum()
    denominator = 2 * tp + fp + fn
    return float(2 * tp / denominator) if denominator > 0 else 0.0


def expected_f1(calibrated: np.ndarray, predicted: np.ndarray) -> float:
    """The positive (last) class's F1 for binary, macro F1 for multiclass: as at training."""
    classes = calibrated.shape[1]
    if classes == 2:
        return _expected_f1(calibrated, predicted, 1)
    return float(np.mean([_expected_f1(calibrated, predicted, k) for k in range(classes)]))


def _expected_auc(score: np.ndarray, positive: np.ndarray) -> float | None:
    """Each row once as a positive (weight p) and once as a negative (weight 1 - p)."""
    if positive.sum() <= 0 or (1 - positive).sum() <= 0:
        return None
    labels = np.r_[np.ones(len(score)), np.zeros(len(score))]
    return float(roc_auc_score(labels, np.r_[score, score], sample_weight=np.r_[positive, 1 - positive]))


def expected_roc_auc(proba: np.ndarray, calibrated: np.ndarray) -> float | None:
    """Ranked by the model's own score, weighted by the calibrated probability; OvR macro."""
    if proba.shape[1] == 2:
        return _expected_auc(proba[:, 1], calibrated[:, 1])
    per_class = [_expected_auc(proba[:, k], calibrated[:, k]) for k in range(proba.shape[1])]
    known = [value for value in per_class if value is not None]
    return float(np.mean(known)) if len(known) == len(per_class) else None


def estimate_quality(proba: np.ndarray, calibration: dict[str, Any]) -> dict[str, float]:
    """Estimated accuracy, F1 and ROC AUC of a window of the model's probabilities (no labels)."""
    if len(proba) == 0:
        return {}
    calibrated = calibrate(proba, calibration)
    predicted = proba.argmax(axis=1)  # the model's own answer (`Predictor`), not the calibrated one
    values = {
        "accuracy": expected_accuracy(calibrated, predicted),
        "f1": expected_f1(calibrated, predicted),
        "roc_auc": expected_roc_auc(proba, calibrated),
    }
    return {name: round(value, DECIMALS) for name, value in values.items() if value is not None}


@dataclass(frozen=True)
class EstimatedQuality:
    metric: str  # the one judged (`monitoring.estimated_metric`)
    reference: float  # its held-out value at training
    estimated: float
    values: dict[str, float]  # every estimated metric
    rows: int
    degraded: bool


def judge_estimate(
    values: dict[str, float], training: dict[str, float], metric: str, allowed_drop: float, rows: int
) -> EstimatedQuality | None:
    """Degraded when the estimate is more than `allowed_drop` below the training metric.

    None when the metric was not estimated or not measured at training.
    """
    if metric not in values or metric not in training:
        return None
    reference, estimated = float(training[metric]), values[metric]
    return EstimatedQuality(metric, reference, estimated, values, rows, reference - estimated > allowed_drop)


def probability_matrix(rows: Iterable[dict[str, float] | None], classes: Sequence[Any]) -> np.ndarray:
    """Logged probabilities ({str(class): p} per row) -> rows x classes in the model's order.

    Rows without probabilities are left out.
    """
    keys = [str(c) for c in classes]
    present = [row for row in rows if row]
    return np.array([[float(row[key]) for key in keys] for row in present], dtype=float).reshape(
        len(present), len(keys)
    )


def window_probabilities(stored: StoredModel, window: pd.DataFrame) -> np.ndarray | None:
    """The model's probabilities for the window's features, re-scored (rows x classes).

    None for a regressor, a model trained before calibration was stored, or an empty window.
    """
    if stored.metadata.get(CALIBRATION_KEY) is None or window.empty:
        return None
    predictor = stored.load_predictor()
    return predictor.predict_frame(window)[predictor.output_columns[1:]].to_numpy(dtype=float)


def expected_correct(proba: np.ndarray, calibration: dict[str, Any]) -> np.ndarray:
    """Per row, the calibrated probability that the model's answer is right: its mean is the
    estimated accuracy (the dashboard averages it per run, quality_series.py)."""
    return calibrate(proba, calibration)[np.arange(len(proba)), proba.argmax(axis=1)]


def estimate_for_window(
    stored: StoredModel, proba: np.ndarray, metric: str, allowed_drop: float
) -> EstimatedQuality | None:
    """The drift job's hook: estimate from the window's probabilities (`window_probabilities`), judge."""
    training = dict(stored.metadata.get("metrics", {}))
    values = estimate_quality(proba, stored.metadata[CALIBRATION_KEY])
    return judge_estimate(values, training, metric, allowed_drop, len(proba))
