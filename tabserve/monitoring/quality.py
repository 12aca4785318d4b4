"""Quality on feedback labels: accuracy (classifiers) or MAE (regressors), and whether it dropped.

Kept apart from `drift` (which loads Evidently) so the service can judge rollouts without it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.metrics import accuracy_score, mean_absolute_error

from tabserve.cleaning import label_text
from tabserve.predictor import PREDICTION_COLUMN, TARGET_COLUMN

LABEL_COLUMN = "label"


@dataclass
class Quality:
    metric: str
    reference: float
    current: float | None
    labelled: int
    degraded: bool | None  # None: not enough labels for a verdict


def quality_metric(truth: pd.Series, predicted: pd.Series, classifier: bool) -> tuple[str, float]:
    """Accuracy (classifiers) or MAE (regressors) of predictions against the truth."""
    if classifier:
        return "accuracy", float(accuracy_score(truth.map(label_text), predicted.map(label_text)))
    return "mae", float(mean_absolute_error(truth.astype(float), predicted.astype(float)))


def quality(reference: pd.DataFrame, current: pd.DataFrame, classifier: bool, min_labels: int) -> Quality:
    labelled = current[current[LABEL_COLUMN].notna()]
    metric, ref_value = quality_metric(reference[TARGET_COLUMN], reference[PREDICTION_COLUMN], classifier)
    if len(labelled) < min_labels:
        return Quality(metric, ref_value, None, len(labelled), None)
    _, cur_value = quality_metric(labelled[LABEL_COLUMN], labelled[PREDICTION_COLUMN], classifier)
    return Quality(metric, ref_value, cur_value, len(labelled), None)


def judge_quality(result: Quality, allowed_drop: float) -> Quality:
    if result.current is None:
        return result
    if result.metric == "accuracy":
        degraded = result.reference - result.current > allowed_drop
    else:  # error metric: a relative rise is the drop in quality
        degraded = result.current > result.reference * (1 + allowed_drop)
    return Quality(result.metric, result.reference, result.current, result.labelled, degraded)


def outcome_scores(frame: pd.DataFrame, classifier: bool) -> np.ndarray:
    """Per labelled row: 1/0 correct (classifiers) or the absolute error (regressors)."""
    labelled = frame[frame[LABEL_COLUMN].notna()]
    if classifier:
        return (labelled["prediction"].map(label_text) == labelled[LABEL_COLUMN].map(label_text)).to_numpy(
            dtype=float
        )
    errors = labelled["prediction"].astype(float) - labelled[LABEL_COLUMN].astype(float)
    return errors.abs().to_numpy()


def significance(a: np.ndarray, b: np.ndarray, classifier: bool) -> tuple[float, str]:
    """Two-sided p-value of the difference in quality, and the test's name."""
    if classifier:
        pooled = (a.sum() + b.sum()) / (len(a) + len(b))
        spread = math.sqrt(pooled * (1 - pooled) * (1 / len(a) + 1 / len(b)))
        if spread == 0:
            return 1.0, "two-proportion z-test"
        z = (b.mean() - a.mean()) / spread
        return float(2 * stats.norm.sf(abs(z))), "two-proportion z-test"
    result = stats.ttest_ind(a, b, equal_var=False)
    return float(result.pvalue), "Welch t-test on absolute errors"


def worse_beyond_margin_p(
    champion: np.ndarray, candidate: np.ndarray, classifier: bool, margin: float
) -> float:
    """One-sided p-value that the candidate is worse than the champion by more than the margin.

    A non-inferiority test: accuracy lower by more than `margin` (classifiers), or MAE higher by
    more than `margin` relatively (regressors). A small p means a real, too large drop; chance
    differences between two equally good models do not produce one.
    """
    if classifier:
        gap = (champion.mean() - margin) - candidate.mean()
        variance = champion.var() / len(champion) + candidate.var() / len(candidate)
    else:
        gap = candidate.mean() - champion.mean() * (1 + margin)
        variance = candidate.var(ddof=1) / len(candidate) + (1 + margin) ** 2 * champion.var(ddof=1) / len(
            champion
        )
    if variance == 0:
        return 0.0 if gap > 0 else 1.0
    return float(stats.norm.sf(gap / math.sqrt(variance)))
