"""Quality without labels, on generated data whose label rule is known.

The label is drawn from a fixed logistic (binary) or softmax (three classes) rule of the
features. A covariate shift draws the window's `x0` from another distribution with the same rule:
the model's accuracy really changes, and the estimate must follow it. A concept shift keeps the
features and flips the labels: the estimate cannot see it (the documented assumption).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score
from threadpoolctl import threadpool_limits

from tabserve.monitoring.drift import VERDICT_QUALITY, DriftResult
from tabserve.monitoring.estimated_quality import (
    MAX_KNOTS,
    calibrate,
    estimate_quality,
    fit_calibration,
    judge_estimate,
    probability_matrix,
)

WINDOW_ROWS = 5_000
TOLERANCE = 0.03  # |estimated - realized| on 5,000 rows (measured: at most 0.013)
ALLOWED_DROP = 0.05
WEIGHTS = np.array([[4.0, -1.5, 1.0, 0, 0], [0, 1.5, -1.0, 2.0, 0], [-2.0, 0, 0, -1.5, 1.5]])


def draw(
    rows: int, seed: int, classes: int, x0_mean: float = 0.0, x0_sd: float = 1.0, flip: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (rows, WEIGHTS.shape[1]))
    x[:, 0] = rng.normal(x0_mean, x0_sd, rows)
    if classes == 2:
        y = (rng.random(rows) < 1 / (1 + np.exp(-(x @ WEIGHTS[0])))).astype(int)
    else:
        logits = np.exp(x @ WEIGHTS.T)
        y = (rng.random((rows, 1)) < (logits / logits.sum(axis=1, keepdims=True)).cumsum(axis=1)).argmax(1)
    return x, (classes - 1) - y if flip else y


def realized(y: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """The metrics as `training.evaluation` computes them."""
    predicted = proba.argmax(axis=1)
    binary = proba.shape[1] == 2
    return {
        "accuracy": accuracy_score(y, predicted),
        "f1": f1_score(y, predicted, average="binary" if binary else "macro"),
        "roc_auc": roc_auc_score(y, proba[:, 1]) if binary else roc_auc_score(y, proba, multi_class="ovr"),
    }


@pytest.fixture(scope="module", autouse=True)
def one_native_thread() -> Iterator[None]:
    """OpenMP's spinning threads on a shared 2-core machine: fitting took 13 s instead of 0.4 s."""
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module", params=[2, 3], ids=["binary", "multiclass"])
def trained(request: pytest.FixtureRequest) -> dict[str, Any]:
    """A model, its calibration on a held-out split, and the held-out metrics (as at training)."""
    classes = request.param
    x_train, y_train = draw(6_000, 0, classes)
    x_held, y_held = draw(5_000, 1, classes)
    model = HistGradientBoostingClassifier(max_iter=60, random_state=0).fit(x_train, y_train)
    proba = model.predict_proba(x_held)
    calibration = json.loads(json.dumps(fit_calibration(proba, y_held, list(range(classes)))))
    return {
        "model": model,
        "classes": classes,
        "calibration": calibration,
        "training": realized(y_held, proba),
    }


@pytest.mark.parametrize(
    "shift",
    [{}, {"x0_sd": 0.2}, {"x0_mean": 1.5}, {"x0_mean": 0.3, "x0_sd": 0.3}],
    ids=["none", "x0-narrow", "x0-moved", "x0-moved-narrow"],
)
def test_estimate_tracks_realized_quality_under_covariate_shift(
    trained: dict[str, Any], shift: dict[str, Any]
) -> None:
    x, y = draw(WINDOW_ROWS, 7, trained["classes"], **shift)
    proba = trained["model"].predict_proba(x)
    truth, estimate = realized(y, proba), estimate_quality(proba, trained["calibration"])
    for metric in ("accuracy", "f1", "roc_auc"):
        assert estimate[metric] == pytest.approx(truth[metric], abs=TOLERANCE), (metric, truth, estimate)


def test_a_covariate_shift_that_costs_accuracy_raises_the_alarm(trained: dict[str, Any]) -> None:
    x, y = draw(WINDOW_ROWS, 8, trained["classes"], x0_sd=0.2)  # x0, the strongest feature, near 0
    proba = trained["model"].predict_proba(x)
    assert trained["training"]["accuracy"] - realized(y, proba)["accuracy"] > 0.05  # a real drop
    judged = judge_estimate(
        estimate_quality(proba, trained["calibration"]), trained["training"], "accuracy", ALLOWED_DROP, len(x)
    )
    assert judged is not None and judged.degraded
    result = DriftResult(
        current_rows=len(x), reference_rows=5_000, dataset_drift=False, estimated_quality=judged
    )
    assert result.alarm and result.verdict == VERDICT_QUALITY  # an estimated drop is a quality cause


