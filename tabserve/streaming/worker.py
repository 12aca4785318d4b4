"""The stream worker: read micro-batches from a consumer group, score, publish, then acknowledge.

Delivery is at least once. A result is published before its input is acknowledged, so a worker
killed between the two leaves the input pending; another worker reclaims it (XAUTOCLAIM) and
publishes it again with the same request id, so consumers can drop duplicates by request id.

Request ids are an HMAC-SHA256 of "stream/message id" under a secret (TABSERVE_REQUEST_ID_SECRET,
or one random secret the first worker stores in the broker for the whole group): stable across
redeliveries to any worker, yet not computable by whoever can see message ids, so nobody can
send feedback (ground truth) for another caller's prediction by guessing its id.

Content never stops the worker: a message that is not UTF-8, not JSON, not a valid record, or
that the model fails on, becomes a dead letter; the rest of its batch is answered.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis
from pydantic import BaseModel, ValidationError

from tabserve.errors import ConfigurationError
from tabserve.predictions.log_policy import LogPolicy, log_policy
from tabserve.predictions.logger import open_prediction_logger
from tabserve.serving.runtime import Scorer
from tabserve.settings import Settings, StreamingSettings
from tabserve.streaming.model_follow import Scoring, follower, load_scoring
from tabserve.streaming.transport import (
    Message,
    RedisStreamTransport,
    StreamTransport,
    TransportUnavailableError,
)

logger = logging.getLogger(__name__)

RECORD_FIELD, REQUEST_ID_FIELD = "record", "request_id"
MAX_BACKOFF_S = 30.0
REQUEST_ID_SECRET_ENV = "TABSERVE_REQUEST_ID_SECRET"
SECRET_BYTES = 32
REQUEST_ID_HEX_CHARS = 32  # 128 bits, the length of the uuid hex ids they replace
MAX_REQUEST_ID_CHARS = 64  # the prediction log's request_id column


def request_id_for(stream: str, message: Message, secret: bytes) -> str:
    """The caller's request id, or an HMAC of the message id: stable across redeliveries, unguessable."""
    given = message.fields.get(REQUEST_ID_FIELD)
    if given:
        return given
    digest = hmac.new(secret, f"{stream}/{message.id}".encode(), hashlib.sha256).hexdigest()
    return digest[:REQUEST_ID_HEX_CHARS]


def request_id_secret(transport: StreamTransport, configured: str | None) -> bytes:
    """The configured secret, or the group's random one shared through the broker."""
    if configured:
        return configured.encode()
    return transport.shared_secret(secrets.token_hex(SECRET_BYTES)).encode()


@dataclass(frozen=True)
class Scored:
    results: list[tuple[str, dict[str, Any]]]  # (input message id, result)
    failed: list[tuple[Message, str]]  # (message, why the model failed on it)


def parse(message: Message, record_type: type[BaseModel]) -> dict[str, Any]:
    """The message's record, validated like an API request; ValueError with the reason otherwise."""
    if message.defect is not None:
        raise ValueError(message.defect)
    given = message.fields.get(REQUEST_ID_FIELD)
    if given is not None and not 0 < len(given) <= MAX_REQUEST_ID_CHARS:
        raise ValueError(f"{REQUEST_ID_FIELD} must be 1 to {MAX_REQUEST_ID_CHARS} characters")
    raw = message.fields.get(RECORD_FIELD)
    if raw is None:
        raise ValueError(f"no {RECORD_FIELD!r} field")
    try:
        return record_type.model_validate_json(raw).model_dump(by_alias=True)
    except ValidationError as error:
        reasons = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'record'}: {e['msg']}" for e in error.errors())
        raise ValueError(reasons) from None


WITHHELD_FIELD = "withheld"


