"""Stream transports. The worker depends on `StreamTransport` only, so Kafka (or another broker)
can replace Redis Streams without touching the scoring loop.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import redis

from tabserve.settings import StreamingSettings


class TransportUnavailableError(Exception):
    """The broker cannot be reached right now; the worker retries with back-off."""


@dataclass(frozen=True)
class Message:
    id: str
    fields: Mapping[str, str]


class StreamTransport(Protocol):
    def ensure_group(self) -> None: ...
    def read(self, count: int, block_ms: int) -> list[Message]: ...
    def reclaim(self, min_idle_ms: int, count: int) -> list[Message]: ...
    def publish(self, results: Sequence[Mapping[str, str]]) -> None: ...
    def dead_letter(self, message: Message, reason: str) -> None: ...
    def ack(self, ids: Sequence[str]) -> None: ...


def _messages(entries: Any) -> list[Message]:
    return [Message(message_id, fields) for message_id, fields in entries if fields is not None]


class RedisStreamTransport:
    """Redis Streams with a consumer group: XREADGROUP, XADD, XACK, XAUTOCLAIM."""

    def __init__(self, settings: StreamingSettings, consumer: str) -> None:
        self.settings = settings
        self.consumer = consumer
        # redis-py's stubs type the sync client as possibly async: keep it untyped here.
        self.client: Any = redis.Redis.from_url(settings.redis_url, decode_responses=True, socket_timeout=30)
        self._claim_cursor = "0-0"

    def ensure_group(self) -> None:
        try:
            self.client.xgroup_create(self.settings.input_stream, self.settings.group, id="0", mkstream=True)
        except redis.ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise

    def read(self, count: int, block_ms: int) -> list[Message]:
        response = self.client.xreadgroup(
            self.settings.group, self.consumer, {self.settings.input_stream: ">"}, count=count, block=block_ms
        )
        return _messages(response[0][1]) if response else []

    def reclaim(self, min_idle_ms: int, count: int) -> list[Message]:
        cursor, entries, _deleted = self.client.xautoclaim(
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
        self.client.xadd(
            self.settings.dead_letter_stream, {"input_id": message.id, "reason": reason, **message.fields}
        )

    def ack(self, ids: Sequence[str]) -> None:
        if ids:
            self.client.xack(self.settings.input_stream, self.settings.group, *ids)
