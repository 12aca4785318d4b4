"""Champion against challenger on the same held-out rows: one paired comparison per metric.

Every statistic is paired: both models answer the same rows, so a test or an interval looks at
the per-row differences, which vary far less than either model's own results. Intervals are
percentile intervals of the paired bootstrap (bootstrap.py); the primary metric also has an exact
or a classical test. All p-values are one-sided, for "the challenger is better", because that is
the only claim a retraining loop acts on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from tabserve.retraining.bootstrap import RankedScores, percentile_interval, resampled_counts, weighted_auc

ACCURACY, LOG_LOSS, ROC_AUC, MAE, RMSE = "accuracy", "log_loss", "roc_auc", "mae", "rmse"
MCNEMAR_TEST = "McNemar exact (one-sided)"
PAIRED_T_TEST = "paired t-test on absolute errors (one-sided)"
DEFAULT_RESAMPLES = 2000
# 1 - alpha for the default alpha 0.05: the decision reads the worse end of the interval as a
# one-sided test of non-inferiority, at 2.5% here. The percentile bootstrap is only first-order
# accurate in one tail: at 1 - 2 * alpha (5% one-sided) a skewed loss measured 6% at the margin.
DEFAULT_CONFIDENCE = 0.95
PROBABILITY_FLOOR = float(np.finfo(np.float64).eps)  # as scikit-learn's log_loss clips


@dataclass(frozen=True)
class MetricComparison:
    """One metric of both models on the same rows; `difference` is challenger - champion."""

    metric: str
    champion: float
    challenger: float
    difference: float
    low: float  # interval of the difference (NaN when no bootstrap replicate could measure it)
    high: float
    p_value: float | None  # one-sided, for "the challenger is better"; None: no test, interval only
    test: str
    higher_is_better: bool
    primary: bool = False
    confidence: float = DEFAULT_CONFIDENCE
    interval_method: str = ""
    discordant: tuple[int, int] | None = None  # McNemar: (only the challenger right, only the champion)
    rows: int = 0

    @property
    def improvement(self) -> float:
        """The difference oriented so that positive means the challenger is better."""
        return self.difference if self.higher_is_better else -self.difference

    @property
    def improvement_interval(self) -> tuple[float, float]:
        """The interval of `improvement`: (worse end, better end)."""
        return (self.low, self.high) if self.higher_is_better else (-self.high, -self.low)


def bootstrap_name(resamples: int) -> str:
    return f"paired bootstrap, {resamples:,} resamples"


@dataclass(frozen=True)
class _Replicates:
    """What every comparison of one call shares: the bootstrap's settings and the row count."""

    confidence: float
    resamples: int
    rows: int

    def compare(
        self,
        metric: str,
        values: tuple[float, float],
        replicates: np.ndarray,
        higher_is_better: bool,
        p_value: float | None = None,
        test: str | None = None,
        discordant: tuple[int, int] | None = None,
    ) -> MetricComparison:
        """A secondary metric has an interval only; the primary one also has its test."""
        method = bootstrap_name(self.resamples)
        return MetricComparison(
            metric,
            *values,
            values[1] - values[0],
            *percentile_interval(replicates, self.confidence),
            p_value,
            test or method,
            higher_is_better,
            primary=test is not None,
            confidence=self.confidence,
            interval_method=method,
            discordant=discordant,
            rows=self.rows,
        )


def _bootstrap(
    rows: int, resamples: int, seed: int, per_row: np.ndarray, ranked: list[RankedScores]
) -> tuple[np.ndarray, np.ndarray]:
    """Per replicate: the means of `per_row`'s columns and each ranked model's ROC AUC."""
    if resamples < 1:
        raise ValueError(f"the bootstrap needs at least one resample, got {resamples}")
    means, aucs = [], []
    for counts in resampled_counts(rows, resamples, seed):
        means.append(counts @ per_row / rows)
        aucs.append(np.column_stack([weighted_auc(counts, scores) for scores in ranked] or [counts[:, :0]]))
    return np.vstack(means), np.vstack(aucs)


