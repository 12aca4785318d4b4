"""The deployment's runtime state and the operations on it, as pure functions.

State = the routing policy + the progress of an automatic rollout + the variant to go back to +
the variants added at runtime (`POST /admin/candidate`). The variant names every operation
checks against are the configured ones and the added ones (`DeploymentState.variant_names`).
Every operation returns a new state or raises `PolicyError` (the admin API answers 400/409).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from tabserve.errors import TabserveError
from tabserve.settings import Policy

ROLLOUT_RUNNING: Final = "running"
ROLLOUT_PROMOTED: Final = "promoted"
ROLLOUT_ROLLED_BACK: Final = "rolled_back"
ROLLOUT_STATES = (ROLLOUT_RUNNING, ROLLOUT_PROMOTED, ROLLOUT_ROLLED_BACK)
Stage = Literal["shadow", "canary"]
SHADOW_STAGE: Final[Stage] = "shadow"  # the candidate scores copies of the champion's traffic, answers none
CANARY_STAGE: Final[Stage] = "canary"


class PolicyError(TabserveError):
    """The operation does not apply to the current state (the message says why)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class GuardResult(_Frozen):
    value: float | None  # None: not measured (not enough data), so it cannot fire
    limit: float
    ok: bool
    detail: str


class Rollout(_Frozen):
    state: Literal["running", "promoted", "rolled_back"]
    steps: list[float]
    step: int  # index into steps
    started: datetime
    step_started: datetime
    reason: str = ""
    guards: dict[str, GuardResult] = Field(default_factory=dict)
    # A shadow stage before the canary steps (`step` is 0 during it); "canary" in older states.
    stage: Stage = CANARY_STAGE

    @property
    def shadowing(self) -> bool:
        return self.stage == SHADOW_STAGE

    @property
    def percent(self) -> float:
        """The candidate's share of answered traffic: none while it shadows."""
        return 0.0 if self.shadowing else self.steps[self.step]

    @property
    def where(self) -> str:
        """The stage for people: `the shadow stage` or `step 2 (25%)`."""
        return "the shadow stage" if self.shadowing else f"step {self.step + 1} ({self.percent:g}%)"


class AddedVariant(_Frozen):
    """A variant added at runtime: its model, and the evaluation that accepted it (if any)."""

    model: str  # NAME:VERSION, resolved (never "latest": every replica must load the same model)
    evaluation: str | None = None


class DeploymentState(_Frozen):
    policy: Policy
    rollout: Rollout | None = None
    previous: str | None = None  # where `rollback` goes after a promotion or a switch
    added: dict[str, AddedVariant] = Field(default_factory=dict)  # runtime variants (empty in old states)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def variant_names(self, configured: list[str]) -> list[str]:
        """The configured variants, then the added ones: what the policy may name."""
        return [*configured, *(name for name in self.added if name not in configured)]

    def variant_tags(self, configured: dict[str, str]) -> dict[str, str]:
        """Variant -> model tag, the added variants included."""
        return {**configured, **{name: added.model for name, added in self.added.items()}}

    def problems(self, configured: list[str]) -> list[str]:
        """What keeps this state from being served with these configured variants (empty: nothing)."""
        clashes = [name for name in self.added if name in configured]
        found = [f"added variant {name!r} is now a configured one" for name in clashes]
        return found + self.policy.problems(self.variant_names(configured))

    def evaluation_of(self, name: str | None) -> str | None:
        added = self.added.get(name or "")
        return None if added is None else added.evaluation

    @property
    def rollout_running(self) -> bool:
        return self.rollout is not None and self.rollout.state == ROLLOUT_RUNNING


def _checked(state: DeploymentState, names: list[str]) -> DeploymentState:
    problems = state.policy.problems(state.variant_names(names))
    if problems:
        raise PolicyError("; ".join(problems))
    return state


def _with_policy(state: DeploymentState, names: list[str], **changes: Any) -> DeploymentState:
    policy = Policy.model_validate({**state.policy.model_dump(), **changes})  # validated, unlike model_copy
    return _checked(state.model_copy(update={"policy": policy}), names)


def _no_running_rollout(state: DeploymentState, action: str) -> None:
    if state.rollout_running:
        raise PolicyError(f"{action}: a rollout is running; roll back or promote first", status=409)


def replace_policy(state: DeploymentState, names: list[str], policy: Policy) -> DeploymentState:
    _no_running_rollout(state, "set policy")
    replaced = state.model_copy(update={"policy": policy, "rollout": None, "previous": state.policy.primary})
    return _checked(replaced, names)


def switch(state: DeploymentState, names: list[str], to: str | None = None) -> DeploymentState:
    """Blue-green: all traffic to `to` (default: the other of two variants), at once."""
    _no_running_rollout(state, "switch")
    current = state.policy.primary
    if to is None:
        others = [name for name in state.variant_names(names) if name != current]
        if len(others) != 1:
            raise PolicyError(f"switch: name the variant to switch to (one of {', '.join(others)})")
        to = others[0]
    switched = _with_policy(state, names, strategy="blue-green", active=to)
    return switched.model_copy(update={"previous": current})


