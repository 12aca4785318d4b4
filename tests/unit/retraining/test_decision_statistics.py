"""The decision rule as a statistic: its false-accept rate, its power and its intervals' coverage.

Every figure is a rate over many seeds of a simulated world where the truth is known: two models
whose answers are independent noisy versions of the same true probability (or the same true
value), equally good when their noise is equal. A bound that the rule must meet is checked to
fail for rules known to be wrong, so that passing it means something.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from tabserve.retraining.decision import PASSING, DecisionRule, decide
from tabserve.retraining.paired_tests import (
    LOG_LOSS,
    MAE,
    ROC_AUC,
    MetricComparison,
    compare_classifiers,
    compare_regressors,
)

CLASSES = np.array([0, 1])
ALPHA = 0.05
SEEDS = 1000  # equal models: the false-accept rate's bound is alpha + 3 binomial standard errors
POWER_SEEDS = 200
COVERAGE_SEEDS = 600
# Logit noise of each model: 1.0 gives 74.0% accuracy in this world, 1.9 gives 68.6% (measured on
# 1,000,000 rows): the "clearly better" challenger is 5.4 points more accurate.
GOOD, POOR = 1.0, 1.9
# A deliberately broken rule: tests at 0.45 and lets any secondary metric be as bad as it likes.
BROKEN_RULE = DecisionRule(alpha=0.45, margins=dict.fromkeys((LOG_LOSS, ROC_AUC, "rmse"), math.inf))
World = tuple[np.ndarray, np.ndarray, np.ndarray]  # labels, the champion's answers, the challenger's


def classifier_world(rows: int, seed: int, champion_noise: float, challenger_noise: float) -> World:
    """True log-odds z ~ N(0, 2), a label drawn from it; each model sees z plus its own noise."""
    rng = np.random.default_rng(seed)
    logit = rng.normal(0, 2.0, rows)
    y = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    probas = []
    for noise in (champion_noise, challenger_noise):
        q = 1 / (1 + np.exp(-(logit + rng.normal(0, noise, rows))))
        probas.append(np.column_stack([1 - q, q]))
    return y, probas[0], probas[1]


def regressor_world(rows: int, seed: int, champion_noise: float, challenger_noise: float) -> World:
    """y = f + N(0, 1) (noise no model can remove); each model predicts f plus its own noise."""
    rng = np.random.default_rng(seed)
    signal = rng.normal(0, 1, rows)
    y = signal + rng.normal(0, 1, rows)
    return y, signal + rng.normal(0, champion_noise, rows), signal + rng.normal(0, challenger_noise, rows)


def classifier_runs(
    rows: int, seeds: int, noises: tuple[float, float], **options
) -> list[list[MetricComparison]]:
    return [
        compare_classifiers(*classifier_world(rows, seed, *noises), CLASSES, seed=seed, **options)
        for seed in range(seeds)
    ]


def regressor_runs(
    rows: int, seeds: int, noises: tuple[float, float], **options
) -> list[list[MetricComparison]]:
    return [
        compare_regressors(*regressor_world(rows, seed, *noises), seed=seed, **options)
        for seed in range(seeds)
    ]


def accepted(runs: list[list[MetricComparison]], rule: DecisionRule) -> int:
    return sum(decide(run, rule).accepted for run in runs)


def point_estimate_rule(runs: list[list[MetricComparison]]) -> int:
    """A deliberately broken rule: accept whenever the primary metric looks better, no test."""
    return sum(next(c for c in run if c.primary).improvement > 0 for run in runs)


def false_accept_bound(seeds: int, alpha: float) -> float:
    """alpha * N + 3 binomial standard errors: a rule at level alpha exceeds it about once in 700."""
    return alpha * seeds + 3 * math.sqrt(seeds * alpha * (1 - alpha))


@pytest.fixture(scope="module")
def equal_classifiers() -> list[list[MetricComparison]]:
    return classifier_runs(500, SEEDS, (GOOD, GOOD), resamples=300)


@pytest.fixture(scope="module")
def equal_regressors() -> list[list[MetricComparison]]:
    return regressor_runs(500, SEEDS, (0.5, 0.5), resamples=300)


@pytest.mark.parametrize("world", ["equal_classifiers", "equal_regressors"])
def test_equal_models_are_accepted_at_most_at_the_level_alpha(
    world: str, request: pytest.FixtureRequest
) -> None:
    runs = request.getfixturevalue(world)
    bound = false_accept_bound(len(runs), ALPHA)
    false_accepts = accepted(runs, DecisionRule(alpha=ALPHA))
    rate = false_accepts / len(runs)
    print(f"{world}: false accepts {false_accepts}/{len(runs)} = {rate:.3f} (bound {bound:.0f})")
    assert false_accepts <= bound
    # The bound has teeth: on the same runs it is broken by a rule whose test really runs at 0.45
    # (and no margin holds it back), and by a rule with no test at all.
    assert accepted(runs, BROKEN_RULE) > bound
    assert point_estimate_rule(runs) > bound


@pytest.mark.parametrize("alpha", [0.05, 0.2])
@pytest.mark.parametrize("world", ["equal_classifiers", "equal_regressors"])
def test_the_primary_test_alone_holds_its_level(
    world: str, alpha: float, request: pytest.FixtureRequest
) -> None:
    """McNemar's exact test and the paired t-test, each on its own, at more than one level."""
    runs = request.getfixturevalue(world)
    rejections = sum(next(c for c in run if c.primary).p_value < alpha for run in runs)
    print(f"{world}: the primary test alone rejects at alpha {alpha} in {rejections}/{len(runs)}")
    assert rejections <= false_accept_bound(len(runs), alpha)