def _class_positions(y_true: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Each label's column in the probabilities; a label outside `classes` is an error."""
    sorter = np.argsort(classes, kind="stable")
    found = np.clip(np.searchsorted(classes, y_true, sorter=sorter), 0, len(classes) - 1)
    positions = sorter[found]
    unknown = classes[positions] != y_true
    if unknown.any():
        raise ValueError(
            f"label {y_true[unknown][:1].tolist()[0]!r} is not one of the classes {classes.tolist()}"
        )
    return positions


def _check_shapes(n: int, k: int | None, confidence: float, *arrays: np.ndarray) -> None:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    if n < 2:
        raise ValueError(f"a paired comparison needs at least 2 held-out rows, got {n}")
    for array in arrays:
        expected = (n,) if k is None else (n, k)
        if array.shape != expected:
            raise ValueError(f"predictions of shape {array.shape}, expected {expected}")
        if not np.isfinite(array).all():
            raise ValueError("predictions contain NaN or infinite values")


def mcnemar_one_sided(champion_right: np.ndarray, challenger_right: np.ndarray) -> tuple[float, int, int]:
    """McNemar's exact test, one-sided: p for "the challenger is right more often", and (b, c).

    Only the discordant rows carry evidence: b where only the challenger is right, c where only
    the champion is. Under equal accuracy each is a fair coin flip, so the exact test is the
    binomial test of b out of b + c at one half (scipy's `binomtest`, alternative "greater").
    """
    b = int(np.sum(challenger_right & ~champion_right))
    c = int(np.sum(champion_right & ~challenger_right))
    p = 1.0 if b + c == 0 else float(stats.binomtest(b, b + c, 0.5, alternative="greater").pvalue)
    return p, b, c


def compare_classifiers(
    y_true: np.ndarray,
    champion_proba: np.ndarray,
    challenger_proba: np.ndarray,
    classes: np.ndarray,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    confidence: float = DEFAULT_CONFIDENCE,
) -> list[MetricComparison]:
    """Accuracy (primary; McNemar exact), log loss, and ROC AUC when there are two classes.

    Each model's predicted class is the most probable one (first in `classes` order on a tie), as
    scikit-learn's `predict` does. ROC AUC takes `classes[1]` as the positive class; bootstrap
    replicates that drew a single class are skipped for it.
    """
    y_true, classes = np.asarray(y_true), np.asarray(classes)
    champion_proba = np.asarray(champion_proba, dtype=np.float64)
    challenger_proba = np.asarray(challenger_proba, dtype=np.float64)
    n = len(y_true)
    _check_shapes(n, len(classes), confidence, champion_proba, challenger_proba)
    truth = _class_positions(y_true, classes)
    rows = np.arange(n)
    right = [proba.argmax(axis=1) == truth for proba in (champion_proba, challenger_proba)]
    loss = [
        -np.log(np.clip(proba[rows, truth], PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR))
        for proba in (champion_proba, challenger_proba)
    ]
    per_row = np.column_stack([right[1].astype(float) - right[0], loss[1] - loss[0]])
    binary = len(classes) == 2
    ranked = [RankedScores.of(p[:, 1], truth == 1) for p in (champion_proba, challenger_proba) if binary]
    means, aucs = _bootstrap(n, resamples, seed, per_row, ranked)
    p, b, c = mcnemar_one_sided(*right)
    shared = _Replicates(confidence, resamples, n)
    comparisons = [
        shared.compare(
            ACCURACY, (float(right[0].mean()), float(right[1].mean())), means[:, 0], True,
            p, MCNEMAR_TEST, (b, c),
        ),
        shared.compare(LOG_LOSS, (float(loss[0].mean()), float(loss[1].mean())), means[:, 1], False),
    ]  # fmt: skip
    if binary:
        ones = np.ones((1, n))
        auc = (float(weighted_auc(ones, ranked[0])[0]), float(weighted_auc(ones, ranked[1])[0]))
        comparisons.append(shared.compare(ROC_AUC, auc, aucs[:, 1] - aucs[:, 0], True))
    return comparisons


def paired_t_one_sided(champion_errors: np.ndarray, challenger_errors: np.ndarray) -> float:
    """p for "the challenger's mean absolute error is lower", from the paired t-test (scipy)."""
    gains = champion_errors - challenger_errors
    if np.ptp(gains) == 0:  # every row gained the same: the sign is the whole answer
        return 0.0 if gains[0] > 0 else 1.0
    return float(stats.ttest_rel(champion_errors, challenger_errors, alternative="greater").pvalue)


def compare_regressors(
    y_true: np.ndarray,
    champion_pred: np.ndarray,
    challenger_pred: np.ndarray,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    confidence: float = DEFAULT_CONFIDENCE,
) -> list[MetricComparison]:
    """MAE (primary; the paired t-test on absolute errors) and RMSE (secondary).

    Why a t-test and not Wilcoxon's signed-rank test: MAE is a mean, and the paired t-test tests
    exactly the mean of the per-row gains |e_champion| - |e_challenger|, valid on a few hundred
    rows by the central limit theorem. Wilcoxon tests whether the gains are symmetric about zero
    (their pseudo-median): a challenger slightly better on most rows and far worse on a few has
    a higher MAE yet a Wilcoxon p that says "better", so it could accept a worse model.
    """
    truth = np.asarray(y_true, dtype=np.float64)
    predictions = [np.asarray(p, dtype=np.float64) for p in (champion_pred, challenger_pred)]
    n = len(truth)
    _check_shapes(n, None, confidence, truth, *predictions)
    errors = [pred - truth for pred in predictions]
    absolute = [np.abs(error) for error in errors]
    squared = [error**2 for error in errors]
    per_row = np.column_stack([absolute[1] - absolute[0], squared[0], squared[1]])
    means, _ = _bootstrap(n, resamples, seed, per_row, [])
    rmse_replicates = np.sqrt(means[:, 2]) - np.sqrt(means[:, 1])
    shared = _Replicates(confidence, resamples, n)
    mae = (float(absolute[0].mean()), float(absolute[1].mean()))
    rmse = (float(np.sqrt(squared[0].mean())), float(np.sqrt(squared[1].mean())))
    return [
        shared.compare(MAE, mae, means[:, 0], False, paired_t_one_sided(*absolute), PAIRED_T_TEST),
        shared.compare(RMSE, rmse, rmse_replicates, False),
    ]
