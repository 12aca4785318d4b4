"""The stream worker over Kafka.

No Kafka broker can run on this machine: the peer is librdkafka's mock cluster (confluent-kafka's
`test.mock.num.brokers`), started in the test process and reached by the worker over loopback.
It speaks the Kafka protocol (groups, offsets, produce/consume) but it is a test peer, not a
real Kafka server.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from tabserve.model_store import StoredModel
from tests.servers import REPO


@pytest.fixture(scope="module")
def bootstrap() -> Iterator[str]:
    mock = Producer({"test.mock.num.brokers": 1})  # keeps the mock cluster alive
    brokers = mock.list_topics(timeout=10).brokers.values()
    yield ",".join(f"{broker.host}:{broker.port}" for broker in brokers)
    mock.flush(1)


def read_all(bootstrap: str, topic: str, expected: int, timeout: float = 60) -> list[dict[str, Any]]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    values: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while len(values) < expected and time.monotonic() < deadline:
        for message in consumer.consume(num_messages=500, timeout=0.5):
            if message.error() is None:
                values.append(json.loads(message.value() or b"null"))
    consumer.close()
    return values


def test_the_worker_scores_a_kafka_topic(bootstrap: str, default_model: StoredModel, tmp_path: Path) -> None:
    names = {key: f"{key}-{uuid.uuid4().hex[:8]}" for key in ("in", "out", "dead", "group")}
    frame = default_model.load_reference()[default_model.schema.names].head(100)
    producer = Producer({"bootstrap.servers": bootstrap})
    for row in frame.to_dict("records"):
        producer.produce(
            names["in"], json.dumps({"record": {str(k): float(v) for k, v in row.items()}}).encode()
        )
    producer.produce(names["in"], b"{not json")
    producer.produce(names["in"], json.dumps({"no_record": 1}).encode())
    producer.flush(10)
    config = tmp_path / "kafka.yaml"
    config.write_text(
        f"streaming:\n  transport: kafka\n  kafka_bootstrap_servers: '{bootstrap}'\n"
        f"  input_stream: {names['in']}\n  output_stream: {names['out']}\n"
        f"  dead_letter_stream: {names['dead']}\n  group: {names['group']}\n  block_ms: 200\n"
        f"monitoring:\n  log_predictions: false\n"
    )
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "tabserve", "--config", str(config), "stream"],
            cwd=REPO,
            env=dict(os.environ),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        results = read_all(bootstrap, names["out"], 100)
        dead = read_all(bootstrap, names["dead"], 2)
    finally:
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(30)
    assert code == 0, log.read_text()[-3000:]
    assert len(results) == 100 and len({r["request_id"] for r in results}) == 100, log.read_text()[-3000:]
    assert {json.loads(r["prediction"]) for r in results} <= {"benign", "malignant"}
    reasons = sorted(d["reason"] for d in dead)
    assert reasons[0] == "no 'record' field" and "Invalid JSON" in reasons[1], reasons
    checker = Consumer({"bootstrap.servers": bootstrap, "group.id": names["group"]})
    committed = checker.committed([TopicPartition(names["in"], p) for p in range(4)], timeout=10)
    checker.close()
    assert sum(max(tp.offset, 0) for tp in committed) == 102  # every input acknowledged
