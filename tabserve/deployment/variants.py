"""The loaded variants of one worker: each request routed by the policy, shadow copies scored off
the response path, and every variant's requests, errors and latency counted.

Nothing here reads or writes the shared state: callers pass the policy in force.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections.abc import ItemsView, Iterator, Mapping, Sequence
from typing import Any

from bentoml.exceptions import BentoMLException, InternalServerError

from tabserve.deployment.policy import PolicyError
from tabserve.deployment.routing import choose_variant, shadow_of
from tabserve.deployment.shadow import ShadowRunner
from tabserve.deployment.variant_stats import StatsCollector
from tabserve.model_store import StoredModel
from tabserve.predictions.logger import PredictionLogger
from tabserve.predictions.tables import SHADOW_SUFFIX
from tabserve.serving.metrics import ServiceMetrics
from tabserve.serving.runtime import Scorer
from tabserve.settings import Policy, Settings

logger = logging.getLogger(__name__)
FAILURE_LOG_EVERY_S = 10.0


def _listed(items: list[str]) -> str:
    shown = ", ".join(items[:5])
    return shown + (f" and {len(items) - 5} more" if len(items) > 5 else "")


def feature_difference(stored: StoredModel, reference: StoredModel) -> str:
    """What differs between two models' features, for people: missing, extra, retyped columns."""
    kinds = {feature.name: feature.kind for feature in stored.schema.features}
    expected = {feature.name: feature.kind for feature in reference.schema.features}
    parts = []
    if missing := [name for name in expected if name not in kinds]:
        parts.append(f"lacks {_listed(missing)}")
    if extra := [name for name in kinds if name not in expected]:
        parts.append(f"adds {_listed(extra)}")
    if retyped := [f"{n} ({expected[n]} -> {k})" for n, k in kinds.items() if expected.get(n, k) != k]:
        parts.append(f"changes the kind of {_listed(retyped)}")
    return "; ".join(parts) or "orders its features differently"


def check_compatible(models: dict[str, StoredModel]) -> None:
    """Every variant must accept the same records and answer in the same terms (409 if not)."""

    def signature(stored: StoredModel) -> list[tuple[str, str]]:
        return [(feature.name, feature.kind) for feature in stored.schema.features]

    first_name, first = next(iter(models.items()))
    for name, stored in models.items():
        if signature(stored) != signature(first):
            raise PolicyError(
                f"variant {name} ({stored.tag}) has other features than {first_name} ({first.tag}): "
                f"it {feature_difference(stored, first)}",
                status=409,
            )
        if stored.metadata.get("classes") != first.metadata.get("classes"):
            raise PolicyError(
                f"variant {name} ({stored.tag}) predicts other classes than {first_name} "
                f"({stored.metadata.get('classes')} vs {first.metadata.get('classes')})",
                status=409,
            )


class Variants:
    def __init__(
        self,
        settings: Settings,
        models: dict[str, StoredModel],
        prediction_logger: PredictionLogger | None,
        metrics: ServiceMetrics,
    ) -> None:
        check_compatible(models)
        self.settings, self.prediction_logger = settings, prediction_logger
        self._changing = threading.Lock()
        self.scorers = {
            name: Scorer(stored, settings.serving, prediction_logger, metrics, variant=name)
            for name, stored in models.items()
        }
        self.classifier = next(iter(self.scorers.values())).predictor.is_classifier
        self.metrics = metrics
        self.stats = StatsCollector()
        self._last_failure_log: dict[str, float] = {}
        self.shadow = ShadowRunner(self._score_shadow, settings.deployment.shadow_max_pending, metrics)

    @property
    def tags(self) -> dict[str, str]:
        return {name: scorer.tag for name, scorer in self.scorers.items()}

    def add(self, name: str, stored: StoredModel) -> None:
        """Load a variant at runtime (off the request path): checked against the loaded ones first.

        Replacing the dict, not changing it, keeps every reader's view whole: a request that
        picked a scorer keeps it, the next one sees the new set.
        """
        reference = next(iter(self.scorers.values())).stored
        check_compatible({"served": reference, name: stored})
        scorer = Scorer(stored, self.settings.serving, self.prediction_logger, self.metrics, variant=name)
        with self._changing:  # the admin handler and the sync thread may both add or drop
            self.scorers = {**self.scorers, name: scorer}

    def drop(self, names: set[str]) -> None:
        """Unload variants no longer named: their batchers hold no queue (they get no traffic)."""
        with self._changing:
            if names & set(self.scorers):
                self.scorers = {name: scorer for name, scorer in self.scorers.items() if name not in names}

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

    async def predict_one(self, policy: Policy, record: dict[str, Any], key: str | None) -> dict[str, Any]:
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
        self, policy: Policy, records: Sequence[dict[str, Any]], keys: Sequence[str | None]
    ) -> list[dict[str, Any]]:
        """Each record routed by its own key; each variant scores its share in one call."""
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
        scorer = self.scorers.get(variant)
        if scorer is None:  # dropped since the copies were queued: nobody needs them any more
            return
        started = time.perf_counter()
        try:
            scorer.score_records(records, [request_id + SHADOW_SUFFIX for request_id in request_ids])
        except Exception as error:  # a failing shadow is counted and logged, nothing more
            self._observe(scorer, time.perf_counter() - started, len(records), True)
            self._log_failure(scorer, error, "shadow")
            return
        self._observe(scorer, time.perf_counter() - started, len(records), False)

    def close(self) -> None:
        """The shadow queue first (it scores through the scorers), then the batchers."""
        self.shadow.close()
        for scorer in self.scorers.values():
            scorer.stop_batching()


class LoadedModels(Mapping[str, StoredModel]):
    """Variant -> model of what a worker has loaded now, runtime-added variants included: a live
    view for the threads that follow the variants (the live drift gauges)."""

    def __init__(self, variants: Variants) -> None:
        self._variants = variants

    def _now(self) -> dict[str, StoredModel]:
        return {name: scorer.stored for name, scorer in self._variants.scorers.items()}

    def __getitem__(self, name: str) -> StoredModel:
        return self._variants.scorers[name].stored

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._variants.scorers))

    def __len__(self) -> int:
        return len(self._variants.scorers)

    def items(self) -> ItemsView[str, StoredModel]:
        """A snapshot: a variant dropped meanwhile does not break the iteration."""
        return self._now().items()