def test_a_clearly_better_classifier_is_accepted_and_a_worse_one_never() -> None:
    better = classifier_runs(2000, POWER_SEEDS, (POOR, GOOD), resamples=200)
    worse = classifier_runs(2000, POWER_SEEDS, (GOOD, POOR), resamples=200)
    rule = DecisionRule(alpha=ALPHA)
    power = accepted(better, rule) / POWER_SEEDS
    print(f"classifier, 5.4 points more accurate on 2,000 rows: accepted in {power:.3f} of seeds")
    assert power >= 0.90
    assert accepted(worse, rule) == 0


def test_a_clearly_better_regressor_is_accepted_and_a_worse_one_never() -> None:
    # prediction noise 0.8 against 0.4: MAE 1.021 against 0.858 (measured on 1,000,000 rows)
    better = regressor_runs(2000, POWER_SEEDS, (0.8, 0.4), resamples=200)
    worse = regressor_runs(2000, POWER_SEEDS, (0.4, 0.8), resamples=200)
    rule = DecisionRule(alpha=ALPHA)
    power = accepted(better, rule) / POWER_SEEDS
    print(f"regressor, MAE 16% lower on 2,000 rows: accepted in {power:.3f} of seeds")
    assert power >= 0.90
    assert accepted(worse, rule) == 0


def sharpened(proba: np.ndarray, temperature: float) -> np.ndarray:
    """Binary probabilities with their log-odds multiplied by `temperature` (above 1: overconfident)."""
    q = 1 / (1 + np.exp(-np.log(proba[:, 1] / proba[:, 0]) * temperature))
    return np.column_stack([1 - q, q])


def overconfident_world(rows: int, seed: int, temperature: float) -> World:
    """Equally noisy models; the challenger made overconfident, so its log loss is worse."""
    y, champion, challenger = classifier_world(rows, seed, GOOD, GOOD)
    return y, champion, sharpened(challenger, temperature)


