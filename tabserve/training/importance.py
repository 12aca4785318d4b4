"""Per-feature permutation importance on the held-out split, measured at training, stored with the model.

The drift alarm weighs each feature by it (monitoring/alarm.py): a shift in a feature the model
leans on matters, a shift in one it ignores does not. Permutation importance is measured on the
raw features through the whole Pipeline (a categorical feature is one feature, not its one-hot
columns), on rows the model was not fitted on, with scikit-learn's `permutation_importance`.

Metric: log loss for classifiers (it moves with every probability, where accuracy on a small
held-out split moves in steps of 1/rows and leaves most features at 0), R² for regressors.
Importance is the mean loss of score over the repeats; a negative mean (noise) counts as 0.

Correlated features share their importance: shuffling one leaves the others to carry the signal,
so each looks less important than the group. The alarm's importance-weighted share is therefore
a floor for a group that drifts together (it usually does), and the unweighted share rule stays.

Cost is bounded by `training.importance_rows` (held-out rows used) and `training.importance_repeats`
(shuffles per feature): features x repeats predictions of at most that many rows. Measured with the
defaults (2,000 rows, 5 repeats) on this 2-core machine: see README "Training" for the figures.
"""

from __future__ import annotations

import time
from typing import Any

import pandas as pd
from sklearn.inspection import permutation_importance
from sklearn.metrics import log_loss
from threadpoolctl import threadpool_limits

METRIC_LOG_LOSS, METRIC_R2 = "log_loss", "r2"


def _neg_log_loss(estimator: Any, features: pd.DataFrame, target: pd.Series) -> float:
    """Higher is better (scikit-learn's convention); every class named, whichever are in the sample."""
    return -float(log_loss(target, estimator.predict_proba(features), labels=estimator.classes_))


def measure_importance(
    pipeline: Any,
    features: pd.DataFrame,
    target: pd.Series,
    classifier: bool,
    rows: int,
    repeats: int,
    random_state: int,
) -> dict[str, Any]:
    """What goes into the model's metadata: per-feature mean and spread, and how it was measured."""
    if len(features) > rows:
        sampled = features.sample(rows, random_state=random_state)
        features, target = sampled, target.loc[sampled.index]
    started = time.perf_counter()
    # One native thread: the predictions are small, and OpenMP's threads cost more than they give
    # there (a 143-row predict_proba: 5.5 ms on one thread, 71 ms on two on a busy 2-core machine).
    with threadpool_limits(limits=1):
        result = permutation_importance(
            pipeline,
            features,
            target,
            scoring=_neg_log_loss if classifier else METRIC_R2,
            n_repeats=repeats,
            random_state=random_state,
            n_jobs=1,
        )
    seconds = time.perf_counter() - started
    names = [str(name) for name in features.columns]

    def per_feature(values: Any) -> dict[str, float]:
        return {name: round(float(value), 6) for name, value in zip(names, values, strict=True)}

    return {
        "method": "permutation",
        "metric": METRIC_LOG_LOSS if classifier else METRIC_R2,
        "rows": len(features),
        "repeats": repeats,
        "seconds": round(seconds, 3),
        "mean": {
            name: round(float(value), 6) for name, value in zip(names, result.importances_mean, strict=True)
        },
        "std": {
            name: round(float(value), 6) for name, value in zip(names, result.importances_std, strict=True)
        },
    }