def test_the_same_distribution_does_not(trained: dict[str, Any]) -> None:
    x, _ = draw(WINDOW_ROWS, 9, trained["classes"])
    estimate = estimate_quality(trained["model"].predict_proba(x), trained["calibration"])
    judged = judge_estimate(estimate, trained["training"], "accuracy", ALLOWED_DROP, len(x))
    assert judged is not None and not judged.degraded


def test_concept_shift_is_invisible_to_the_estimate(trained: dict[str, Any]) -> None:
    """The documented failure: same features, flipped labels. Realized accuracy collapses; the
    estimate, which only sees the features, stays at the training level and raises nothing."""
    x, flipped = draw(WINDOW_ROWS, 10, trained["classes"], flip=True)
    proba = trained["model"].predict_proba(x)
    assert trained["training"]["accuracy"] - realized(flipped, proba)["accuracy"] > 0.4
    estimate = estimate_quality(proba, trained["calibration"])
    judged = judge_estimate(estimate, trained["training"], "accuracy", ALLOWED_DROP, len(x))
    assert judged is not None and not judged.degraded
    assert estimate["accuracy"] == pytest.approx(trained["training"]["accuracy"], abs=TOLERANCE)


def test_calibration_is_small_plain_json_with_non_decreasing_curves(trained: dict[str, Any]) -> None:
    calibration = trained["calibration"]
    assert calibration["method"] == "isotonic"
    assert len(calibration["curves"]) == (1 if trained["classes"] == 2 else 3)
    for curve in calibration["curves"]:
        assert 1 <= len(curve["x"]) == len(curve["y"])  # the cap: the 400,000-row test below
        assert np.all(np.diff(curve["x"]) >= 0) and np.all(np.diff(curve["y"]) >= 0)
        assert curve["y"][0] >= 0 and curve["y"][-1] <= 1
    assert len(json.dumps(calibration)) < 20_000


def test_a_curve_with_more_steps_than_the_cap_is_thinned_to_it() -> None:
    """The fixture's curves have ~70 knots; 400,000 held-out rows give an isotonic fit with more
    steps than MAX_KNOTS, so the cap itself is exercised (and the thinned curve still calibrates)."""
    rng = np.random.default_rng(0)
    scores = rng.uniform(size=400_000)
    labels = (rng.uniform(size=scores.size) < scores).astype(int)  # already calibrated: P(1) = score
    full = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(scores, labels)
    assert len(full.X_thresholds_) > MAX_KNOTS
    (curve,) = fit_calibration(np.column_stack([1 - scores, scores]), labels, [0, 1])["curves"]
    assert len(curve["x"]) == len(curve["y"]) == MAX_KNOTS
    ends = (full.X_thresholds_[0], full.X_thresholds_[-1])
    assert (curve["x"][0], curve["x"][-1]) == pytest.approx(ends, abs=1e-5)  # stored to 6 decimals
    grid = np.linspace(0, 1, 1_001)
    gap = np.abs(np.interp(grid, curve["x"], curve["y"]) - full.predict(grid))
    assert gap.max() < 0.05 and gap.mean() < 0.005  # thinning moves a step edge, not the curve


def test_calibrated_rows_are_probabilities(trained: dict[str, Any]) -> None:
    x, _ = draw(500, 11, trained["classes"])
    calibrated = calibrate(trained["model"].predict_proba(x), trained["calibration"])
    assert np.allclose(calibrated.sum(axis=1), 1) and calibrated.min() >= 0


def test_an_overconfident_model_is_estimated_by_its_calibration_not_its_confidence() -> None:
    """Probabilities of 0.99 that are right 70% of the time: the estimate says 0.7, not 0.99."""
    rng = np.random.default_rng(0)
    score = rng.uniform(0.9, 1.0, 4_000)
    proba = np.column_stack([1 - score, score])
    truth = (rng.random(4_000) < 0.7).astype(int)
    calibration = fit_calibration(proba, truth, [0, 1])
    assert estimate_quality(proba, calibration)["accuracy"] == pytest.approx(0.7, abs=0.03)


def test_judging_needs_the_metric_on_both_sides() -> None:
    assert judge_estimate({"accuracy": 0.8}, {"f1": 0.9}, "accuracy", 0.05, 100) is None
    assert judge_estimate({"accuracy": 0.8}, {"accuracy": 0.9}, "roc_auc", 0.05, 100) is None
    judged = judge_estimate({"accuracy": 0.86}, {"accuracy": 0.9}, "accuracy", 0.05, 100)
    assert judged is not None and not judged.degraded


def test_logged_probabilities_become_a_matrix_in_the_model_class_order() -> None:
    rows = [{"yes": 0.8, "no": 0.2}, None, {"no": 0.6, "yes": 0.4}]
    assert probability_matrix(rows, ["no", "yes"]).tolist() == [[0.2, 0.8], [0.6, 0.4]]
    assert probability_matrix([], ["no", "yes"]).shape == (0, 2)
    assert estimate_quality(np.empty((0, 2)), {"curves": [{"x": [0.0], "y": [0.0]}]}) == {}
