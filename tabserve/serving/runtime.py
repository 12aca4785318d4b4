"""What the BentoML service delegates to: load the model, batch concurrent calls, score, describe."""

from __future__ import annotations

import functools
import gc
import logging
import os
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import bentoml
import pandas as pd
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tabserve.cpu_budget import (
    apply_in_this_thread,
    available_cores,
    limit_native_threads,
    scoring_thread_counts,
    threads_per_worker,
)
from tabserve.model_store import StoredModel
from tabserve.predictions.logger import PredictionLogger
from tabserve.predictor import ERROR_COLUMN, Predictor
from tabserve.serving.api_key_guard import current_key_name
from tabserve.serving.batcher import AdaptiveBatcher
from tabserve.serving.metrics import ServiceMetrics
from tabserve.settings import DEFAULT_VARIANT, ServingSettings

logger = logging.getLogger(__name__)


def tune_gc(threshold: int) -> None:
    """Move everything loaded so far out of the collector's sight and collect less often.

    BentoML's worker otherwise shows p99 latencies in the hundreds of ms from GC pauses.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(threshold, 100, 100)


_worker_budget: dict[str, int] = {}  # this worker's cores, workers and threads, for GET /model/


def check_worker_index(workers: int) -> None:
    """Warn when BentoML started more workers than `serving.workers` says (its own config won).

    The thread budget divides the cores by `serving.workers` (or `TABSERVE_WORKERS`): a
    `workers` set in BentoML's configuration instead is not seen by it, and BentoML has no
    public accessor for its worker count; each worker knows its own 1-based index, though.
    """
    index = bentoml.server_context.worker_index
    if index is not None and index > workers:
        logger.warning(
            "worker %d of %d: BentoML started more workers than serving.workers; set the count with "
            "serving.workers or TABSERVE_WORKERS so each worker's thread budget matches",
            index,
            workers,
        )


def limit_worker_threads(settings: ServingSettings, workers: int) -> int:
    """In a service worker: limit native thread pools to this worker's share of the usable cores."""
    check_worker_index(workers)
    cores = available_cores()
    threads = threads_per_worker(cores, workers, settings.threads_per_worker)
    limit_native_threads(threads)
    _worker_budget.update(usable_cores=cores, workers=workers, threads_per_worker=threads)
    return threads


def worker_runtime() -> dict[str, Any]:
    """This worker's budget and the native pool sizes its scoring threads used (empty before any scoring)."""
    return {"pid": os.getpid(), **_worker_budget, "native_threads": scoring_thread_counts()}


def new_request_id() -> str:
    return uuid.uuid4().hex


def log_rows(
    records: Sequence[dict[str, Any]],
    results: Sequence[dict[str, Any]],
    variant: str,
    key_names: Sequence[str | None] | None = None,
) -> list[dict[str, Any]]:
    """Prediction-log rows for scored records (results carry model and request id; `key_names`
    the API key that asked for each, by name)."""
    now = datetime.now(UTC)
    names = key_names if key_names is not None else [None] * len(results)
    return [
        {
            "request_id": result["request_id"],
            "ts": now,
            "model": result["model"],
            "variant": variant,
            "features": record,
            "prediction": result["prediction"],
            "probabilities": result.get("probabilities"),
            "api_key": name,
        }
        for record, result, name in zip(records, results, names, strict=True)
    ]


class Scorer:
    """Scores records through one Predictor; concurrent single records are batched adaptively.

    Every scored record is handed to the prediction log (off the request path) and counted.
    """

    def __init__(
        self,
        stored: StoredModel,
        settings: ServingSettings,
        prediction_logger: PredictionLogger | None = None,
        metrics: ServiceMetrics | None = None,
        variant: str = DEFAULT_VARIANT,
    ) -> None:
        self.stored = stored
        self.predictor: Predictor = stored.load_predictor()
        self.prediction_logger = prediction_logger
        self.metrics = metrics
        self.variant = variant
        # Concurrent single records share one vectorised predict (tabserve.serving.batcher).
        # Each record travels with its request's API key name: a batch mixes requests.
        self._batcher: AdaptiveBatcher[tuple[dict[str, Any], str | None], dict[str, Any]] = AdaptiveBatcher(
            self._score_in_thread,
            max_batch_size=settings.batching.max_batch_size,
            max_latency_s=settings.batching.max_latency_ms / 1000,
            on_batch=None if metrics is None else functools.partial(metrics.observe_batch, variant),
        )

    @property
    def tag(self) -> str:
        return self.stored.tag

    def score_records(
        self,
        records: Sequence[dict[str, Any]],
        request_ids: Sequence[str] | None = None,
        key_names: Sequence[str | None] | None = None,
    ) -> list[dict[str, Any]]:
        """The inner batch method: records -> results with model tag and request ids.

        Callers that must keep ids stable across retries (the stream worker) pass them in.
        """
        apply_in_this_thread()  # OpenMP's limit is per thread; batches run on pool threads
        return self._finish(records, self.predictor.predict_records(list(records)), request_ids, key_names)

    def log_scored_frame(self, scored: pd.DataFrame) -> None:
        """Log and count the scored rows of a file chunk (rows with an error were not scored)."""
        good = scored[scored[ERROR_COLUMN].isna()]
        if good.empty or (self.prediction_logger is None and self.metrics is None):
            return
        records = [
            {str(name): None if pd.isna(value) else value for name, value in record.items()}
            for record in good[self.predictor.schema.names].to_dict("records")
        ]
        self._finish(records, self.predictor.results_from_frame(good))

    def _finish(
        self,
        records: Sequence[dict[str, Any]],
        results: list[dict[str, Any]],
        request_ids: Sequence[str] | None = None,
        key_names: Sequence[str | None] | None = None,
    ) -> list[dict[str, Any]]:
        """Stamp model, variant and request ids, log and count: the same for every scoring mode.

        Without `key_names`, every row is the current request's (a batch or file call)."""
        ids = request_ids if request_ids is not None else [new_request_id() for _ in results]
        for result, request_id in zip(results, ids, strict=True):
            result["model"] = self.tag
            result["variant"] = self.variant
            result["request_id"] = request_id
        if self.prediction_logger is not None:
            names = key_names if key_names is not None else [current_key_name()] * len(results)
            self.prediction_logger.log(log_rows(records, results, self.variant, names))
        if self.metrics is not None:
            self.metrics.count(self.tag, self.variant, results, self.predictor.is_classifier)
        return results

    async def _score_in_thread(
        self, items: Sequence[tuple[dict[str, Any], str | None]]
    ) -> list[dict[str, Any]]:
        records, names = [record for record, _ in items], [name for _, name in items]
        return await run_in_threadpool(self.score_records, records, None, names)

    async def score_one(self, record: dict[str, Any]) -> dict[str, Any]:
        """Score one record with whatever else is waiting; 503 past the latency budget."""
        return await self._batcher.submit((record, current_key_name()))

    def stop_batching(self) -> None:
        self._batcher.close()


def info_app(stored: StoredModel) -> Starlette:
    """GET / -> model tag, metrics, feature schema, training fingerprint; `runtime`: the answering worker."""

    async def describe(_: Request) -> JSONResponse:
        return JSONResponse({**stored.info(), "runtime": worker_runtime()})

    return Starlette(routes=[Route("/", describe, methods=["GET"])])
