"""The deployment inside one worker: every variant loaded, the policy applied to each request,
shadow copies scored off the response path, and the shared state kept in sync.

The state lives in the database (`deployment_store`): a change made through any worker is
stored first, then every worker picks it up within `deployment.refresh_ms`. Each worker
also flushes its per-variant numbers there and, while a rollout runs, judges it; the
compare-and-swap on the state's version makes sure only one of them acts on each step.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from bentoml.exceptions import BentoMLException, InternalServerError
from pydantic import ValidationError
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from tabserve.deployment.policy import DeploymentState, PolicyError, advance, is_last_step, rollback
from tabserve.deployment.rollout import ADVANCE, ROLL_BACK, gather, judge
from tabserve.deployment.routing import choose_variant, shadow_of, traffic_shares
from tabserve.deployment.shadow import ShadowRunner
from tabserve.deployment.store import Change, insert_stats, prune_stats, read_state, read_version, write_state
from tabserve.deployment.variant_stats import StatsCollector
from tabserve.model_store import StoredModel
from tabserve.predictions.logger import PredictionLogger
from tabserve.predictions.migration import SchemaError, ensure_schema
from tabserve.serving.metrics import ServiceMetrics
from tabserve.serving.runtime import Scorer
from tabserve.settings import Settings

logger = logging.getLogger(__name__)
SHADOW_SUFFIX = ":shadow"
CONFIGURATION_ACTOR, ROLLOUT_ACTOR = "configuration", "rollout"
MAX_PENDING_STATS = 1_000
APPLY_ATTEMPTS = 5
FAILURE_LOG_EVERY_S = 10.0
PRUNE_EVERY_S = 3600.0
UNLOADED = 0  # version before the stored state could be read (stored versions start at 1)


def check_compatible(models: dict[str, StoredModel]) -> None:
    """Every variant must accept the same records and answer in the same terms."""

    def signature(stored: StoredModel) -> list[tuple[str, str]]:
        return [(feature.name, feature.kind) for feature in stored.schema.features]

    first_name, first = next(iter(models.items()))
    for name, stored in models.items():
        if signature(stored) != signature(first):
            raise PolicyError(
                f"variant {name} ({stored.tag}) has other features than {first_name} ({first.tag})"
            )
        if stored.metadata.get("classes") != first.metadata.get("classes"):
            raise PolicyError(f"variant {name} ({stored.tag}) predicts other classes than {first_name}")


class Deployment:
    def __init__(
        self,
        settings: Settings,
        models: dict[str, StoredModel],
        engine: Engine,
        prediction_logger: PredictionLogger | None,
        metrics: ServiceMetrics,
    ) -> None:
        check_compatible(models)
        self.settings = settings.deployment
        self.names = list(models)
        self.scorers = {
            name: Scorer(stored, settings.serving, prediction_logger, metrics, variant=name)
            for name, stored in models.items()
        }
        self.classifier = next(iter(self.scorers.values())).predictor.is_classifier
        self.engine, self.metrics = engine, metrics
        self.configured = DeploymentState(policy=settings.policy)
        self.stats = StatsCollector()
        self._pending_stats: list[dict[str, Any]] = []
        self._last_failure_log: dict[str, float] = {}
        self.shadow = ShadowRunner(self._score_shadow, self.settings.shadow_max_pending, metrics)
        self._set(UNLOADED, self.configured)
        try:
            self._load()
        except SQLAlchemyError as error:  # serve the configured policy; the sync thread retries
            logger.warning("deployment state not loaded yet (database unreachable: %s)", error)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="deployment", daemon=True)
        self._thread.start()

    # --- scoring -------------------------------------------------------------------------

    @property
    def primary(self) -> Scorer:
        """The variant for work that must not be split: file scoring."""
        return self.scorers[str(self.state.policy.primary)]

    def _observe(self, scorer: Scorer, seconds: float, count: int, error: bool) -> None:
        self.stats.record(scorer.variant, scorer.tag, seconds, count, error)
        self.metrics.observe_variant(scorer.variant, scorer.tag, seconds, count, error)

    def _log_failure(self, scorer: Scorer, error: Exception, role: str) -> None:
        """Log a variant's failure, at most once per FAILURE_LOG_EVERY_S per variant (no log floods)."""
        now = time.monotonic()
        if now - self._last_failure_log.get(scorer.variant, -math.inf) >= FAILURE_LOG_EVERY_S:
            self._last_failure_log[scorer.variant] = now
            logger.error("%s variant %s (%s) failed: %r", role, scorer.variant, scorer.tag, error)

    def _failed(self, scorer: Scorer, error: Exception) -> BentoMLException:
        if isinstance(error, BentoMLException):  # e.g. the batcher's 503: keep its status
            return error
        self._log_failure(scorer, error, "answering")
        return InternalServerError(f"variant {scorer.variant} ({scorer.tag}) failed: {type(error).__name__}")

    async def predict_one(self, record: dict[str, Any], key: str | None) -> dict[str, Any]:
        policy = self.state.policy
        scorer = self.scorers[choose_variant(policy, key, random.random())]
        started = time.perf_counter()
        try:
            result = await scorer.score_one(record)
        except Exception as error:
            self._observe(scorer, time.perf_counter() - started, 1, True)
            raise self._failed(scorer, error) from None
        self._observe(scorer, time.perf_counter() - started, 1, False)
        shadow = shadow_of(policy)
        if shadow is not None:
            self.shadow.submit(shadow, [record], [result["request_id"]])
        return result

    def predict_many(
        self, records: Sequence[dict[str, Any]], keys: Sequence[str | None]
    ) -> list[dict[str, Any]]:
        """Each record routed by its own key; each variant scores its share in one call."""
        policy = self.state.policy
        groups: dict[str, list[int]] = {}
        for index, key in enumerate(keys):
            groups.setdefault(choose_variant(policy, key, random.random()), []).append(index)
        results: list[dict[str, Any]] = [{} for _ in records]
        for name, indexes in groups.items():
            scorer = self.scorers[name]
            started = time.perf_counter()
            try:
                scored = scorer.score_records([records[index] for index in indexes])
            except Exception as error:
                self._observe(scorer, time.perf_counter() - started, len(indexes), True)
                raise self._failed(scorer, error) from None
            self._observe(scorer, time.perf_counter() - started, len(indexes), False)
            for index, result in zip(indexes, scored, strict=True):
                results[index] = result
        shadow = shadow_of(policy)
        if shadow is not None:
            self.shadow.submit(shadow, records, [result["request_id"] for result in results])
        return results

    def _score_shadow(self, variant: str, records: list[dict[str, Any]], request_ids: list[str]) -> None:
        """Runs on the shadow thread: log and count, never raise (nobody waits for it)."""
        scorer = self.scorers[variant]
        started = time.perf_counter()
        try:
            scorer.score_records(records, [request_id + SHADOW_SUFFIX for request_id in request_ids])
        except Exception as error:  # a failing shadow is counted and logged, nothing more
            self._observe(scorer, time.perf_counter() - started, len(records), True)
            self._log_failure(scorer, error, "shadow")
            return
        self._observe(scorer, time.perf_counter() - started, len(records), False)

    # --- state ---------------------------------------------------------------------------

    def _parse(self, raw: dict[str, Any]) -> tuple[DeploymentState | None, list[str]]:
        try:
            state = DeploymentState.model_validate(raw)
        except ValidationError as error:
            return None, [str(error)]
        return state, state.policy.problems(self.names)

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

    def _set(self, version: int, state: DeploymentState) -> None:
        self.version, self.state = version, state
        self.metrics.show_deployment(version, traffic_shares(state.policy, self.names), state)

    def apply(
        self, operation: Callable[[DeploymentState], DeploymentState | None], change: Change
    ) -> tuple[int, DeploymentState]:
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
                self._set(version, state)
                return version, state
            written = write_state(self.engine, version, new_state.to_json(), change)
            if written is not None:
                self._set(written, new_state)
                log = (
                    logger.error
                    if change.action == ROLL_BACK and change.actor == ROLLOUT_ACTOR
                    else logger.info
                )
                log(
                    "deployment %s by %s: %s (version %d)",
                    change.action,
                    change.actor,
                    change.reason,
                    written,
                )
                return written, new_state
        raise PolicyError("the deployment state kept changing; retry", status=409)

    def _load(self) -> None:
        ensure_schema(self.engine)
        self._set(*self._load_or_init())

    def sync(self) -> None:
        """Pick up a change made by another worker or replica (or load the state, if not yet)."""
        if self.version == UNLOADED:
            self._load()
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
        self._set(stored[0], state)

    def tick(self, now: datetime | None = None) -> None:
        """Judge a running rollout once; advance, promote or roll back when the guards say so."""
        state = self.state
        if not state.rollout_running or state.rollout is None:
            return
        now = now or datetime.now(UTC)
        evidence = gather(self.engine, state, self.settings.rollout, self.classifier)
        decision, guards, reason = judge(state, evidence, self.settings.rollout, now)
        self.metrics.show_guards(guards)
        judged = (state.rollout.started, state.rollout.step)

        def still_at_step(current: DeploymentState) -> bool:
            """The same rollout at the same step: otherwise another worker acted first."""
            rollout = current.rollout
            return (
                current.rollout_running and rollout is not None and (rollout.started, rollout.step) == judged
            )

        if decision == ADVANCE:
            last = is_last_step(state)
            if last:
                reason = f"{reason}; every step passed: promoted"
            self.apply(
                lambda current: (
                    advance(current, self.names, now, guards, reason) if still_at_step(current) else None
                ),
                Change(ROLLOUT_ACTOR, "promote" if last else ADVANCE, reason),
            )
        elif decision == ROLL_BACK:
            self.apply(
                lambda current: (
                    rollback(current, self.names, reason, guards) if still_at_step(current) else None
                ),
                Change(ROLLOUT_ACTOR, ROLL_BACK, reason),
            )

    # --- background ----------------------------------------------------------------------

    def flush_stats(self) -> None:
        rows = self._pending_stats + self.stats.drain()
        try:
            insert_stats(self.engine, rows)
        except SQLAlchemyError:
            self._pending_stats = rows[-MAX_PENDING_STATS:]  # kept for the next flush
            raise
        self._pending_stats = []

    def _run(self) -> None:
        interval = self.settings.refresh_ms / 1000
        flush_every, check_every = self.settings.stats_flush_ms / 1000, self.settings.rollout.check_interval_s
        next_flush = next_check = next_prune = time.monotonic()
        last_warning = -math.inf
        while not self._stop.wait(interval):
            try:
                self.sync()
                now = time.monotonic()
                if now >= next_flush:
                    next_flush = now + flush_every
                    self.flush_stats()
                if now >= next_check:
                    next_check = now + check_every
                    self.tick()
                if now >= next_prune:
                    next_prune = now + PRUNE_EVERY_S
                    retention = timedelta(days=self.settings.stats_retention_days)
                    prune_stats(self.engine, datetime.now(UTC) - retention)
            except (SQLAlchemyError, PolicyError, SchemaError) as error:
                if time.monotonic() - last_warning >= FAILURE_LOG_EVERY_S:  # an outage is not a log flood
                    last_warning = time.monotonic()
                    logger.warning("deployment state not synced (retrying): %s", error)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.shadow.close()
        try:
            self.flush_stats()
        except SQLAlchemyError as error:
            logger.warning("last variant numbers not stored: %s", error)
        for scorer in self.scorers.values():
            scorer.stop_batching()
