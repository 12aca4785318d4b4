"""The stream worker over Kafka.

No Kafka broker can run on this machine: the peer is librdkafka's mock cluster (confluent-kafka's
`test.mock.num.brokers`), started in the test process and reached by the worker over loopback.
It speaks the Kafka protocol (groups, offsets, produce/consume) but it is a test peer, not a
real Kafka server.
"""

from __future__ import annotations

import base64
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


def kafka_config(tmp_path: Path, bootstrap: str, names: dict[str, str]) -> Path:
    config = tmp_path / "kafka.yaml"
    config.write_text(
        f"streaming:\n  transport: kafka\n  kafka_bootstrap_servers: '{bootstrap}'\n"
        f"  input_stream: {names['in']}\n  output_stream: {names['out']}\n"
        f"  dead_letter_stream: {names['dead']}\n  group: {names['group']}\n  block_ms: 200\n"
        f"monitoring:\n  log_predictions: false\n"
    )
    return config


def test_the_worker_scores_a_kafka_topic(bootstrap: str, default_model: StoredModel, tmp_path: Path) -> None:
    names = {key: f"{key}-{uuid.uuid4().hex[:8]}" for key in ("in", "out", "dead", "group")}
    frame = default_model.load_reference()[default_model.schema.names].head(100)
    producer = Producer({"bootstrap.servers": bootstrap})
    for row in frame.to_dict("records"):
        producer.produce(
            names["in"], json.dumps({"record": {str(k): float(v) for k, v in row.items()}}).encode()
        )
    forged = json.dumps({"record": "{", "reason": "fine", "input_id": "0-0"}).encode()
    for bad in (b"{not json", json.dumps({"no_record": 1}).encode(), b'{"record": {"x": "\xff"}}', forged):
        producer.produce(names["in"], bad)
    producer.flush(10)
    config = kafka_config(tmp_path, bootstrap, names)
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "tabserve", "--config", str(config), "stream"],
            cwd=REPO,
            env={**os.environ, "TABSERVE_REQUEST_ID_SECRET": "test secret"},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        results = read_all(bootstrap, names["out"], 100)
        dead = read_all(bootstrap, names["dead"], 4)
    finally:
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(30)
    assert code == 0, log.read_text()[-3000:]
    assert len(results) == 100 and len({r["request_id"] for r in results}) == 100, log.read_text()[-3000:]
    assert {json.loads(r["prediction"]) for r in results} <= {"benign", "malignant"}
    letters = {d["reason"].split(":")[0].split(" ")[0]: d for d in dead}
    assert letters["no"]["reason"] == "no 'record' field", dead
    not_utf8 = letters["not"]
    assert not_utf8["message_encoding"] == "base64", dead
    assert base64.b64decode(not_utf8["message"]) == b'{"record": {"x": "\xff"}}'
    invalid = sorted((d for d in dead if "Invalid JSON" in d["reason"]), key=lambda d: d["message"])
    assert [d["message"] for d in invalid] == sorted(["{not json", forged.decode()]), dead
    assert all(d["input_id"] != "0-0" and d["message_encoding"] == "utf-8" for d in invalid)
    checker = Consumer({"bootstrap.servers": bootstrap, "group.id": names["group"]})
    committed = checker.committed([TopicPartition(names["in"], p) for p in range(4)], timeout=10)
    checker.close()
    assert sum(max(tp.offset, 0) for tp in committed) == 104  # every input acknowledged


def test_without_a_request_id_secret_the_worker_says_so(bootstrap: str, tmp_path: Path) -> None:
    """Kafka has no key-value store to share a random secret through: it must be configured."""
    names = {key: f"{key}-{uuid.uuid4().hex[:8]}" for key in ("in", "out", "dead", "group")}
    env = {k: v for k, v in os.environ.items() if k != "TABSERVE_REQUEST_ID_SECRET"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tabserve",
            "--config",
            str(kafka_config(tmp_path, bootstrap, names)),
            "stream",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 2 and len(errors) == 1 and "TABSERVE_REQUEST_ID_SECRET" in errors[0], (
        result.stderr
    )
