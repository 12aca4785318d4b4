"""The paired comparisons against hand-computed values and scikit-learn's, scipy's, statsmodels'."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import accuracy_score, log_loss, mean_absolute_error, roc_auc_score
from statsmodels.stats.contingency_tables import mcnemar

from tabserve.retraining.paired_tests import (
    ACCURACY,
    LOG_LOSS,
    MAE,
    MCNEMAR_TEST,
    PAIRED_T_TEST,
    RMSE,
    ROC_AUC,
    compare_classifiers,
    compare_regressors,
    mcnemar_one_sided,
)


def correctness(both: int, challenger_only: int, champion_only: int, neither: int) -> tuple[np.ndarray, ...]:
    """Right/wrong per row for each model, from the four cells of the paired table."""
    champion = [True] * both + [False] * challenger_only + [True] * champion_only + [False] * neither
    challenger = [True] * both + [True] * challenger_only + [False] * champion_only + [False] * neither
    return np.array(champion), np.array(challenger)


def probabilities(rows: int, classes: int, seed: int, sharpness: float = 1.0) -> np.ndarray:
    raw = np.random.default_rng(seed).gamma(sharpness, size=(rows, classes))
    return raw / raw.sum(axis=1, keepdims=True)


def by_metric(comparisons: list) -> dict:
    return {c.metric: c for c in comparisons}


def test_mcnemar_exact_one_sided_on_30_against_10_discordant_pairs() -> None:
    """P(X >= 30) for X ~ Binomial(40, 1/2), summed by hand; statsmodels' two-sided p is twice it."""
    champion, challenger = correctness(both=50, challenger_only=30, champion_only=10, neither=10)
    p, b, c = mcnemar_one_sided(champion, challenger)
    by_hand = sum(math.comb(40, k) for k in range(30, 41)) / 2**40
    assert (b, c) == (30, 10)
    assert p == pytest.approx(by_hand, rel=1e-12)
    assert p == pytest.approx(0.0011, abs=5e-5)
    two_sided = mcnemar(np.array([[50, 10], [30, 10]]), exact=True).pvalue
    assert two_sided == pytest.approx(2 * p, rel=1e-9)
    # the other direction: the champion was the one more often right, so no evidence at all
    assert mcnemar_one_sided(challenger, champion)[0] == pytest.approx(
        1 - by_hand + math.comb(40, 30) / 2**40
    )


def test_no_discordant_pair_is_no_evidence() -> None:
    champion, challenger = correctness(both=20, challenger_only=0, champion_only=0, neither=5)
    assert mcnemar_one_sided(champion, challenger) == (1.0, 0, 0)


def test_the_classifier_comparison_matches_scikit_learn_on_the_full_sample() -> None:
    rng = np.random.default_rng(3)
    classes = np.array(["no", "yes"])
    y = rng.choice(classes, size=400)
    champion, challenger = probabilities(400, 2, seed=1), probabilities(400, 2, seed=2, sharpness=0.5)
    result = by_metric(compare_classifiers(y, champion, challenger, classes, resamples=500, seed=0))
    assert list(result) == [ACCURACY, LOG_LOSS, ROC_AUC]
    for model, proba, name in ((champion, champion, "champion"), (challenger, challenger, "challenger")):
        assert getattr(result[ACCURACY], name) == pytest.approx(
            accuracy_score(y, classes[model.argmax(axis=1)])
        )
        assert getattr(result[LOG_LOSS], name) == pytest.approx(log_loss(y, proba, labels=classes), rel=1e-12)
        assert getattr(result[ROC_AUC], name) == pytest.approx(
            roc_auc_score(y == "yes", proba[:, 1]), rel=1e-12
        )
    assert result[LOG_LOSS].difference == pytest.approx(
        log_loss(y, challenger, labels=classes) - log_loss(y, champion, labels=classes), rel=1e-12
    )
    assert result[ROC_AUC].difference == pytest.approx(
        roc_auc_score(y == "yes", challenger[:, 1]) - roc_auc_score(y == "yes", champion[:, 1]), rel=1e-12
    )
    assert result[ACCURACY].test == MCNEMAR_TEST and result[ACCURACY].primary
    assert not result[LOG_LOSS].higher_is_better and result[ROC_AUC].higher_is_better
    assert result[LOG_LOSS].improvement == -result[LOG_LOSS].difference
    assert result[ROC_AUC].improvement == result[ROC_AUC].difference


