"""The deployment state every worker and replica shares through the database.

Loaded at start (the configured policy is stored on a first start, or when the stored state
no longer fits the configured variants), changed only by compare and swap on its version, and
followed by polling that version: a change made through any worker is stored first, then
every worker picks it up within `deployment.refresh_ms`.

A state may name variants added at runtime: `prepare` (the deployment's) loads their models
before the state is applied, so no request is routed to a model this worker has not loaded. A
model that cannot be loaded here (a replica whose model store lacks it) leaves this worker on
the state it had, with one ERROR per stored version, until the model can be loaded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Engine

from tabserve.deployment.policy import DeploymentState, PolicyError
from tabserve.deployment.rollout import ROLL_BACK
from tabserve.deployment.store import Change, read_state, read_version, write_state
from tabserve.errors import TabserveError
from tabserve.predictions.migration import ensure_schema

logger = logging.getLogger(__name__)
CONFIGURATION_ACTOR, ROLLOUT_ACTOR = "configuration", "rollout"
APPLY_ATTEMPTS = 5
FIRST_START = "first start: the configured policy"
UNLOADED = 0  # version before the stored state could be read (stored versions start at 1)

Operation = Callable[[DeploymentState], DeploymentState | None]
Prepare = Callable[[DeploymentState], None]


class VariantLoadError(TabserveError):
    """A variant the state names cannot be loaded in this worker (the message names it and why)."""


class SharedState:
    """This process's copy of the stored state: `version` and `state`, replaced together."""

    def __init__(
        self,
        engine: Engine,
        names: list[str],
        configured: DeploymentState,
        on_change: Callable[[int, DeploymentState], None] = lambda _version, _state: None,
        prepare: Prepare = lambda _state: None,
    ) -> None:
        self.engine, self.names, self.configured = engine, names, configured
        self._on_change, self._prepare = on_change, prepare
        self._unloadable: int | None = None  # the stored version whose variants failed to load here
        self._set(UNLOADED, configured)

    @property
    def loaded(self) -> bool:
        return self.version != UNLOADED

    def _set(self, version: int, state: DeploymentState) -> None:
        self._prepare(state)  # raises VariantLoadError: nothing changes here
        self.version, self.state = version, state
        self._on_change(version, state)

    def _set_or_keep(self, version: int, state: DeploymentState) -> None:
        """Apply a stored state; if its variants cannot be loaded here, keep serving the current one."""
        try:
            self._set(version, state)
        except VariantLoadError as error:
            if self._unloadable != version:  # one ERROR per version, not one per poll
                self._unloadable = version
                logger.error(
                    "deployment state %d not applied in this worker, still serving version %d: %s",
                    version,
                    self.version,
                    error,
                )

    def _parse(self, raw: dict[str, Any]) -> tuple[DeploymentState | None, list[str]]:
        try:
            state = DeploymentState.model_validate(raw)
        except ValidationError as error:
            return None, [str(error)]
        return state, state.problems(self.names)

    def _load_or_init(self) -> tuple[int, DeploymentState]:
        """The stored state if it fits the configured variants; else the configured one, stored."""
        for _ in range(APPLY_ATTEMPTS):
            stored = read_state(self.engine)
            if stored is None:
                expected, change = (
                    None,
                    Change(CONFIGURATION_ACTOR, "init", "first start: the configured policy"),
                )
            else:
                state, problems = self._parse(stored[1])
                if state is not None and not problems:
                    return stored[0], state
                reason = f"the stored state does not fit the configured variants ({'; '.join(problems)})"
                logger.warning("%s; starting from the configuration", reason)
                expected, change = stored[0], Change(CONFIGURATION_ACTOR, "reset", reason)
            version = write_state(self.engine, expected, self.configured.to_json(), change)
            if version is not None:
                return version, self.configured
        raise PolicyError("could not store the initial deployment state (it kept changing)", status=409)

    def load(self) -> None:
        """Read (or store) the state; the database's schema is checked first (`ensure_schema`)."""
        ensure_schema(self.engine)
        self._set_or_keep(*self._load_or_init())

    def sync(self) -> None:
        """Pick up a change made by another worker or replica (or load the state, if not yet)."""
        if not self.loaded:
            self.load()
            return
        version = read_version(self.engine)
        if version is None or version == self.version:
            return
        stored = read_state(self.engine)
        if stored is None:
            return
        state, problems = self._parse(stored[1])
        if state is None or problems:
            logger.error("ignoring stored deployment state %d: %s", stored[0], "; ".join(problems))
            return
        self._set_or_keep(stored[0], state)

    def apply(self, operation: Operation, change: Change) -> tuple[int, DeploymentState]:
        """Apply an operation to the newest stored state and store the result (compare and swap).

        `operation` returns None when there is nothing to do any more (another worker did it).
        """
        for _ in range(APPLY_ATTEMPTS):
            stored = read_state(self.engine)
            parsed = self._parse(stored[1])[0] if stored is not None else None
            if stored is None or parsed is None:
                version, state = self._load_or_init()
            else:
                version, state = stored[0], parsed
            new_state = operation(state)
            if new_state is None:
                self._set_or_keep(version, state)
                return version, state
            try:
                self._prepare(new_state)  # loaded here before it is stored: this worker can serve it
            except VariantLoadError as error:
                raise PolicyError(str(error), status=409) from None
            written = write_state(self.engine, version, new_state.to_json(), change)
            if written is not None:
                self._set(written, new_state)
                failed_rollout = change.action == ROLL_BACK and change.actor == ROLLOUT_ACTOR
                (logger.error if failed_rollout else logger.info)(
                    "deployment %s by %s: %s (version %d)",
                    change.action,
                    change.actor,
                    change.reason,
                    written,
                )
                return written, new_state
        raise PolicyError("the deployment state kept changing; retry", status=409)
