"""The stream worker: read micro-batches from a consumer group, score, publish, then acknowledge.

Delivery is at least once. A result is published before its input is acknowledged, so a worker
killed between the two leaves the input pending; another worker reclaims it (XAUTOCLAIM) and
publishes it again with the same request id (derived from the input message id), so consumers
can drop duplicates by request id.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import redis
from pydantic import BaseModel, ValidationError

from tabserve.api_models import example_record, record_model
from tabserve.model_store import get_model
from tabserve.prediction_logger import open_prediction_logger
from tabserve.serving import Scorer
from tabserve.settings import Settings, StreamingSettings
from tabserve.stream_transport import (
    Message,
    RedisStreamTransport,
    StreamTransport,
    TransportUnavailableError,
)

logger = logging.getLogger(__name__)

RECORD_FIELD, REQUEST_ID_FIELD = "record", "request_id"
MAX_BACKOFF_S = 30.0
REQUEST_ID_NAMESPACE = uuid.UUID("6f0e2b1a-9d7c-4c1e-8a55-2d1f0b7f3e10")


def request_id_for(stream: str, message: Message) -> str:
    """The caller's request id, or one derived from the message id: stable across redeliveries."""
    given = message.fields.get(REQUEST_ID_FIELD)
    return given or uuid.uuid5(REQUEST_ID_NAMESPACE, f"{stream}/{message.id}").hex


def parse(message: Message, record_type: type[BaseModel]) -> dict[str, Any]:
    """The message's record, validated like an API request; ValueError with the reason otherwise."""
    raw = message.fields.get(RECORD_FIELD)
    if raw is None:
        raise ValueError(f"no {RECORD_FIELD!r} field")
    try:
        return record_type.model_validate_json(raw).model_dump(by_alias=True)
    except ValidationError as error:
        reasons = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'record'}: {e['msg']}" for e in error.errors())
        raise ValueError(reasons) from None


class StreamWorker:
    def __init__(
        self,
        transport: StreamTransport,
        scorer: Scorer,
        record_type: type[BaseModel],
        input_stream: str,
        *,
        batch_size: int,
        max_wait_ms: int,
        block_ms: int,
        claim_idle_ms: int,
    ) -> None:
        self.transport, self.scorer, self.record_type = transport, scorer, record_type
        self.input_stream = input_stream
        self.batch_size, self.max_wait_ms, self.block_ms = batch_size, max_wait_ms, block_ms
        self.claim_idle_ms = claim_idle_ms
        self.stop = threading.Event()
        self.processed = 0

    def process(self, messages: list[Message]) -> None:
        records, ids, request_ids, parked = [], [], [], []
        for message in messages:
            try:
                records.append(parse(message, self.record_type))
            except ValueError as error:  # never blocks the stream: parked with its reason
                self.transport.dead_letter(message, str(error))
                parked.append(message.id)
                continue
            ids.append(message.id)
            request_ids.append(request_id_for(self.input_stream, message))
        if records:
            results = self.scorer.score_records(records, request_ids)
            self.transport.publish(
                [
                    {
                        "request_id": result["request_id"],
                        "input_id": input_id,
                        "model": result["model"],
                        "prediction": json.dumps(result["prediction"]),
                        "probabilities": json.dumps(result.get("probabilities")),
                    }
                    for input_id, result in zip(ids, results, strict=True)
                ]
            )
        # Only after every result is written (Kafka commits are cumulative: acknowledging a
        # parked message early could commit past results not yet published).
        self.transport.ack([*ids, *parked])
        self.processed += len(messages)

    def next_batch(self) -> list[Message]:
        claimed = self.transport.reclaim(self.claim_idle_ms, self.batch_size)
        if claimed:
            return claimed
        batch = self.transport.read(self.batch_size, self.block_ms)
        deadline = time.monotonic() + self.max_wait_ms / 1000
        while batch and len(batch) < self.batch_size and not self.stop.is_set():
            remaining_ms = int((deadline - time.monotonic()) * 1000)
            if remaining_ms <= 0:
                break
            more = self.transport.read(self.batch_size - len(batch), remaining_ms)
            if not more:
                break
            batch.extend(more)
        return batch

    def run(self, on_idle: Callable[[], None] | None = None) -> None:
        backoff = 0.0
        while not self.stop.is_set():
            try:
                self.transport.ensure_group()
                batch = self.next_batch()
                if batch:
                    self.process(batch)  # an in-flight batch is always finished before stopping
                elif on_idle is not None:
                    on_idle()
                backoff = 0.0
            except (redis.ConnectionError, redis.TimeoutError, TransportUnavailableError) as error:
                backoff = min(MAX_BACKOFF_S, max(0.5, backoff * 2))
                logger.warning("Redis unreachable (%s); retrying in %.1fs", error, backoff)
                self.stop.wait(backoff)


def open_transport(settings: StreamingSettings, consumer: str) -> StreamTransport:
    if settings.transport == "kafka":
        from tabserve.kafka_transport import KafkaTransport

        return KafkaTransport(settings, consumer)
    return RedisStreamTransport(settings, consumer)


def run_worker(settings: Settings, tag: str, consumer: str | None) -> None:
    """`python -m tabserve stream`: runs until SIGTERM/SIGINT, then finishes its batch and exits."""
    stream = settings.streaming
    stored = get_model(tag)
    name = consumer or f"{socket.gethostname()}-{os.getpid()}"
    prediction_logger = open_prediction_logger(settings.monitoring)
    worker = StreamWorker(
        open_transport(stream, name),
        Scorer(stored, settings.serving, prediction_logger),
        record_model(
            stored.schema,
            example_record(stored.schema, stored.load_reference()),
            markers=stored.markers,
            unused=stored.unused_columns,
        ),
        stream.input_stream,
        batch_size=stream.batch_size,
        max_wait_ms=stream.max_wait_ms,
        block_ms=stream.block_ms,
        claim_idle_ms=stream.claim_idle_ms,
    )
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: worker.stop.set())
    logger.info(
        "consumer %s scoring %s -> %s with %s", name, stream.input_stream, stream.output_stream, stored.tag
    )
    try:
        worker.run()
    finally:
        if prediction_logger is not None:
            prediction_logger.close()
        logger.info("stopped after %d messages", worker.processed)
