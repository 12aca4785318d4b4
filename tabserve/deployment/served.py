"""Which models the deployment serves now, for the jobs that run beside the service.

The drift job, file scoring and the stream worker default to what the service answers with:
the stored deployment state (changed by the admin API and by rollouts) over the configured
policy. Without this, after a promotion the job monitored the configured champion, which got no
traffic any more, and reported "ok" on stale rows (issue 15).

Variant names map to model tags through the configuration (`deployment.variants`) and the
variants added at runtime (`POST /admin/candidate`, kept in the stored state), as in the
service: after the promotion of an added variant, the jobs follow the promoted model. A stored
state that does not fit the configured variants is ignored, as the service ignores it (it
starts from the configured policy).
"""

from __future__ import annotations

import logging
from pathlib import Path

from pydantic import ValidationError
from sqlalchemy import Engine, inspect
from sqlalchemy.exc import SQLAlchemyError

from tabserve.deployment.policy import DeploymentState
from tabserve.deployment.routing import shadow_of, traffic_shares
from tabserve.deployment.store import deployment_state, read_state
from tabserve.errors import TabserveError
from tabserve.predictions.store import make_engine
from tabserve.settings import Policy, Settings

logger = logging.getLogger(__name__)


class DeploymentStateError(TabserveError):
    """The stored deployment state could not be read (the message says how to go on)."""


def served_variants(policy: Policy, variants: dict[str, str]) -> dict[str, str]:
    """Pure: variant -> model tag of every variant that answers traffic or scores shadow copies.

    The primary variant comes first (a canary's champion before its candidate).
    """
    shares = traffic_shares(policy, list(variants))
    shadow = shadow_of(policy)
    primary = str(policy.primary)
    names = [name for name in variants if shares.get(name, 0.0) > 0 or name == shadow]
    names.sort(key=lambda name: name != primary)
    return {name: variants[name] for name in names}


def stored_state(engine: Engine, configured: DeploymentState, names: list[str]) -> DeploymentState:
    """The stored state when it fits these variants; else the configured one (as the service does)."""
    if not inspect(engine).has_table(deployment_state.name):
        return configured  # the service has never stored a state here
    stored = read_state(engine)
    if stored is None:
        return configured
    try:
        state = DeploymentState.model_validate(stored[1])
    except ValidationError as error:
        logger.warning(
            "stored deployment state %d is not readable (%s); using the configuration", stored[0], error
        )
        return configured
    problems = state.problems(names)
    if problems:
        logger.warning(
            "stored deployment state does not fit the configured variants: %s", "; ".join(problems)
        )
        return configured
    return state


def _no_database_yet(settings: Settings) -> bool:
    """The default SQLite log does not exist until the service (or a job) first writes to it."""
    monitoring = settings.monitoring
    return monitoring.database_url is None and not Path(monitoring.sqlite_path).is_file()


def current_state(settings: Settings) -> DeploymentState:
    """The state the service applies now (read from the prediction-log database).

    An unreachable database is an error, not a fall-back to a model that may not be the served one.
    """
    configured = DeploymentState(policy=settings.policy)
    if _no_database_yet(settings):
        return configured
    engine = make_engine(settings.monitoring.url)
    try:
        return stored_state(engine, configured, list(settings.variants))
    except SQLAlchemyError as error:
        reason = str(getattr(error, "orig", None) or type(error).__name__).strip().splitlines()[0]
        raise DeploymentStateError(
            f"prediction-log database unreachable: {reason}; it says which model is served: "
            "name the model with --model to go on without it"
        ) from None
    finally:
        engine.dispose()


def current_policy(settings: Settings) -> Policy:
    """The policy the service applies now."""
    return current_state(settings).policy


def variant_models(settings: Settings) -> dict[str, str]:
    """Variant -> model tag of every variant the service knows now, the added ones included."""
    return current_state(settings).variant_tags(settings.variants)


def served_models(settings: Settings) -> dict[str, str]:
    """Variant -> model tag of everything the service serves now (primary first)."""
    state = current_state(settings)
    return served_variants(state.policy, state.variant_tags(settings.variants))


def primary_model(settings: Settings) -> str:
    """The model of the variant that answers unsplit work (file scoring, the stream worker)."""
    state = current_state(settings)
    return state.variant_tags(settings.variants)[str(state.policy.primary)]
