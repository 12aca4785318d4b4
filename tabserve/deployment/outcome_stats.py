"""Business outcomes of two variants compared: the tests, on per-variant sums (pure functions).

Rates (a click: 0 or 1 per request served) use the two-proportion z-test (statsmodels
`proportions_ztest`, pooled variance) and Newcombe's interval of the difference; values
(revenue per request served) use Welch's t-test from the sums (scipy `ttest_ind_from_stats`)
and the Welch-Satterthwaite interval of the difference. Every outcome is "more is better".

The rollout guard asks a different question: is the candidate worse than the champion by more
than an allowed margin (a one-sided non-inferiority test, as the quality guard's), so chance
differences between two equally good models do not roll one back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from tabserve.predictions.outcomes import OutcomeSums

RATE, VALUE = "rate", "value"
RATE_TEST, VALUE_TEST = "two-proportion z-test", "Welch t-test"


@dataclass(frozen=True)
class OutcomeTest:
    difference: float  # B minus A (> 0: B better)
    low: float  # confidence interval of the difference
    high: float
    statistic: float  # z (rates) or t (values), > 0 when B is higher
    p_value: float  # two-sided
    test: str


def mean_of(sums: OutcomeSums) -> float:
    return sums.total / sums.requests if sums.requests else math.nan


def std_of(sums: OutcomeSums) -> float:
    """Sample standard deviation from the sums (0 with fewer than two requests)."""
    if sums.requests < 2:
        return 0.0
    mean = mean_of(sums)
    return math.sqrt(max(sums.total_sq - sums.requests * mean * mean, 0.0) / (sums.requests - 1))


def successes_of(sums: OutcomeSums) -> int:
    return round(sums.total)  # a rate's values are 0 or 1: their sum is the count of events


def rate_test(a: OutcomeSums, b: OutcomeSums, alpha: float = 0.05) -> OutcomeTest:
    from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

    hits_a, hits_b = successes_of(a), successes_of(b)
    difference = hits_b / b.requests - hits_a / a.requests
    low, high = confint_proportions_2indep(hits_b, b.requests, hits_a, a.requests, alpha=alpha)
    if hits_a + hits_b in (0, a.requests + b.requests):  # nobody, or everybody: no variance, no doubt
        return OutcomeTest(difference, float(low), float(high), 0.0, 1.0, RATE_TEST)
    z, p_value = proportions_ztest([hits_b, hits_a], [b.requests, a.requests])
    return OutcomeTest(difference, float(low), float(high), float(z), float(p_value), RATE_TEST)


def value_test(a: OutcomeSums, b: OutcomeSums, alpha: float = 0.05) -> OutcomeTest:
    mean_a, mean_b, std_a, std_b = mean_of(a), mean_of(b), std_of(a), std_of(b)
    difference = mean_b - mean_a
    var_a, var_b = std_a**2 / a.requests, std_b**2 / b.requests
    if var_a + var_b == 0:  # every value the same within each variant: the gap is the whole answer
        p_value = 1.0 if difference == 0 else 0.0
        return OutcomeTest(difference, difference, difference, 0.0, p_value, VALUE_TEST)
    result = stats.ttest_ind_from_stats(mean_b, std_b, b.requests, mean_a, std_a, a.requests, equal_var=False)
    df = (var_a + var_b) ** 2 / (var_a**2 / (a.requests - 1) + var_b**2 / (b.requests - 1))
    half = float(stats.t.ppf(1 - alpha / 2, df)) * math.sqrt(var_a + var_b)
    return OutcomeTest(
        difference,
        difference - half,
        difference + half,
        float(result.statistic),
        float(result.pvalue),
        VALUE_TEST,
    )


def variant_interval(sums: OutcomeSums, kind: str, alpha: float = 0.05) -> tuple[float, float]:
    """One variant's rate (Wilson) or mean value (Student's t) interval."""
    if kind == RATE:
        from statsmodels.stats.proportion import proportion_confint

        low, high = proportion_confint(successes_of(sums), sums.requests, alpha=alpha, method="wilson")
        return float(low), float(high)
    if sums.requests < 2:
        return -math.inf, math.inf
    half = float(stats.t.ppf(1 - alpha / 2, sums.requests - 1)) * std_of(sums) / math.sqrt(sums.requests)
    return mean_of(sums) - half, mean_of(sums) + half


def worse_beyond_margin_p(champion: OutcomeSums, candidate: OutcomeSums, kind: str, margin: float) -> float:
    """One-sided p-value that the candidate's outcome is lower than the champion's by more than `margin`.

    Rates: H0 champion - candidate <= margin (absolute), the score test of statsmodels'
    `test_proportions_2indep`. Values: H0 candidate >= champion x (1 - margin) (relative),
    Welch's t-test against the champion's values scaled by 1 - margin. Small p: a real drop.
    """
    if kind == RATE:
        from statsmodels.stats.proportion import test_proportions_2indep

        with np.errstate(divide="ignore", invalid="ignore"):  # its odds ratio at 0% or 100%: unused
            result = test_proportions_2indep(
                successes_of(champion),
                champion.requests,
                successes_of(candidate),
                candidate.requests,
                value=margin,
                method="score",
                compare="diff",
                alternative="larger",
            )
        return float(result.pvalue)
    scale = 1 - margin
    mean_k, std_k = mean_of(candidate), std_of(candidate)
    mean_c, std_c = mean_of(champion) * scale, std_of(champion) * scale
    if std_k == 0 and std_c == 0:
        return 0.0 if mean_k < mean_c else 1.0
    result = stats.ttest_ind_from_stats(
        mean_k,
        std_k,
        candidate.requests,
        mean_c,
        std_c,
        champion.requests,
        equal_var=False,
        alternative="less",
    )
    return float(result.pvalue)
