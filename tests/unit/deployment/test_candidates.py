"""Variants added at runtime: the pure state operations (add, prune, names) and old states."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tabserve.deployment.candidates import add_candidate, default_name
from tabserve.deployment.policy import (
    AddedVariant,
    DeploymentState,
    GuardResult,
    PolicyError,
    advance,
    promote,
    rollback,
    start_rollout,
    switch,
)
from tabserve.settings import Policy

NAMES = ["champion", "candidate"]
NOW = datetime(2026, 1, 1, tzinfo=UTC)
START = DeploymentState(policy=Policy(active="champion", champion="champion", candidate="candidate"))
PASSED = {"error_rate": GuardResult(value=0.0, limit=0.01, ok=True, detail="0/100")}
V5 = AddedVariant(model="churn:v5", evaluation="eval-5")
V6 = AddedVariant(model="churn:v6", evaluation="eval-6")
V7 = AddedVariant(model="churn:v7")


def test_a_candidate_is_added_beside_the_configured_variants_and_shadowed_first() -> None:
    added = add_candidate(START, NAMES, "v5", V5, NOW, [50, 100])
    policy, rollout = added.policy, added.rollout
    assert (policy.strategy, policy.champion, policy.candidate) == ("shadow", "champion", "v5")
    assert rollout is not None and rollout.shadowing and rollout.percent == 0 and rollout_running(added)
    assert added.added == {"v5": V5} and added.variant_names(NAMES) == ["champion", "candidate", "v5"]
    assert added.variant_tags({"champion": "churn:v3", "candidate": "churn:v4"})["v5"] == "churn:v5"
    assert added.evaluation_of("v5") == "eval-5" and added.evaluation_of("champion") is None


def rollout_running(state: DeploymentState) -> bool:
    return state.rollout_running


def test_without_a_rollout_the_candidate_is_loaded_but_gets_no_traffic() -> None:
    added = add_candidate(START, NAMES, "v5", V5, NOW, None)
    assert (added.policy.strategy, added.policy.active, added.policy.candidate) == (
        "single",
        "champion",
        "v5",
    )
    assert added.rollout is None and added.added == {"v5": V5}


def test_shadow_then_each_canary_step_then_promotion_of_the_added_variant() -> None:
    shadowing = add_candidate(START, NAMES, "v5", V5, NOW, [50, 100])
    later = NOW + timedelta(minutes=1)
    first = advance(shadowing, NAMES, later, PASSED, "shadow passed")
    assert first.rollout is not None and not first.rollout.shadowing
    assert (first.policy.strategy, first.policy.canary_percent, first.rollout.step) == ("canary", 50, 0)
    assert first.rollout.step_started == later
    second = advance(first, NAMES, later, PASSED, "step 1 passed")
    assert (second.policy.canary_percent, second.rollout and second.rollout.step) == (100, 1)
    done = advance(second, NAMES, later, PASSED, "all passed")
    assert done.rollout is not None and done.rollout.state == "promoted"
    assert (done.policy.active, done.policy.champion, done.previous) == ("v5", "v5", "champion")
    assert rollback(done, NAMES, "undo").policy.active == "champion"  # back to the configured one


def test_a_shadow_stage_can_be_rolled_back_to_the_champion() -> None:
    back = rollback(add_candidate(START, NAMES, "v5", V5, NOW, [50, 100]), NAMES, "guard fired")
    assert (back.policy.strategy, back.policy.active) == ("single", "champion")
    assert back.rollout is not None and (back.rollout.state, back.rollout.stage) == ("rolled_back", "shadow")


def test_added_variants_without_a_role_are_pruned_when_a_new_one_comes() -> None:
    promoted = promote(add_candidate(START, NAMES, "v5", V5, NOW, None), NAMES)  # v5 champion
    six = add_candidate(promoted, NAMES, "v6", V6, NOW, None)
    assert set(six.added) == {"v5", "v6"} and six.policy.champion == "v5"
    rejected = rollback(start_rollout(six, NAMES, [100], NOW), NAMES, "v6 failed")
    seven = add_candidate(rejected, NAMES, "v7", V7, NOW, None)
    assert set(seven.added) == {"v5", "v7"}  # v6 had no role left; v5 is still champion
    promoted_seven = promote(seven, NAMES)  # v7 champion, v5 candidate and rollback target
    eight = add_candidate(promoted_seven, NAMES, "v8", AddedVariant(model="churn:v8"), NOW, None)
    assert set(eight.added) == {"v5", "v7", "v8"}  # v5 is `previous`: rollback goes there
    nine = add_candidate(switch(eight, NAMES, "champion"), NAMES, "v9", AddedVariant(model="c:9"), NOW, None)
    assert set(nine.added) == {"v7", "v9"}  # after the switch: champion active, v7 previous


def test_operations_accept_added_names_and_reject_unknown_ones() -> None:
    added = add_candidate(START, NAMES, "v5", V5, NOW, None)
    assert switch(added, NAMES, "v5").policy.active == "v5"
    with pytest.raises(PolicyError, match="no variant 'v6'"):
        switch(added, NAMES, "v6")


@pytest.mark.parametrize(
    ("name", "variant", "status", "message"),
    [
        ("candidate", V5, 409, "is a configured variant"),
        ("champion", V5, 409, "is a configured variant"),
        ("v5", V6, 409, "already serves churn:v5"),
        ("bad name!", V6, 400, "not a variant name"),
    ],
)
def test_a_name_taken_or_malformed_is_refused(
    name: str, variant: AddedVariant, status: int, message: str
) -> None:
    state = add_candidate(START, NAMES, "v5", V5, NOW, None)
    with pytest.raises(PolicyError, match=message) as raised:
        add_candidate(state, NAMES, name, variant, NOW, None)
    assert raised.value.status == status


def test_the_same_model_can_be_added_again_after_its_rollback() -> None:
    failed = rollback(add_candidate(START, NAMES, "v5", V5, NOW, [100]), NAMES, "guard fired")
    again = add_candidate(failed, NAMES, "v5", V5.model_copy(update={"evaluation": "eval-5b"}), NOW, [100])
    assert again.rollout_running and again.evaluation_of("v5") == "eval-5b"


def test_a_running_rollout_refuses_a_new_candidate() -> None:
    running = add_candidate(START, NAMES, "v5", V5, NOW, [100])
    with pytest.raises(PolicyError, match="a rollout is running") as raised:
        add_candidate(running, NAMES, "v6", V6, NOW, [100])
    assert raised.value.status == 409


def test_the_default_name_is_the_version() -> None:
    assert default_name("churn:4kq2xx") == "4kq2xx"
    with pytest.raises(PolicyError, match="give one"):
        default_name("churn:bad version")


def test_a_state_stored_before_runtime_variants_still_parses() -> None:
    old = {
        "policy": {
            "strategy": "canary",
            "active": "a",
            "champion": "a",
            "candidate": "b",
            "canary_percent": 5,
        },
        "rollout": {
            "state": "running",
            "steps": [5, 100],
            "step": 0,
            "started": "2026-01-01T00:00:00Z",
            "step_started": "2026-01-01T00:00:00Z",
            "reason": "",
            "guards": {},
        },
        "previous": None,
    }
    state = DeploymentState.model_validate(old)
    assert state.added == {} and state.rollout is not None and state.rollout.stage == "canary"
    assert state.rollout.percent == 5 and state.problems(["a", "b"]) == []
    assert DeploymentState.model_validate(state.to_json()) == state


def test_an_added_name_that_is_now_configured_does_not_fit() -> None:
    state = add_candidate(START, NAMES, "v5", V5, NOW, None)
    assert state.problems(NAMES) == []
    assert state.problems([*NAMES, "v5"])[0] == "added variant 'v5' is now a configured one"
