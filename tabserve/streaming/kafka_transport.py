"""Kafka transport for the stream worker (confluent-kafka, the `kafka` extra).

Mapping of the worker's operations:
- read: consume from the input topic in the consumer group (offsets committed by us only);
- reclaim: nothing to do: Kafka reassigns a dead consumer's partitions, and uncommitted
  offsets are delivered again to their new owner;
- publish / dead_letter: produce to the output / dead-letter topics and wait for delivery;
- ack: commit, per partition, the offset after the highest acknowledged message.

Message value: a JSON object with "record" (an object, or its JSON text) and optionally
"request_id". Anything else (including a value that is not UTF-8) is dead-lettered with the
reason; the dead letter keeps the value verbatim in "message" (base64 when it is not UTF-8).

Request ids: Kafka has no key-value store to share a random secret through, so the worker needs
TABSERVE_REQUEST_ID_SECRET (the same in every worker of the group) and says so if it is missing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from tabserve.errors import ConfigurationError
from tabserve.settings import StreamingSettings
from tabserve.streaming.transport import Message, TransportUnavailableError, dead_letter_fields

MISSING_SECRET = (
    "the Kafka transport needs TABSERVE_REQUEST_ID_SECRET (the same value in every worker "
    "of the group): request ids are derived from it"
)

DELIVERY_TIMEOUT_S = 30.0


def _message(message_id: str, value: bytes | None) -> Message:
    raw = value or b""
    try:
        text = raw.decode("utf-8")  # strict: a replacement character could pass as a category
    except UnicodeDecodeError as error:
        return Message(message_id, {}, raw, f"not UTF-8: {error}")
    return Message(message_id, _fields(text), raw)


def _fields(text: str) -> dict[str, str]:
    """The message value as the worker's fields: {"record": JSON text, "request_id": ...}."""
    try:
        body = json.loads(text)
    except json.JSONDecodeError:
        return {"record": text}  # parse() reports the invalid JSON
    if not isinstance(body, dict):
        return {"record": text}  # parse() reports that it is not an object
    if "record" not in body:
        return {}  # parse() reports the missing field
    record = body["record"]
    fields = {"record": record if isinstance(record, str) else json.dumps(record)}
    if body.get("request_id"):
        fields["request_id"] = str(body["request_id"])
    return fields


class KafkaTransport:
    def __init__(self, settings: StreamingSettings, consumer: str) -> None:
        from confluent_kafka import Consumer, Producer

        self.settings = settings
        common = {"bootstrap.servers": settings.kafka_bootstrap_servers}
        self.consumer = Consumer(
            {
                **common,
                "group.id": settings.group,
                "client.id": consumer,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
            }
        )
        self.producer = Producer({**common, "enable.idempotence": True})
        self.consumer.subscribe([settings.input_stream])
        self._partitions: dict[str, tuple[int, int]] = {}  # message id -> (partition, offset)

    def ensure_group(self) -> None:
        """Kafka creates the group on first join."""

    def shared_secret(self, candidate: str) -> str:
        raise ConfigurationError(MISSING_SECRET)

    def read(self, count: int, block_ms: int) -> list[Message]:
        messages = []
        for item in self.consumer.consume(num_messages=count, timeout=block_ms / 1000):
            error = item.error()
            if error is not None:
                if error.retriable() or error.code() < 0:  # transport-level: retry later
                    raise TransportUnavailableError(str(error))
                continue
            partition, offset = item.partition(), item.offset()
            assert partition is not None and offset is not None  # set on every consumed message
            message_id = f"{partition}-{offset}"
            self._partitions[message_id] = (partition, offset)
            messages.append(_message(message_id, item.value()))
        return messages

    def reclaim(self, min_idle_ms: int, count: int) -> list[Message]:
        return []

    def _produce(self, topic: str, values: Sequence[Mapping[str, str]], key_field: str) -> None:
        failures: list[Any] = []

        def delivered(error: Any, _message: Any) -> None:
            if error is not None:
                failures.append(error)

        for value in values:
            self.producer.produce(
                topic,
                json.dumps(dict(value)).encode(),
                key=value.get(key_field, "").encode(),
                on_delivery=delivered,
            )
        remaining = self.producer.flush(DELIVERY_TIMEOUT_S)
        if failures or remaining:
            raise TransportUnavailableError(
                f"{len(failures) + remaining} message(s) not delivered to {topic}"
            )

    def publish(self, results: Sequence[Mapping[str, str]]) -> None:
        self._produce(self.settings.output_stream, results, "request_id")

    def dead_letter(self, message: Message, reason: str) -> None:
        self._produce(
            self.settings.dead_letter_stream,
            [dead_letter_fields(message, reason)],
            "input_id",
        )

    def ack(self, ids: Sequence[str]) -> None:
        from confluent_kafka import TopicPartition

        highest: dict[int, int] = {}
        for message_id in ids:
            partition, offset = self._partitions.pop(message_id)
            highest[partition] = max(offset, highest.get(partition, -1))
        if highest:
            self.consumer.commit(
                offsets=[TopicPartition(self.settings.input_stream, p, o + 1) for p, o in highest.items()],
                asynchronous=False,
            )