def temperature_for_log_loss_gap(gap: float) -> float:
    """The temperature that makes the challenger's log loss `gap` nats worse (1,000,000 rows)."""
    y, champion, challenger = classifier_world(1_000_000, 20_000, GOOD, GOOD)
    rows = np.arange(len(y))
    champion_loss = -np.log(champion[rows, y]).mean()

    def true_gap(temperature: float) -> float:
        return float(-np.log(sharpened(challenger, temperature)[rows, y]).mean() - champion_loss)

    low, high = 1.0, 3.0  # the gap grows with the temperature above 1
    for _ in range(30):
        middle = (low + high) / 2
        low, high = (middle, high) if true_gap(middle) < gap else (low, middle)
    return (low + high) / 2


def test_a_secondary_metric_worse_by_exactly_its_margin_passes_at_most_at_alpha() -> None:
    """The non-inferiority half of the rule at the edge of its null hypothesis.

    The challenger's log loss is worse by exactly the default margin: its check must pass in at
    most alpha of the seeds (alpha plus three standard errors), while a check on the point
    estimate passes in about half of them.
    """
    margin = DecisionRule().margins[LOG_LOSS]
    temperature = temperature_for_log_loss_gap(margin)
    runs = [
        compare_classifiers(*overconfident_world(500, seed, temperature), CLASSES, seed=seed, resamples=300)
        for seed in range(COVERAGE_SEEDS)
    ]
    verdicts = [decide(run, DecisionRule(alpha=ALPHA)).metric_verdicts[LOG_LOSS] for run in runs]
    passed = sum(verdict in PASSING for verdict in verdicts)
    print(
        f"log loss worse by its margin (temperature {temperature:.3f}): non-inferior in {passed}/{len(runs)}"
    )
    bound = false_accept_bound(len(runs), ALPHA)
    assert passed <= bound
    on_point_estimates = sum(
        next(c for c in run if c.metric == LOG_LOSS).difference <= margin for run in runs
    )
    assert on_point_estimates > bound


def coverage(runs: list[list[MetricComparison]], metric: str, truth: float) -> float:
    intervals = [next(c for c in run if c.metric == metric) for run in runs]
    return sum(c.low <= truth <= c.high for c in intervals) / len(intervals)


def true_differences(per_row: Callable[[int, int], tuple[float, ...]]) -> tuple[float, ...]:
    """Differences measured on 2,000,000 rows of the world (two seeds the runs never use)."""
    parts = np.array([per_row(1_000_000, 10_000 + part) for part in range(2)])
    return tuple(float(value) for value in parts.mean(axis=0))


def test_bootstrap_intervals_cover_the_true_difference_at_their_confidence() -> None:
    def gaps(rows: int, seed: int) -> tuple[float, float]:
        y, champion, challenger = classifier_world(rows, seed, POOR, GOOD)
        truth = np.arange(rows)
        log_loss = np.mean(np.log(champion[truth, y]) - np.log(challenger[truth, y]))
        auc = roc_auc_score(y, challenger[:, 1]) - roc_auc_score(y, champion[:, 1])
        return float(log_loss), float(auc)

    true_log_loss, true_auc = true_differences(gaps)
    runs = classifier_runs(500, COVERAGE_SEEDS, (POOR, GOOD), resamples=300, confidence=0.95)
    rates = {LOG_LOSS: coverage(runs, LOG_LOSS, true_log_loss), ROC_AUC: coverage(runs, ROC_AUC, true_auc)}
    print(f"95% interval coverage over {COVERAGE_SEEDS} seeds: {rates}")
    assert all(0.92 <= rate <= 0.98 for rate in rates.values()), rates


def test_the_mae_interval_covers_the_true_difference() -> None:
    def mae_gap(rows: int, seed: int) -> tuple[float]:
        y, champion, challenger = regressor_world(rows, seed, 0.8, 0.4)
        return (float(np.mean(np.abs(challenger - y)) - np.mean(np.abs(champion - y))),)

    runs = regressor_runs(500, COVERAGE_SEEDS, (0.8, 0.4), resamples=300, confidence=0.95)
    rate = coverage(runs, MAE, *true_differences(mae_gap))
    print(f"95% MAE interval coverage over {COVERAGE_SEEDS} seeds: {rate:.3f}")
    assert 0.92 <= rate <= 0.98
