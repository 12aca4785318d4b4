"""Rollout guards and decisions on known evidence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from tabserve.deployment.policy import DeploymentState, start_rollout
from tabserve.deployment.rollout import ADVANCE, ROLL_BACK, WAIT, Evidence, judge, psi
from tabserve.deployment.store import VariantSummary
from tabserve.deployment.variant_stats import bucket_of
from tabserve.monitoring.quality import worse_beyond_margin_p
from tabserve.settings import Policy, RolloutSettings

SETTINGS = RolloutSettings(min_requests=100, min_seconds=60, max_p99_ms=100, min_labels=50)
NOW = datetime(2026, 1, 1, tzinfo=UTC)
RUNNING = start_rollout(
    DeploymentState(policy=Policy(active="a", champion="a", candidate="b")), ["a", "b"], [10, 100], NOW
)


def outcomes(rows: int, share_yes: float, accuracy: float | None = None, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    prediction = np.where(rng.random(rows) < share_yes, "yes", "no")
    label = None
    if accuracy is not None:
        flip = rng.random(rows) >= accuracy
        label = np.where(flip, np.where(prediction == "yes", "no", "yes"), prediction)
    return pd.DataFrame({"prediction": prediction, "label": label})


def evidence(
    requests: int = 500,
    errors: int = 0,
    latency_ms: float = 5,
    candidate: pd.DataFrame | None = None,
    **kw: pd.DataFrame,
) -> Evidence:
    return Evidence(
        candidate=VariantSummary(requests, errors, {bucket_of(latency_ms): requests}),
        candidate_outcomes=outcomes(500, 0.4, 0.95, seed=1) if candidate is None else candidate,
        champion_outcomes=kw.get("champion", outcomes(2000, 0.4, 0.95, seed=2)),
        classifier=True,
    )


def test_psi_is_small_for_the_same_distribution_and_large_for_a_shift() -> None:
    same = psi(outcomes(2000, 0.4)["prediction"], outcomes(2000, 0.4, seed=3)["prediction"], True)
    shifted = psi(outcomes(2000, 0.4)["prediction"], outcomes(2000, 0.9, seed=3)["prediction"], True)
    assert same < 0.01 and shifted > 0.5
    rng = np.random.default_rng(0)
    numbers = pd.Series(rng.normal(0, 1, 5000))
    assert psi(numbers, pd.Series(rng.normal(0, 1, 5000)), False) < 0.02
    assert psi(numbers, pd.Series(rng.normal(1, 1, 5000)), False) > 0.5


def test_too_few_requests_waits_without_judging() -> None:
    decision, guards, reason = judge(RUNNING, evidence(requests=99, errors=99), SETTINGS, NOW)
    assert (decision, guards) == (WAIT, {}) and "99/100" in reason


def test_healthy_candidate_waits_for_min_seconds_then_advances() -> None:
    assert judge(RUNNING, evidence(), SETTINGS, NOW + timedelta(seconds=59))[0] == WAIT
    decision, guards, _ = judge(RUNNING, evidence(), SETTINGS, NOW + timedelta(seconds=60))
    assert decision == ADVANCE and all(guard.ok for guard in guards.values())


@pytest.mark.parametrize(
    ("case", "fired"),
    [
        (evidence(errors=10), "error_rate"),
        (evidence(latency_ms=300), "p99_latency"),
        (evidence(candidate=outcomes(500, 0.95, 0.95, seed=1)), "prediction_drift"),
        (evidence(candidate=outcomes(500, 0.4, 0.6, seed=1)), "quality"),
    ],
)
def test_each_guard_rolls_back_and_is_named(case: Evidence, fired: str) -> None:
    decision, guards, reason = judge(RUNNING, case, SETTINGS, NOW + timedelta(seconds=60))
    assert decision == ROLL_BACK and not guards[fired].ok
    assert reason.startswith(f"guard {fired} fired at step 1 (10%)")
    assert [name for name, guard in guards.items() if not guard.ok] == [fired]


def test_operational_guards_fire_before_min_seconds_statistical_ones_wait() -> None:
    assert judge(RUNNING, evidence(errors=10), SETTINGS, NOW)[0] == ROLL_BACK
    decision, guards, _ = judge(RUNNING, evidence(candidate=outcomes(500, 0.4, 0.6, seed=1)), SETTINGS, NOW)
    assert decision == WAIT and "quality" not in guards


def test_a_small_insignificant_drop_does_not_fire() -> None:
    # 60 labels at 90% vs 95%: more than the allowed 5 points, but well within chance.
    late = NOW + timedelta(seconds=60)
    case = evidence(candidate=outcomes(60, 0.4, 0.89, seed=4))
    decision, guards, _ = judge(RUNNING, case, SETTINGS.model_copy(update={"min_labels": 50}), late)
    assert guards["quality"].value is not None and guards["quality"].ok and decision == ADVANCE


def test_guards_without_enough_data_cannot_fire() -> None:
    unlabelled = outcomes(500, 0.4, seed=1)
    decision, guards, _ = judge(RUNNING, evidence(candidate=unlabelled), SETTINGS, NOW + timedelta(hours=1))
    assert (
        decision == ADVANCE
        and guards["quality"].value is None
        and "not enough labels" in guards["quality"].detail
    )


def test_the_quality_test_asks_whether_the_drop_exceeds_the_margin() -> None:
    def correct(right: int, total: int) -> np.ndarray:
        return np.array([1.0] * right + [0.0] * (total - right))

    # Seen in a real run: an identical model, unlucky on 105 labels. Not beyond the 5-point margin.
    assert worse_beyond_margin_p(correct(347, 355), correct(97, 105), True, 0.05) > 0.3
    assert worse_beyond_margin_p(correct(970, 1000), correct(60, 100), True, 0.05) < 1e-6
    rng = np.random.default_rng(0)
    champion_errors = np.abs(rng.normal(0, 1, 2000))
    assert worse_beyond_margin_p(champion_errors, np.abs(rng.normal(0, 1, 300)), False, 0.05) > 0.1
    assert worse_beyond_margin_p(champion_errors, np.abs(rng.normal(0, 2, 300)), False, 0.05) < 1e-6


# --- the shadow stage before the canary steps --------------------------------------------------

SHADOWING = start_rollout(
    DeploymentState(policy=Policy(active="a", champion="a", candidate="b")),
    ["a", "b"],
    [10, 100],
    NOW,
    shadow_first=True,
)


def test_the_shadow_stage_waits_for_shadow_scored_requests_and_min_seconds() -> None:
    decision, _, reason = judge(SHADOWING, evidence(requests=99), SETTINGS, NOW + timedelta(hours=1))
    assert decision == WAIT and reason == "99/100 shadow-scored requests"
    assert judge(SHADOWING, evidence(), SETTINGS, NOW + timedelta(seconds=59))[0] == WAIT
    decision, guards, reason = judge(SHADOWING, evidence(), SETTINGS, NOW + timedelta(seconds=60))
    assert decision == ADVANCE and reason == "the shadow stage passed every guard"
    # What a copy can show: no quality (labels come for the answer), no outcomes.
    assert set(guards) == {"error_rate", "p99_latency", "prediction_drift"}


@pytest.mark.parametrize(
    ("case", "fired"),
    [
        (evidence(errors=10), "error_rate"),
        (evidence(latency_ms=300), "p99_latency"),
        (evidence(candidate=outcomes(500, 0.95, seed=1)), "prediction_drift"),
    ],
)
def test_the_shadow_stage_rolls_back_on_errors_latency_or_prediction_drift(
    case: Evidence, fired: str
) -> None:
    decision, guards, reason = judge(SHADOWING, case, SETTINGS, NOW + timedelta(seconds=60))
    assert decision == ROLL_BACK and not guards[fired].ok
    assert reason.startswith(f"guard {fired} fired at the shadow stage")


def test_a_shadow_stage_does_not_judge_quality_on_copies_without_labels() -> None:
    # A candidate that is wrong on the labels still passes the shadow stage: its copies carry
    # no labels, so the quality guard judges at the canary steps.
    bad = evidence(candidate=outcomes(500, 0.4, 0.6, seed=1))
    assert judge(SHADOWING, bad, SETTINGS, NOW + timedelta(seconds=60))[0] == ADVANCE
    assert judge(RUNNING, bad, SETTINGS, NOW + timedelta(seconds=60))[0] == ROLL_BACK