def set_weights(state: DeploymentState, names: list[str], weights: dict[str, float]) -> DeploymentState:
    """A/B: a sticky split by these weights."""
    _no_running_rollout(state, "weights")
    return _with_policy(state, names, strategy="ab", weights=weights)


def set_canary(state: DeploymentState, names: list[str], percent: float) -> DeploymentState:
    """Manual canary: `percent` of the traffic to the candidate."""
    _no_running_rollout(state, "canary")
    if not 0 <= percent <= 100:
        raise PolicyError("percent: must be within [0, 100]")
    return _with_policy(state, names, strategy="canary", canary_percent=percent)


def start_rollout(
    state: DeploymentState, names: list[str], steps: list[float], now: datetime, shadow_first: bool = False
) -> DeploymentState:
    """Automatic canary: the first step now (or a shadow stage first); guards decide the rest."""
    _no_running_rollout(state, "rollout")
    if shadow_first:
        started = _with_policy(state, names, strategy="shadow")
    else:
        started = _with_policy(state, names, strategy="canary", canary_percent=steps[0])
    stage: Stage = SHADOW_STAGE if shadow_first else CANARY_STAGE
    rollout = Rollout(state=ROLLOUT_RUNNING, steps=steps, step=0, started=now, step_started=now, stage=stage)
    return started.model_copy(update={"rollout": rollout})


def is_last_step(state: DeploymentState) -> bool:
    rollout = state.rollout
    return rollout is not None and not rollout.shadowing and rollout.step + 1 >= len(rollout.steps)


def advance(
    state: DeploymentState, names: list[str], now: datetime, guards: dict[str, GuardResult], reason: str
) -> DeploymentState:
    """The rollout's next step; after the last one, promotion (with `reason`)."""
    assert state.rollout is not None
    rollout = state.rollout.model_copy(update={"guards": guards})
    if is_last_step(state):
        return promote(state.model_copy(update={"rollout": rollout}), names, reason=reason)
    if rollout.shadowing:  # the shadow stage passed: the first canary step
        rollout = rollout.model_copy(update={"stage": CANARY_STAGE, "step": 0, "step_started": now})
    else:
        rollout = rollout.model_copy(update={"step": rollout.step + 1, "step_started": now})
    stepped = _with_policy(state, names, strategy="canary", canary_percent=rollout.percent)
    return stepped.model_copy(update={"rollout": rollout})


def promote(state: DeploymentState, names: list[str], reason: str = "") -> DeploymentState:
    """The candidate becomes the champion and takes all traffic; the old champion is kept to go back to."""
    policy = state.policy
    if policy.candidate is None:
        raise PolicyError("promote: there is no candidate", status=409)
    champion = policy.champion
    promoted = _with_policy(
        state,
        names,
        strategy="single",
        active=policy.candidate,
        champion=policy.candidate,
        candidate=champion,
    )
    rollout = state.rollout
    if rollout is not None and rollout.state == ROLLOUT_RUNNING:
        rollout = rollout.model_copy(update={"state": ROLLOUT_PROMOTED, "reason": reason})
    return promoted.model_copy(update={"rollout": rollout, "previous": champion})


def rollback(
    state: DeploymentState, names: list[str], reason: str, guards: dict[str, GuardResult] | None = None
) -> DeploymentState:
    """Everything back to the champion; after a promotion or switch, back to the previous variant."""
    policy = state.policy
    rollout = state.rollout
    if rollout is not None and rollout.state == ROLLOUT_RUNNING:
        update: dict[str, Any] = {"state": ROLLOUT_ROLLED_BACK, "reason": reason}
        rollout = rollout.model_copy(update=update if guards is None else {**update, "guards": guards})
    elif rollout is not None and rollout.state == ROLLOUT_PROMOTED and policy.active == policy.champion:
        # Undoing the promotion: what the rollout led to is undone too (status must not say "promoted").
        rollout = rollout.model_copy(
            update={"state": ROLLOUT_ROLLED_BACK, "reason": f"rolled back after its promotion: {reason}"}
        )
    if policy.strategy in ("canary", "ab", "shadow"):
        back = _with_policy(state, names, strategy="single", active=policy.champion)
        return back.model_copy(update={"rollout": rollout, "previous": None})
    if state.previous is None:
        raise PolicyError("rollback: nothing to go back to (no promotion or switch recorded)", status=409)
    target = state.previous
    # After a promotion the old champion is the candidate: swap them back.
    roles = {"champion": target, "candidate": policy.active} if policy.candidate == target else {}
    back = _with_policy(state, names, active=target, **roles)
    return back.model_copy(update={"rollout": rollout, "previous": policy.active})
