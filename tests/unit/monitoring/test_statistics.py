"""The quality statistics against published or hand-computed values (and the tests' direction)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from tabserve.monitoring.quality import (
    PROPORTIONS_TEST,
    WELCH_TEST,
    accuracy_interval,
    mean_interval,
    significance,
    worse_beyond_margin_p,
)


def correct(right: int, total: int) -> np.ndarray:
    return np.array([1.0] * right + [0.0] * (total - right))


def test_wilson_intervals_match_newcombe_1998() -> None:
    """Newcombe (1998), Statistics in Medicine 17:857, table I: 81/263 and 0/10, Wilson score method."""
    assert accuracy_interval(81, 263) == pytest.approx((0.2553, 0.3662), abs=5e-5)
    assert accuracy_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=5e-5)


def test_the_mean_interval_is_students_t() -> None:
    values = np.array([1.0, 2.0, 3.0, 4.0, 5.0])  # mean 3, sd 1.5811, t(4, 0.975) = 2.7764
    half = 2.776445 * math.sqrt(2.5) / math.sqrt(5)
    assert mean_interval(values) == pytest.approx((3 - half, 3 + half), abs=1e-5)
    assert mean_interval(np.array([2.0])) == (-math.inf, math.inf)


def test_the_two_proportion_z_test() -> None:
    """80/100 against 90/100: pooled p = 0.85, z = 0.1 / sqrt(0.85 * 0.15 * 2 / 100) = 1.9803."""
    p_value, name = significance(correct(80, 100), correct(90, 100), classifier=True)
    assert name == PROPORTIONS_TEST and p_value == pytest.approx(0.04767, abs=1e-5)
    assert significance(correct(100, 100), correct(100, 100), classifier=True)[0] == 1.0  # no spread


def test_welchs_test_not_students() -> None:
    """Variances 2.5 and 10: Welch's df = 5.88, p = 0.107; Student's (df 8) would say 0.094."""
    a, b = np.array([1.0, 2, 3, 4, 5]), np.array([2.0, 4, 6, 8, 10])
    df = (2.5 / 5 + 10 / 5) ** 2 / ((2.5 / 5) ** 2 / 4 + (10 / 5) ** 2 / 4)
    expected = 2 * stats.t.sf(3 / math.sqrt(2.5 / 5 + 10 / 5), df)
    p_value, name = significance(a, b, classifier=False)
    assert name == WELCH_TEST and p_value == pytest.approx(expected, rel=1e-9)
    assert p_value == pytest.approx(0.1075, abs=5e-4)


def test_non_inferiority_of_accuracy_with_a_margin() -> None:
    # 0.90 vs 0.83 on 2000 each, margin 0.05: the drop 0.07 is beyond the margin by 1.86 standard
    # errors (Wald: 0.02 / 0.01075); the score test agrees to the third decimal.
    assert worse_beyond_margin_p(correct(1800, 2000), correct(1660, 2000), True, 0.05) == pytest.approx(
        0.0317, abs=5e-4
    )
    assert worse_beyond_margin_p(correct(347, 355), correct(97, 105), True, 0.05) > 0.3
    assert worse_beyond_margin_p(correct(50, 50), correct(50, 50), True, 0.05) > 0.9  # perfect: no p of 0
    assert worse_beyond_margin_p(correct(50, 50), correct(0, 50), True, 0.05) < 1e-12


def test_non_inferiority_of_mae_with_a_relative_margin() -> None:
    rng = np.random.default_rng(0)
    champion = np.abs(rng.normal(0, 1, 2000))
    # Same errors, 5% worse: exactly at the margin, so p is about one half.
    assert worse_beyond_margin_p(champion, champion * 1.05, False, 0.05) == pytest.approx(0.5, abs=1e-9)
    assert worse_beyond_margin_p(champion, champion * 1.5, False, 0.05) < 1e-6
    assert worse_beyond_margin_p(np.ones(10), np.full(10, 2.0), False, 0.05) == 0.0  # no spread, worse
    assert worse_beyond_margin_p(np.ones(10), np.ones(10), False, 0.05) == 1.0