def test_three_classes_have_no_auc_and_the_log_loss_of_scikit_learn() -> None:
    y = np.random.default_rng(4).integers(0, 3, size=300)
    champion, challenger = probabilities(300, 3, seed=5), probabilities(300, 3, seed=6)
    result = by_metric(
        compare_classifiers(y, champion, challenger, np.array([0, 1, 2]), resamples=200, seed=1)
    )
    assert list(result) == [ACCURACY, LOG_LOSS]
    assert result[LOG_LOSS].difference == pytest.approx(
        log_loss(y, challenger) - log_loss(y, champion), rel=1e-12
    )


def test_intervals_hold_the_point_estimate_and_the_seed_fixes_them() -> None:
    y = np.random.default_rng(7).integers(0, 2, size=300)
    champion, challenger = probabilities(300, 2, seed=8), probabilities(300, 2, seed=9)
    first = compare_classifiers(y, champion, challenger, np.array([0, 1]), resamples=400, seed=11)
    again = compare_classifiers(y, champion, challenger, np.array([0, 1]), resamples=400, seed=11)
    other = compare_classifiers(y, champion, challenger, np.array([0, 1]), resamples=400, seed=12)
    assert first == again
    assert [(c.low, c.high) for c in first] != [(c.low, c.high) for c in other]
    for comparison in first:
        assert comparison.low <= comparison.difference <= comparison.high
        assert comparison.interval_method == "paired bootstrap, 400 resamples"


def test_the_paired_bootstrap_spread_is_the_paired_standard_error() -> None:
    """For a mean of paired differences the bootstrap's spread is sd(d) / sqrt(n): the interval
    is as wide as the pairing makes it (much narrower than for two independent samples)."""
    rng = np.random.default_rng(10)
    rows = 2000
    y = rng.normal(size=rows)
    common = rng.normal(0, 1, rows)  # both models share most of their error: pairing matters
    champion, challenger = y + common + rng.normal(0, 0.2, rows), y + common + rng.normal(0, 0.2, rows)
    mae = by_metric(compare_regressors(y, champion, challenger, resamples=4000, seed=2, confidence=0.90))[MAE]
    gains = np.abs(challenger - y) - np.abs(champion - y)
    expected_half_width = stats.norm.ppf(0.95) * gains.std() / math.sqrt(rows)
    assert (mae.high - mae.low) / 2 == pytest.approx(expected_half_width, rel=0.08)


def test_the_regressor_comparison_matches_hand_computed_values() -> None:
    rng = np.random.default_rng(12)
    y = rng.normal(50, 10, size=250)
    champion, challenger = y + rng.normal(0, 3, 250), y + rng.normal(0.5, 2.5, 250)
    result = by_metric(compare_regressors(y, champion, challenger, resamples=300, seed=3))
    assert list(result) == [MAE, RMSE]
    assert result[MAE].champion == pytest.approx(mean_absolute_error(y, champion))
    assert result[RMSE].challenger == pytest.approx(math.sqrt(np.mean((challenger - y) ** 2)))
    gains = np.abs(champion - y) - np.abs(challenger - y)
    t = gains.mean() / (gains.std(ddof=1) / math.sqrt(len(gains)))
    assert result[MAE].p_value == pytest.approx(stats.t.sf(t, len(gains) - 1), rel=1e-9)
    assert result[MAE].test == PAIRED_T_TEST and result[MAE].primary and not result[RMSE].primary


def test_the_same_gain_on_every_row_is_certain() -> None:
    y = np.arange(10.0)
    result = by_metric(compare_regressors(y, y + 2, y + 1, resamples=50, seed=0))
    assert result[MAE].p_value == 0.0
    assert by_metric(compare_regressors(y, y + 1, y + 2, resamples=50, seed=0))[MAE].p_value == 1.0


def test_bad_inputs_are_refused_with_the_reason() -> None:
    proba = probabilities(4, 2, seed=0)
    with pytest.raises(ValueError, match="'maybe' is not one of the classes"):
        compare_classifiers(np.array(["no", "yes", "maybe", "no"]), proba, proba, np.array(["no", "yes"]))
    with pytest.raises(ValueError, match="shape"):
        compare_classifiers(np.array([0, 1, 0, 1]), proba, proba[:3], np.array([0, 1]))
    with pytest.raises(ValueError, match="NaN"):
        compare_regressors(np.zeros(3), np.array([1.0, np.nan, 2.0]), np.zeros(3))
    with pytest.raises(ValueError, match="at least 2"):
        compare_regressors(np.zeros(1), np.zeros(1), np.zeros(1))
    with pytest.raises(ValueError, match="at least one resample"):
        compare_regressors(np.zeros(3), np.ones(3), np.ones(3), resamples=0)
    with pytest.raises(ValueError, match="confidence"):
        compare_regressors(np.zeros(3), np.ones(3), np.ones(3), confidence=95)
