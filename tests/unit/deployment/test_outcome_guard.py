"""The rollout's outcome guard on known evidence: a real drop of clicks rolls back, chance does not."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from pydantic import ValidationError

from tabserve.deployment.outcome_guard import OutcomeEvidence, outcome_guard
from tabserve.deployment.rollout import ADVANCE, ROLL_BACK, Evidence, judge
from tabserve.predictions.outcomes import OutcomeSums
from tabserve.settings import DeploymentSettings, RolloutSettings
from tests.unit.deployment.test_rollout import NOW, RUNNING, evidence

SETTINGS = RolloutSettings(
    min_requests=100, min_seconds=60, max_p99_ms=100, min_labels=50, outcome_guards={"click": 0.01}
)
LATER = NOW + timedelta(seconds=60)


def clicks(champion: tuple[int, int], candidate: tuple[int, int]) -> OutcomeEvidence:
    def sums(events: int, requests: int) -> OutcomeSums:
        return OutcomeSums(requests, events, float(events), float(events))

    return OutcomeEvidence("rate", sums(*champion), sums(*candidate))


def with_clicks(champion: tuple[int, int], candidate: tuple[int, int]) -> Evidence:
    return dataclasses.replace(evidence(), business={"click": clicks(champion, candidate)})


def test_a_real_drop_of_the_click_rate_rolls_back_and_is_named() -> None:
    decision, guards, reason = judge(RUNNING, with_clicks((200, 2000), (20, 500)), SETTINGS, LATER)
    assert decision == ROLL_BACK and not guards["outcome:click"].ok
    assert "outcome:click" in reason and "click rate 0.04 vs champion 0.1" in reason


def test_the_same_click_rate_advances() -> None:
    decision, guards, _ = judge(RUNNING, with_clicks((200, 2000), (49, 500)), SETTINGS, LATER)
    assert decision == ADVANCE and guards["outcome:click"].ok and guards["outcome:click"].value == 0.098


def test_a_drop_within_the_margin_does_not_fire() -> None:
    """9.5% against 10%: lower, but not significantly more than 1 point lower."""
    guard = outcome_guard("click", clicks((2000, 20000), (950, 10000)), 0.01, SETTINGS)
    assert guard.ok and "no evidence" in guard.detail


def test_too_few_requests_cannot_fire() -> None:
    guard = outcome_guard("click", clicks((200, 2000), (0, 99)), 0.01, SETTINGS)
    assert guard.ok and guard.value is None and "not enough requests" in guard.detail


def test_a_value_outcome_uses_a_relative_margin() -> None:
    def revenue(mean: float, requests: int) -> OutcomeSums:  # every request spends `mean` +- 1
        return OutcomeSums(requests, requests, mean * requests, (mean**2 + 1) * requests)

    down = outcome_guard(
        "revenue", OutcomeEvidence("value", revenue(10, 2000), revenue(8, 500)), 0.05, SETTINGS
    )
    same = outcome_guard(
        "revenue", OutcomeEvidence("value", revenue(10, 2000), revenue(10, 500)), 0.05, SETTINGS
    )
    assert not down.ok and "more than 5% lower" in down.detail
    assert same.ok


def test_a_guard_must_name_a_configured_outcome() -> None:
    with pytest.raises(
        ValidationError, match=r"rollout\.outcome_guards: 'click' is not one of deployment\.outcomes"
    ):
        DeploymentSettings(rollout=RolloutSettings(outcome_guards={"click": 0.01}))
    with pytest.raises(ValidationError, match="allowed drop must be >= 0"):
        DeploymentSettings(outcomes={"click": "rate"}, rollout=RolloutSettings(outcome_guards={"click": -1}))
    with pytest.raises(ValidationError, match="Input should be 'rate' or 'value'"):
        DeploymentSettings(outcomes={"click": "count"})  # type: ignore[dict-item]
    assert DeploymentSettings(outcomes={"click": "rate"}, rollout=SETTINGS).rollout.outcome_guards == {
        "click": 0.01
    }
