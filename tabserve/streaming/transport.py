"""Stream transports. The worker depends on `StreamTransport` only, so Kafka (or another broker)
can replace Redis Streams without touching the scoring loop.

Messages are read as bytes and decoded here, field by field: a message that is not UTF-8 comes
back as a `Message` with a `defect` (the worker dead-letters it) instead of an exception that
would stop the worker and, after every restart, the batch it belongs to.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import redis

from tabserve.settings import StreamingSettings

UTF8, BASE64 = "utf-8", "base64"


class TransportUnavailableError(Exception):
    """The broker cannot be reached right now; the worker retries with back-off."""


@dataclass(frozen=True)
class Message:
    id: str
    fields: Mapping[str, str]
    # The message as received (Redis: its fields; Kafka: its value), kept verbatim in a dead letter.
    raw: Mapping[bytes, bytes] | bytes | None = field(default=None, repr=False)
    defect: str | None = None  # why the transport could not decode it: it is dead-lettered as is


class StreamTransport(Protocol):
    def ensure_group(self) -> None: ...
    def shared_secret(self, candidate: str) -> str: ...
    def read(self, count: int, block_ms: int) -> list[Message]: ...
    def reclaim(self, min_idle_ms: int, count: int) -> list[Message]: ...
    def publish(self, results: Sequence[Mapping[str, str]]) -> None: ...
    def dead_letter(self, message: Message, reason: str) -> None: ...
    def ack(self, ids: Sequence[str]) -> None: ...


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def original_message(message: Message) -> tuple[str, str]:
    """The original message as (text, encoding) for a dead letter's `message`/`message_encoding`.

    Redis: a JSON object of the fields; Kafka: the value. "utf-8" when it decodes, otherwise
    "base64" (for Redis every key and value of the JSON object is base64): kept byte for byte.
    """
    raw: Mapping[bytes, bytes] | bytes = (
        message.raw
        if message.raw is not None
        else {k.encode(): v.encode() for k, v in message.fields.items()}
    )
    if isinstance(raw, bytes):
        try:
            return raw.decode(UTF8), UTF8
        except UnicodeDecodeError:
            return _b64(raw), BASE64
    try:
        return json.dumps({k.decode(UTF8): v.decode(UTF8) for k, v in raw.items()}), UTF8
    except UnicodeDecodeError:
        return json.dumps({_b64(k): _b64(v) for k, v in raw.items()}), BASE64


def dead_letter_fields(message: Message, reason: str) -> dict[str, str]:
    """Our fields, and the original message under one field: nothing in it can forge them."""
    text, encoding = original_message(message)
    return {"input_id": message.id, "reason": reason, "message": text, "message_encoding": encoding}


def decode_message(message_id: bytes | str, raw: Mapping[bytes, bytes]) -> Message:
    """A Redis entry as a Message; one that is not UTF-8 carries a defect instead of raising."""
    ident = message_id.decode() if isinstance(message_id, bytes) else message_id
    try:
        fields = {key.decode(UTF8): value.decode(UTF8) for key, value in raw.items()}
    except UnicodeDecodeError as error:
        return Message(ident, {}, raw, f"not UTF-8: {error}")
    return Message(ident, fields, raw)


def _messages(entries: Any) -> list[Message]:
    return [decode_message(message_id, fields) for message_id, fields in entries if fields is not None]


class RedisStreamTransport:
    """Redis Streams with a consumer group: XREADGROUP, XADD, XACK, XAUTOCLAIM."""

    def __init__(self, settings: StreamingSettings, consumer: str) -> None:
        self.settings = settings
        self.consumer = consumer
        # Bytes, not decode_responses: one message that is not UTF-8 must not fail a whole read.
        # redis-py's stubs type the sync client as possibly async: keep it untyped here.
        self.client: Any = redis.Redis.from_url(settings.redis_url, decode_responses=False, socket_timeout=30)
        self._claim_cursor: bytes | str = "0-0"

    def ensure_group(self) -> None:
        try:
            self.client.xgroup_create(self.settings.input_stream, self.settings.group, id="0", mkstream=True)
        except redis.ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise

    def shared_secret(self, candidate: str) -> str:
        """The group's secret: the first worker's candidate wins (SET NX), every later one reads it."""
        key = f"{self.settings.input_stream}:request-id-secret"
        self.client.set(key, candidate, nx=True)
        return bytes(self.client.get(key)).decode()

    def read(self, count: int, block_ms: int) -> list[Message]:
        response = self.client.xreadgroup(
            self.settings.group, self.consumer, {self.settings.input_stream: ">"}, count=count, block=block_ms
        )
        return _messages(response[0][1]) if response else []

    def reclaim(self, min_idle_ms: int, count: int) -> list[Message]:
        cursor, entries, *_deleted = self.client.xautoclaim(
            self.settings.input_stream,
            self.settings.group,
            self.consumer,
            min_idle_time=min_idle_ms,
            start_id=self._claim_cursor,
            count=count,
        )
        self._claim_cursor = cursor
        return _messages(entries)

    def publish(self, results: Sequence[Mapping[str, str]]) -> None:
        pipeline = self.client.pipeline(transaction=False)
        for result in results:
            pipeline.xadd(
                self.settings.output_stream,
                dict(result),
                maxlen=self.settings.output_maxlen,
                approximate=True,
            )
        pipeline.execute()

    def dead_letter(self, message: Message, reason: str) -> None:
        self.client.xadd(self.settings.dead_letter_stream, dead_letter_fields(message, reason))

    def ack(self, ids: Sequence[str]) -> None:
        if ids:
            self.client.xack(self.settings.input_stream, self.settings.group, *ids)
