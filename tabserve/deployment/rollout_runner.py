"""A running rollout, judged once: the evidence read, the guards applied, and the step taken
(advance, promote or roll back) through the shared state's compare and swap.

Every worker of every replica judges on its own schedule; the compare and swap makes sure
only one of them acts on each step (the others find the step already taken).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from tabserve.deployment.policy import DeploymentState, advance, is_last_step, rollback
from tabserve.deployment.rollout import ADVANCE, ROLL_BACK, StepProgress, gather, judge, step_progress
from tabserve.deployment.shared_state import ROLLOUT_ACTOR, SharedState
from tabserve.deployment.store import Change
from tabserve.serving.metrics import ServiceMetrics
from tabserve.settings import RolloutSettings


def judge_rollout(
    shared: SharedState,
    settings: RolloutSettings,
    classifier: bool,
    metrics: ServiceMetrics,
    now: datetime | None = None,
    outcome_kinds: Mapping[str, str] | None = None,
) -> StepProgress | None:
    """Judge the running rollout once; returns how far its step was (None: no rollout running)."""
    state = shared.state
    if not state.rollout_running or state.rollout is None:
        return None
    now = now or datetime.now(UTC)
    evidence = gather(shared.engine, state, settings, classifier, outcome_kinds)
    progress = step_progress(state, evidence, settings, now)
    decision, guards, reason = judge(state, evidence, settings, now)
    metrics.show_guards(guards)
    judged = (state.rollout.started, state.rollout.stage, state.rollout.step)
    names = shared.names
    evaluation = state.evaluation_of(state.policy.candidate)
    # The audit trail ties every step to the evaluation that accepted the candidate.
    of_evaluation = "" if evaluation is None else f" (evaluation {evaluation})"

    def still_at_step(current: DeploymentState) -> bool:
        """The same rollout at the same step: otherwise another worker acted first."""
        rollout = current.rollout
        return (
            current.rollout_running
            and rollout is not None
            and (rollout.started, rollout.stage, rollout.step) == judged
        )

    if decision == ADVANCE:
        last = is_last_step(state)
        if last:
            reason = f"{reason}; every step passed: promoted"
        reason += of_evaluation
        shared.apply(
            lambda current: advance(current, names, now, guards, reason) if still_at_step(current) else None,
            Change(ROLLOUT_ACTOR, "promote" if last else ADVANCE, reason),
        )
    elif decision == ROLL_BACK:
        reason += of_evaluation
        shared.apply(
            lambda current: rollback(current, names, reason, guards) if still_at_step(current) else None,
            Change(ROLLOUT_ACTOR, ROLL_BACK, reason),
        )
    return progress
