"""Operations on the deployment state: switch, weights, canary, rollout, promote, rollback."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tabserve.deployment.policy import (
    DeploymentState,
    GuardResult,
    PolicyError,
    advance,
    promote,
    replace_policy,
    rollback,
    set_canary,
    set_weights,
    start_rollout,
    switch,
)
from tabserve.settings import Policy

NAMES = ["champion", "candidate"]
NOW = datetime(2026, 1, 1, tzinfo=UTC)
START = DeploymentState(policy=Policy(active="champion", champion="champion", candidate="candidate"))
PASSED = {"error_rate": GuardResult(value=0.0, limit=0.01, ok=True, detail="0/100")}


def test_switch_and_switch_back() -> None:
    green = switch(START, NAMES)
    assert (green.policy.strategy, green.policy.active, green.previous) == (
        "blue-green",
        "candidate",
        "champion",
    )
    assert switch(green, NAMES).policy.active == "champion"
    assert rollback(green, NAMES, "bad").policy.active == "champion"


def test_switch_needs_a_target_among_several() -> None:
    with pytest.raises(PolicyError, match="name the variant"):
        switch(START, ["a", "champion", "c"])
    with pytest.raises(PolicyError, match="no variant 'purple'"):
        switch(START, NAMES, to="purple")


def test_weights_and_canary_are_validated() -> None:
    assert set_weights(START, NAMES, {"champion": 1, "candidate": 1}).policy.strategy == "ab"
    with pytest.raises(PolicyError, match="no variant 'x'"):
        set_weights(START, NAMES, {"x": 1})
    with pytest.raises(PolicyError, match="positive sum"):
        set_weights(START, NAMES, {"champion": 0})
    with pytest.raises(PolicyError, match="percent"):
        set_canary(START, NAMES, 120)


def test_promote_then_rollback_goes_back_to_the_old_champion() -> None:
    promoted = promote(START, NAMES)
    assert (promoted.policy.active, promoted.policy.champion, promoted.policy.candidate) == (
        "candidate",
        "candidate",
        "champion",
    )
    back = rollback(promoted, NAMES, "regression")
    assert (back.policy.active, back.policy.champion, back.policy.candidate) == (
        "champion",
        "champion",
        "candidate",
    )


def test_rollback_without_history_is_a_conflict() -> None:
    with pytest.raises(PolicyError) as raised:
        rollback(START, NAMES, "why")
    assert raised.value.status == 409


def test_a_rollout_steps_through_then_promotes() -> None:
    running = start_rollout(START, NAMES, [10, 50, 100], NOW)
    assert (running.policy.strategy, running.policy.canary_percent, running.rollout_running) == (
        "canary",
        10,
        True,
    )
    later = NOW + timedelta(minutes=1)
    second = advance(running, NAMES, later, PASSED, "ok")
    assert (
        second.policy.canary_percent == 50
        and second.rollout is not None
        and second.rollout.step_started == later
    )
    done = advance(advance(second, NAMES, later, PASSED, "ok"), NAMES, later, PASSED, "all passed")
    assert done.rollout is not None and (done.rollout.state, done.rollout.reason) == (
        "promoted",
        "all passed",
    )
    assert done.policy.active == "candidate" and done.policy.strategy == "single"


def test_a_running_rollout_blocks_manual_splits_but_not_rollback() -> None:
    running = start_rollout(START, NAMES, [10, 100], NOW)
    for operation in (
        lambda: set_weights(running, NAMES, {"champion": 1}),
        lambda: switch(running, NAMES),
        lambda: replace_policy(running, NAMES, Policy(active="champion")),
        lambda: start_rollout(running, NAMES, [10, 100], NOW),
    ):
        with pytest.raises(PolicyError) as raised:
            operation()
        assert raised.value.status == 409
    back = rollback(running, NAMES, "guard fired", PASSED)
    assert back.policy.active == "champion" and back.rollout is not None
    assert (back.rollout.state, back.rollout.reason, back.rollout.guards) == (
        "rolled_back",
        "guard fired",
        PASSED,
    )


def test_state_round_trips_through_json() -> None:
    running = start_rollout(START, NAMES, [10, 100], NOW)
    assert DeploymentState.model_validate(running.to_json()) == running