def as_dead_letter(message: Message, policy: LogPolicy) -> Message:
    """The message a dead letter keeps: its record under the log policy, like the log's rows.
    A message whose record cannot be read is withheld (only its request id is kept): the
    policy cannot be applied to what cannot be parsed."""
    if policy.keeps_everything:
        return message
    fields = {key: value for key, value in message.fields.items() if key == REQUEST_ID_FIELD}
    try:
        record = json.loads(message.fields[RECORD_FIELD])
    except (KeyError, ValueError):
        record = None
    if isinstance(record, dict):
        fields[RECORD_FIELD] = json.dumps(policy.apply(record))
    else:
        fields[WITHHELD_FIELD] = "the record could not be read; monitoring.log_policy withholds it"
    return Message(message.id, fields)


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
        secret: str | None = None,
        follow: Callable[[], Scoring | None] | None = None,
        policy: LogPolicy | None = None,
    ) -> None:
        self.policy = policy or LogPolicy({})  # applied to dead letters as to the log
        self.transport, self.scorer, self.record_type = transport, scorer, record_type
        self.input_stream = input_stream
        self.batch_size, self.max_wait_ms, self.block_ms = batch_size, max_wait_ms, block_ms
        self.claim_idle_ms = claim_idle_ms
        self.configured_secret = secret
        self.follow = follow  # model_follow.py: the served model, re-read between batches
        self.secret: bytes | None = None  # fetched in run(): the broker may be down at start-up
        self.stop = threading.Event()
        self.processed = 0

    def process(self, messages: list[Message]) -> None:
        assert self.secret is not None, "run() fetches the secret before the first batch"
        valid: list[tuple[Message, dict[str, Any]]] = []
        parked = []
        for message in messages:
            try:
                valid.append((message, parse(message, self.record_type)))
            except ValueError as error:  # never blocks the stream: parked with its reason
                self.transport.dead_letter(as_dead_letter(message, self.policy), str(error))
                parked.append(message.id)
        scored = self._score(valid)
        for message, reason in scored.failed:
            self.transport.dead_letter(as_dead_letter(message, self.policy), f"scoring failed: {reason}")
            parked.append(message.id)
        if scored.results:
            self.transport.publish(
                [
                    {
                        "request_id": result["request_id"],
                        "input_id": input_id,
                        "model": result["model"],
                        "prediction": json.dumps(result["prediction"]),
                        "probabilities": json.dumps(result.get("probabilities")),
                    }
                    for input_id, result in scored.results
                ]
            )
        # Only after every result is written (Kafka commits are cumulative: acknowledging a
        # parked message early could commit past results not yet published).
        self.transport.ack([*(input_id for input_id, _ in scored.results), *parked])
        self.processed += len(messages)

    def _score(self, valid: list[tuple[Message, dict[str, Any]]]) -> Scored:
        """Score the batch at once; if the model fails on it, one by one, so only the culprits are parked."""
        assert self.secret is not None
        request_ids = [request_id_for(self.input_stream, message, self.secret) for message, _ in valid]
        if not valid:
            return Scored([], [])
        try:
            results = self.scorer.score_records([record for _, record in valid], request_ids)
            return Scored([(m.id, r) for (m, _), r in zip(valid, results, strict=True)], [])
        except Exception as error:  # logged; retried one by one below
            # A record that validates can still make the model raise (a fault in the model or a
            # value it was never fitted for); re-raising would redeliver the batch forever.
            logger.warning("scoring a batch of %d failed (%s); scoring one by one", len(valid), error)
        scored = Scored([], [])
        for (message, record), request_id in zip(valid, request_ids, strict=True):
            try:
                [result] = self.scorer.score_records([record], [request_id])
                scored.results.append((message.id, result))
            except Exception as error:  # the reason goes into the dead letter
                scored.failed.append((message, f"{type(error).__name__}: {error}"))
        return scored

    def _follow_served_model(self) -> None:
        changed = self.follow() if self.follow is not None else None
        if changed is not None:
            self.scorer, self.record_type = changed.scorer, changed.record_type

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
                if self.secret is None:
                    self.secret = request_id_secret(self.transport, self.configured_secret)
                self._follow_served_model()
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
            except redis.ResponseError as error:
                # Not content (messages are read as bytes): the server refused a command, e.g. the
                # input key is not a stream, or it is out of memory. Nothing is acknowledged, so
                # the batch is redelivered once the server accepts commands again.
                backoff = min(MAX_BACKOFF_S, max(0.5, backoff * 2))
                logger.error("Redis refused a command (%s); retrying in %.1fs", error, backoff)
                self.stop.wait(backoff)


def open_transport(settings: StreamingSettings, consumer: str) -> StreamTransport:
    if settings.transport == "kafka":
        from tabserve.streaming.kafka_transport import KafkaTransport

        return KafkaTransport(settings, consumer)
    return RedisStreamTransport(settings, consumer)


def run_worker(settings: Settings, tag: str, consumer: str | None, follow: bool = False) -> None:
    """`tabserve stream`: runs until SIGTERM/SIGINT, then finishes its batch and exits.

    `follow`: switch to the model the deployment serves when it changes (model_follow.py).
    """
    stream = settings.streaming
    secret = os.environ.get(REQUEST_ID_SECRET_ENV)  # read once, at start-up
    if stream.transport == "kafka" and not secret:
        # Said before any Kafka client starts: one left unclosed aborts the process at exit.
        from tabserve.streaming.kafka_transport import MISSING_SECRET

        raise ConfigurationError(MISSING_SECRET)
    name = consumer or f"{socket.gethostname()}-{os.getpid()}"
    prediction_logger = open_prediction_logger(settings.monitoring)
    scoring = load_scoring(settings, tag, prediction_logger)
    following = follow and stream.follow_interval_s > 0
    worker = StreamWorker(
        open_transport(stream, name),
        scoring.scorer,
        scoring.record_type,
        stream.input_stream,
        batch_size=stream.batch_size,
        max_wait_ms=stream.max_wait_ms,
        block_ms=stream.block_ms,
        claim_idle_ms=stream.claim_idle_ms,
        secret=secret,
        follow=follower(settings, scoring.tag, prediction_logger) if following else None,
        policy=log_policy(settings.monitoring),
    )
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: worker.stop.set())
    logger.info(
        "consumer %s scoring %s -> %s with %s%s",
        name,
        stream.input_stream,
        stream.output_stream,
        scoring.tag,
        f" (following the deployment every {stream.follow_interval_s:g} s)" if following else "",
    )
    try:
        worker.run()
    finally:
        if prediction_logger is not None:
            prediction_logger.close()
        logger.info("stopped after %d messages", worker.processed)
