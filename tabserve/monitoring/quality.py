"""Quality on feedback labels: accuracy (classifiers) or MAE (regressors), and whether it dropped.

Kept apart from `drift` (which loads Evidently) so the service can judge rollouts without it.
The statistics are statsmodels' and scipy's, not our own formulas: statsmodels is declared for
the service (the rollout guard's non-inferiority test), 44 MB installed beside scipy's 83 MB. It
costs about 0.3 s at import, so it is imported where a statistic is computed: a worker's start
does not pay for it, the first rollout judgement does.
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
ALPHA = 0.05  # 95% intervals
PROPORTIONS_TEST, WELCH_TEST = "two-proportion z-test", "Welch t-test on absolute errors"


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


def per_row_quality(truth: pd.Series, predicted: pd.Series, classifier: bool) -> pd.Series:
    """Pure: 1.0/0.0 per right/wrong answer (classifiers) or the absolute error (regressors)."""
    if classifier:
        return (predicted.map(label_text) == truth.map(label_text)).astype(float)
    return (predicted.astype(float) - truth.astype(float)).abs()


def outcome_scores(frame: pd.DataFrame, classifier: bool) -> np.ndarray:
    """Per labelled row: 1/0 correct (classifiers) or the absolute error (regressors)."""
    labelled = frame[frame[LABEL_COLUMN].notna()]
    return per_row_quality(labelled[LABEL_COLUMN], labelled[PREDICTION_COLUMN], classifier).to_numpy(
        dtype=float
    )


def accuracy_interval(correct: int, total: int, alpha: float = ALPHA) -> tuple[float, float]:
    """Wilson score interval of a share (statsmodels): stays inside [0, 1], honest near 0 and 1."""
    from statsmodels.stats.proportion import proportion_confint

    low, high = proportion_confint(correct, total, alpha=alpha, method="wilson")
    return float(low), float(high)


def mean_interval(values: np.ndarray, alpha: float = ALPHA) -> tuple[float, float]:
    """Student's t interval of a mean (scipy); unbounded with fewer than two values."""
    if len(values) < 2:
        return -math.inf, math.inf
    low, high = stats.t.interval(1 - alpha, len(values) - 1, loc=values.mean(), scale=stats.sem(values))
    return float(low), float(high)


def describe_p(p_value: float) -> str:
    """A p-value as a person reads it: two digits, and no "p = 1" or "p = 0" (never certain)."""
    if p_value < 0.001:
        return "p < 0.001"
    if p_value > 0.99:
        return "p > 0.99"
    return f"p = {p_value:.2g}"


def _no_spread(*samples: np.ndarray) -> bool:
    """Every value the same within each sample: the tests' variance is zero, they have no p."""
    return all(np.ptp(sample) == 0 for sample in samples)


def significance(a: np.ndarray, b: np.ndarray, classifier: bool) -> tuple[float, str]:
    """Two-sided p-value of the difference in quality, and the test's name.

    Classifiers: the two-proportion z-test on correct answers (statsmodels `proportions_ztest`,
    pooled variance); regressors: Welch's t-test on absolute errors (scipy, unequal variances).
    Two samples without any spread (each all right or all wrong) leave no doubt: p = 1 if they
    are the same, 0 if not.
    """
    name = PROPORTIONS_TEST if classifier else WELCH_TEST
    if _no_spread(a, b):
        return (1.0 if a[0] == b[0] else 0.0), name
    if classifier:
        from statsmodels.stats.proportion import proportions_ztest

        return float(proportions_ztest([b.sum(), a.sum()], [len(b), len(a)])[1]), name
    return float(stats.ttest_ind(a, b, equal_var=False).pvalue), name


def worse_beyond_margin_p(
    champion: np.ndarray, candidate: np.ndarray, classifier: bool, margin: float
) -> float:
    """One-sided p-value that the candidate is worse than the champion by more than the margin.

    H0: the candidate's accuracy is at most `margin` below the champion's (classifiers; the
    score test of statsmodels' `test_proportions_2indep`, Miettinen-Nurminen), or its MAE at most
    `margin` relatively above (regressors; Welch's t-test of the candidate's absolute errors
    against the champion's scaled by 1 + margin). A small p means a real, too large drop; chance
    differences between two equally good models do not produce one.
    """
    if classifier:
        with np.errstate(divide="ignore", invalid="ignore"):  # its odds ratio at 0% or 100%: unused
            from statsmodels.stats.proportion import test_proportions_2indep

            result = test_proportions_2indep(
                champion.sum(),
                len(champion),
                candidate.sum(),
                len(candidate),
                value=margin,
                method="score",
                compare="diff",
                alternative="larger",
            )
        return float(result.pvalue)
    scaled = champion * (1 + margin)
    if _no_spread(candidate, scaled):  # the gap is the whole answer
        return 0.0 if candidate[0] > scaled[0] else 1.0
    return float(stats.ttest_ind(candidate, scaled, equal_var=False, alternative="greater").pvalue)
