"""The deployment inside one worker: its parts put together, and the operations the service and
the admin API call.

- `Variants`: every variant loaded, each request routed by the policy, shadows scored off the
  response path (variants.py);
- `SharedState`: the state stored in the database, loaded, changed by compare and swap and
  followed by polling (shared_state.py);
- `judge_rollout`: a running rollout judged and stepped (rollout_runner.py);
- `Background`: the thread that follows the state, flushes the per-variant numbers, judges the
  rollout and prunes old numbers, each on its schedule (background.py).

Variants added at runtime (`add_candidate`, candidates.py) are loaded by `_prepare` before any
state naming them is applied or stored, and unloaded once the state no longer names them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

from bentoml.exceptions import BentoMLException
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from tabserve.deployment.background import Background, StatsFlusher, Task
from tabserve.deployment.candidates import add_candidate, check_name, default_name
from tabserve.deployment.policy import AddedVariant, DeploymentState, PolicyError
from tabserve.deployment.rollout import StepProgress
from tabserve.deployment.rollout_runner import judge_rollout
from tabserve.deployment.routing import traffic_shares
from tabserve.deployment.shared_state import Operation, SharedState, VariantLoadError
from tabserve.deployment.store import Change, prune_stats, read_events
from tabserve.deployment.variants import LoadedModels, Variants, check_compatible
from tabserve.errors import ModelNotFoundError, TabserveError
from tabserve.model_store import StoredModel, get_model
from tabserve.predictions.logger import PredictionLogger
from tabserve.serving.metrics import ServiceMetrics
from tabserve.serving.runtime import Scorer
from tabserve.settings import Settings

logger = logging.getLogger(__name__)
PRUNE_EVERY_S = 3600.0


class Deployment:
    def __init__(
        self,
        settings: Settings,
        models: dict[str, StoredModel],
        engine: Engine,
        prediction_logger: PredictionLogger | None,
        metrics: ServiceMetrics,
    ) -> None:
        self.settings = settings.deployment
        self.variants = Variants(settings, models, prediction_logger, metrics)
        self.names = list(models)
        self.engine, self.metrics = engine, metrics
        self.shared = SharedState(
            engine, self.names, DeploymentState(policy=settings.policy), self._applied, self._prepare
        )
        try:
            self.shared.load()
        except SQLAlchemyError as error:  # serve the configured policy; the sync task retries
            logger.warning("deployment state not loaded yet (database unreachable: %s)", error)
        self.progress: StepProgress | None = None  # the running rollout's step, as last judged here
        self.flusher = StatsFlusher(engine, self.variants.stats)
        self.background = Background(
            self.settings.refresh_ms / 1000,
            [
                Task("state sync", self.settings.refresh_ms / 1000, self.shared.sync),
                Task("numbers flush", self.settings.stats_flush_ms / 1000, self.flusher.flush),
                Task("rollout check", self.settings.rollout.check_interval_s, self.tick),
                Task("numbers pruning", PRUNE_EVERY_S, self.prune),
            ],
        )

    # --- what the service calls --------------------------------------------------------------

    @property
    def state(self) -> DeploymentState:
        return self.shared.state

    @property
    def models(self) -> LoadedModels:
        """Variant -> model loaded now (a live view: runtime-added variants come and go)."""
        return LoadedModels(self.variants)

    @property
    def primary(self) -> Scorer:
        """The variant for work that must not be split: file scoring."""
        return self.variants.scorers[str(self.state.policy.primary)]

    async def predict_one(self, record: dict[str, Any], key: str | None) -> dict[str, Any]:
        return await self.variants.predict_one(self.state.policy, record, key)

    def predict_many(
        self, records: Sequence[dict[str, Any]], keys: Sequence[str | None]
    ) -> list[dict[str, Any]]:
        return self.variants.predict_many(self.state.policy, records, keys)

    # --- variants added at runtime -------------------------------------------------------------

    def _prepare(self, state: DeploymentState) -> None:
        """Load every added variant the state names that this worker has not loaded (or loaded
        with another model); raises VariantLoadError, and then nothing is applied."""
        for name, added in state.added.items():
            scorer = self.variants.scorers.get(name)
            if scorer is not None and scorer.tag == added.model:
                continue
            try:
                self.variants.add(name, get_model(added.model))
            except TabserveError as error:  # not in this model store, changed on disk, incompatible
                raise VariantLoadError(
                    f"variant {name} ({added.model}) cannot be loaded: {error}; every replica needs "
                    "the model in its model store (a shared BENTOML_HOME, or `bentoml models import`)"
                ) from None
            logger.info("variant %s (%s) loaded", name, added.model)

    def _applied(self, version: int, state: DeploymentState) -> None:
        """After a state is applied: added variants it no longer names are unloaded; metrics shown."""
        names = state.variant_names(self.names)
        dropped = set(self.variants.scorers) - set(names)
        self.variants.drop(dropped)
        shares = traffic_shares(state.policy, names) | dict.fromkeys(dropped, 0.0)  # no stale gauge
        self.metrics.show_deployment(version, shares, state)

    def add_candidate(
        self, model: str, name: str | None, evaluation: str | None, rollout: bool, change: Change
    ) -> tuple[int, DeploymentState]:
        """`POST /admin/candidate`: the model checked (404 unknown, 409 incompatible), then the
        variant, the policy and the rollout stored in one compare and swap with its audit event."""
        try:
            stored = get_model(model)
        except ModelNotFoundError:
            raise PolicyError(f"model: {model!r} is not in this service's model store", status=404) from None
        except (TabserveError, BentoMLException, ValueError) as error:  # a malformed tag, a changed file
            raise PolicyError(f"model: {model!r}: {error}") from None
        primary = self.variants.scorers[str(self.state.policy.primary)].stored
        variant, name = (
            AddedVariant(model=stored.tag, evaluation=evaluation),
            name or default_name(stored.tag),
        )
        check_name(self.state, self.names, name, variant)
        check_compatible({str(self.state.policy.primary): primary, name: stored})
        steps = self.rollout_steps if rollout else None
        what = f"candidate {name} = {stored.tag}" + (f", evaluation {evaluation}" if evaluation else "")
        what += ", rollout started: shadow first" if rollout else ", no rollout"
        return self.shared.apply(
            lambda state: add_candidate(state, self.names, name, variant, datetime.now(UTC), steps),
            Change(change.actor, change.action, f"{change.reason} ({what})"),
        )

    # --- what the admin API calls (tabserve.deployment.admin_api.DeploymentControl) -----------

    @property
    def configured(self) -> DeploymentState:
        return self.shared.configured

    @property
    def rollout_steps(self) -> list[float]:
        return list(self.settings.rollout.steps)

    @property
    def shadow_first(self) -> bool:
        return self.settings.rollout.shadow_first

    def describe(self) -> dict[str, Any]:
        version, state = self.shared.version, self.shared.state
        return {
            "version": version,
            "state": state.to_json(),
            "variants": {name: self._tag_of(state, name) for name in state.variant_names(self.names)},
            "traffic": traffic_shares(state.policy, state.variant_names(self.names)),
            "shadow_dropped": self.variants.shadow.dropped,
            "worker": os.getpid(),  # which worker answered: each one applies the stored state itself
            "progress": self._progress_now(state),
        }

    def _tag_of(self, state: DeploymentState, name: str) -> str:
        scorer = self.variants.scorers.get(name)
        return scorer.tag if scorer is not None else state.added[name].model

    def _progress_now(self, state: DeploymentState) -> dict[str, Any] | None:
        """The running step's progress: requests as last judged here, seconds as of now."""
        progress, rollout = self.progress, state.rollout
        if (
            not state.rollout_running
            or rollout is None
            or progress is None
            or (progress.step, progress.stage) != (rollout.step + 1, rollout.stage)
        ):
            return None
        seconds = (datetime.now(UTC) - rollout.step_started).total_seconds()
        return {**asdict(progress), "seconds": round(seconds, 1)}

    def apply(self, operation: Operation, change: Change) -> tuple[int, DeploymentState]:
        return self.shared.apply(operation, change)

    def events(self, limit: int) -> list[dict[str, Any]]:
        return read_events(self.engine, limit)

    # --- background ---------------------------------------------------------------------------

    def tick(self, now: datetime | None = None) -> None:
        """Judge a running rollout once; advance, promote or roll back when the guards say so."""
        self.progress = judge_rollout(
            self.shared,
            self.settings.rollout,
            self.variants.classifier,
            self.metrics,
            now,
            self.settings.outcomes,
        )

    def prune(self) -> None:
        prune_stats(self.engine, datetime.now(UTC) - timedelta(days=self.settings.stats_retention_days))

    def close(self) -> None:
        self.background.close()
        self.variants.close()
        try:
            self.flusher.flush()
        except SQLAlchemyError as error:
            logger.warning("last variant numbers not stored: %s", error)
