"""Business-outcome statistics on known answers: textbook z-test, Newcombe's interval, Welch from sums."""

import dataclasses
import json
import math

import numpy as np
import pytest
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from tabserve.deployment.outcome_report import (
    A_BETTER,
    B_BETTER,
    NO_DIFFERENCE,
    NOT_ENOUGH,
    compare_outcome,
    outcome_html,
    outcome_lines,
    outcome_rows,
    plain_outcome_verdict,
)
from tabserve.deployment.outcome_stats import (
    rate_test,
    std_of,
    value_test,
    variant_interval,
    worse_beyond_margin_p,
)
from tabserve.predictions.outcomes import OutcomeSums


def rate(events: int, requests: int) -> OutcomeSums:
    return OutcomeSums(requests=requests, events=events, total=float(events), total_sq=float(events))


def values(sample: np.ndarray, requests: int | None = None) -> OutcomeSums:
    """Sums of `sample`, padded with zeros (requests without the event) up to `requests`."""
    requests = len(sample) if requests is None else requests
    return OutcomeSums(requests, len(sample), float(sample.sum()), float((sample**2).sum()))


def test_two_proportion_z_test_matches_the_textbook_value() -> None:
    # 100/1000 vs 150/1000 clicks: pooled p = 0.125, se = sqrt(0.125 * 0.875 * 2/1000) = 0.01479,
    # z = 0.05 / 0.01479 = 3.381, two-sided p = 0.00072.
    tested = rate_test(rate(100, 1000), rate(150, 1000))
    assert tested.difference == pytest.approx(0.05)
    assert tested.statistic == pytest.approx(3.381, abs=1e-3)
    assert tested.p_value == pytest.approx(0.000723, abs=5e-6)
    assert tested.low < 0.05 < tested.high


def test_interval_of_a_rate_difference_is_newcombes() -> None:
    # Newcombe (1998), Statistics in Medicine 17, example (a): 56/70 vs 48/80 -> 0.0524 to 0.3339.
    tested = rate_test(rate(48, 80), rate(56, 70))
    assert (tested.low, tested.high) == pytest.approx((0.0524, 0.3339), abs=5e-4)


def test_no_event_on_either_side_is_no_difference_not_a_crash() -> None:
    tested = rate_test(rate(0, 500), rate(0, 500))
    assert (tested.difference, tested.p_value) == (0.0, 1.0)


def test_welch_from_sums_equals_welch_on_the_raw_values() -> None:
    rng = np.random.default_rng(7)
    a = np.r_[rng.exponential(20.0, 120), np.zeros(380)]  # revenue: 120 purchases in 500 requests
    b = np.r_[rng.exponential(26.0, 150), np.zeros(350)]
    tested = value_test(values(a[a > 0], 500), values(b[b > 0], 500))
    from scipy import stats

    raw = stats.ttest_ind(b, a, equal_var=False)
    assert tested.statistic == pytest.approx(raw.statistic, rel=1e-9)
    assert tested.p_value == pytest.approx(raw.pvalue, rel=1e-9)
    low, high = CompareMeans(DescrStatsW(b), DescrStatsW(a)).tconfint_diff(usevar="unequal")
    assert (tested.low, tested.high) == pytest.approx((low, high), rel=1e-9)
    assert std_of(values(a[a > 0], 500)) == pytest.approx(a.std(ddof=1), rel=1e-9)


def test_variant_intervals_wilson_for_rates_t_for_values() -> None:
    low, high = variant_interval(rate(100, 1000), "rate")
    assert (low, high) == pytest.approx((0.0829, 0.1203), abs=5e-4)  # Wilson 95% of 10% in 1000
    sample = np.array([1.0, 2.0, 3.0, 4.0])
    low, high = variant_interval(values(sample), "value")
    assert (low, high) == pytest.approx(DescrStatsW(sample).tconfint_mean(), rel=1e-9)


@pytest.mark.parametrize(
    ("a", "b", "verdict"),
    [
        (rate(100, 1000), rate(150, 1000), B_BETTER),
        (rate(150, 1000), rate(100, 1000), A_BETTER),
        (rate(100, 1000), rate(104, 1000), NO_DIFFERENCE),
        (rate(1, 10), rate(9, 10), NOT_ENOUGH),  # below min_requests: no verdict, whatever the gap
    ],
)
def test_verdicts_of_a_rate(a: OutcomeSums, b: OutcomeSums, verdict: str) -> None:
    assert compare_outcome("click", "rate", a, b, min_requests=50).verdict == verdict


def test_verdict_words_and_rows_name_the_numbers() -> None:
    better = compare_outcome("click", "rate", rate(100, 1000), rate(150, 1000), min_requests=50)
    assert plain_outcome_verdict(better) == "B is better than A on click rate: 0.150 vs 0.100 (p < 0.001)"
    assert outcome_rows([better]) == [
        ("click rate (95% CI)", "0.100 [0.083, 0.120] (100/1000)", "0.150 [0.129, 0.173] (150/1000)")
    ]
    assert outcome_lines([better])[0].startswith("click: B - A = +0.0500 [+0.0")
    assert "B is better than A on click rate" in outcome_html([better])
    few = compare_outcome("revenue", "value", values(np.ones(3)), values(np.ones(4)), min_requests=50)
    assert plain_outcome_verdict(few) == "not enough requests to compare revenue per request (A 3, B 4)"
    assert outcome_html([]) == ""


def test_non_inferiority_fires_on_a_real_drop_only() -> None:
    same = worse_beyond_margin_p(rate(500, 5000), rate(490, 5000), "rate", 0.01)
    dropped = worse_beyond_margin_p(rate(500, 5000), rate(300, 5000), "rate", 0.01)
    assert same > 0.5 and dropped < 1e-6
    rng = np.random.default_rng(3)
    champion = values(rng.normal(10.0, 2.0, 2000))
    equal = values(rng.normal(10.0, 2.0, 2000))
    lower = values(rng.normal(8.0, 2.0, 2000))  # 20% less, margin 5%
    assert worse_beyond_margin_p(champion, equal, "value", 0.05) > 0.5
    assert worse_beyond_margin_p(champion, lower, "value", 0.05) < 1e-6


def test_values_without_spread_need_no_test() -> None:
    tested = value_test(values(np.full(50, 2.0)), values(np.full(50, 3.0)))
    assert (tested.difference, tested.p_value) == (1.0, 0.0)
    assert math.isfinite(tested.low)


def test_a_variant_without_requests_is_not_enough_data_and_valid_json() -> None:
    empty = compare_outcome("click", "rate", rate(0, 0), rate(10, 100), min_requests=50)
    assert empty.verdict == NOT_ENOUGH and outcome_rows([empty])[0][1] == "- (0 requests)"
    json.dumps(dataclasses.asdict(empty), allow_nan=False)  # raises on NaN
