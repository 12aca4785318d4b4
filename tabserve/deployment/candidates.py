"""Variants added at runtime (`POST /admin/candidate`), as pure functions of the state.

A candidate joins the state next to the configured variants, the current primary becomes its
champion, and (by default) a rollout starts with a shadow stage. The state never grows without
bound: the added variants that no longer have a role (champion, candidate, active, or the
rollback target) are dropped when a new one comes.
"""

from __future__ import annotations

from datetime import datetime

from tabserve.deployment.policy import (
    AddedVariant,
    DeploymentState,
    PolicyError,
    start_rollout,
)
from tabserve.settings import VARIANT_NAME, Policy


def default_name(tag: str) -> str:
    """The variant name of a model tag: its version (`churn:4kq2` -> `4kq2`), else its name."""
    name, _, version = tag.partition(":")
    candidate = version or name
    if not VARIANT_NAME.match(candidate):
        raise PolicyError(f"name: cannot derive a variant name from {tag!r}; give one")
    return candidate


def in_use(state: DeploymentState) -> set[str]:
    """The variants with a role in the state: kept when added variants are pruned."""
    policy = state.policy
    roles = {policy.active, policy.champion, policy.candidate, state.previous}
    return {name for name in roles if name is not None}


def pruned(state: DeploymentState) -> DeploymentState:
    keep = in_use(state)
    return state.model_copy(update={"added": {n: a for n, a in state.added.items() if n in keep}})


def check_name(state: DeploymentState, names: list[str], name: str, variant: AddedVariant) -> None:
    """A configured name, or an added one serving another model, cannot be taken (409)."""
    if not VARIANT_NAME.match(name):
        raise PolicyError(f"name: {name!r} is not a variant name (letters, digits, '_', '.', '-')")
    if name in names:
        raise PolicyError(f"name: {name!r} is a configured variant; choose another name", status=409)
    existing = state.added.get(name)
    if existing is not None and existing.model != variant.model:
        raise PolicyError(
            f"name: variant {name!r} already serves {existing.model}; choose another name", status=409
        )


def add_candidate(
    state: DeploymentState,
    names: list[str],
    name: str,
    variant: AddedVariant,
    now: datetime,
    steps: list[float] | None,
) -> DeploymentState:
    """`variant` added as the candidate of the current primary; with `steps`, a rollout started,
    shadow stage first. `names`: the configured variants."""
    if state.rollout_running:
        raise PolicyError("candidate: a rollout is running; roll back or promote first", status=409)
    check_name(state, names, name, variant)
    primary = str(state.policy.primary)
    if primary == name:
        raise PolicyError(f"candidate: {name!r} is the primary variant already", status=409)
    policy = Policy(strategy="single", active=primary, champion=primary, candidate=name)
    added = pruned(state.model_copy(update={"policy": policy})).added | {name: variant}
    base = DeploymentState(policy=policy, previous=state.previous, added=added)
    problems = base.problems(names)
    if problems:
        raise PolicyError("; ".join(problems))
    if steps is None:
        return base
    return start_rollout(base, names, steps, now, shadow_first=True)
