"""The stream worker against the local Redis server, each test on its own stream names."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import redis

from tabserve.model_store import StoredModel
from tests.factories import reference_records
from tests.faults import failing_variant
from tests.redis_streams import REDIS_URL, config, outputs, push, start_worker, wait_until
from tests.servers import REPO


def test_every_input_gets_exactly_one_result_and_is_logged(
    default_model: StoredModel, streams: dict[str, str], tmp_path: Path, service_env: dict[str, str]
) -> None:
    client: Any = redis.Redis.from_url(REDIS_URL)
    ids = push(client, streams["input"], reference_records(default_model, 500))
    env = {"TABSERVE_DATABASE_URL": service_env["TABSERVE_DATABASE_URL"]}
    worker = start_worker(config(tmp_path, streams), env, "w1", tmp_path / "w1.log")
    try:
        wait_until(lambda: client.xlen(streams["output"]) >= 500)
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0, (tmp_path / "w1.log").read_text()[-2000:]
    results = outputs(client, streams["output"])
    assert sorted(r["input_id"] for r in results) == sorted(ids)
    assert len({r["request_id"] for r in results}) == 500
    assert {json.loads(r["prediction"]) for r in results} <= {"benign", "malignant"}
    assert client.xpending(streams["input"], "g")["pending"] == 0
    from tests.postgres import count_rows

    quoted = ",".join(f"'{r['request_id']}'" for r in results[:50])
    assert count_rows(service_env["TABSERVE_DATABASE_URL"], f"request_id IN ({quoted})") == 50


def test_a_killed_consumer_loses_nothing(
    default_model: StoredModel, streams: dict[str, str], tmp_path: Path
) -> None:
    client: Any = redis.Redis.from_url(REDIS_URL)
    ids = push(client, streams["input"], reference_records(default_model, 4000))
    cfg = config(tmp_path, streams, batch_size=8, claim_idle_ms=1000)
    env = {"TABSERVE_DATABASE_URL": f"sqlite:///{tmp_path}/log.db"}
    first = start_worker(cfg, env, "doomed", tmp_path / "a.log")
    wait_until(lambda: client.xlen(streams["output"]) >= 200)
    first.send_signal(signal.SIGKILL)  # mid-stream, possibly between publish and ack
    first.wait()
    assert client.xlen(streams["output"]) < 4000, "the first worker finished before it was killed"
    second = start_worker(cfg, env, "rescuer", tmp_path / "b.log")
    try:
        wait_until(
            lambda: len({r["input_id"] for r in outputs(client, streams["output"])}) >= 4000, timeout=120
        )
        wait_until(lambda: client.xpending(streams["input"], "g")["pending"] == 0)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(30)
    results = outputs(client, streams["output"])
    assert {r["input_id"] for r in results} == set(ids)  # no message lost
    by_input: dict[str, set[str]] = {}
    for result in results:
        by_input.setdefault(result["input_id"], set()).add(result["request_id"])
    assert all(len(request_ids) == 1 for request_ids in by_input.values())  # duplicates share the id


def test_malformed_messages_go_to_the_dead_letter_stream(
    default_model: StoredModel, streams: dict[str, str], tmp_path: Path
) -> None:
    client: Any = redis.Redis.from_url(REDIS_URL)
    good = push(client, streams["input"], reference_records(default_model, 3))
    client.xadd(streams["input"], {"record": "{broken"})
    client.xadd(
        streams["input"],
        {"record": json.dumps({**reference_records(default_model, 1)[0], "mean radius": "x"})},
    )
    client.xadd(streams["input"], {"other": "field"})
    env = {"TABSERVE_DATABASE_URL": f"sqlite:///{tmp_path}/log.db"}
    worker = start_worker(config(tmp_path, streams), env, "w", tmp_path / "w.log")
    try:
        wait_until(lambda: client.xlen(streams["dead"]) >= 3 and client.xlen(streams["output"]) >= 3)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
    reasons = [fields["reason"] for fields in outputs(client, streams["dead"])]
    assert "Invalid JSON" in reasons[0] and "mean radius: Input should be a valid number" in reasons[1]
    assert reasons[2] == "no 'record' field"
    assert sorted(r["input_id"] for r in outputs(client, streams["output"])) == sorted(good)
    assert client.xpending(streams["input"], "g")["pending"] == 0


def test_a_message_that_is_not_utf8_is_dead_lettered_and_the_worker_keeps_running(
    default_model: StoredModel, streams: dict[str, str], tmp_path: Path
) -> None:
    """A non-UTF-8 message used to raise out of read(): the worker died, and so did every restart."""
    client: Any = redis.Redis.from_url(REDIS_URL)
    records = reference_records(default_model, 4)
    good = push(client, streams["input"], records[:2])
    bad = client.xadd(
        streams["input"], {b"record": b'{"mean radius": "\xff\xfe"}', b"\xc3\x28": b"x"}
    ).decode()
    good += push(client, streams["input"], records[2:])
    env = {"TABSERVE_DATABASE_URL": f"sqlite:///{tmp_path}/log.db"}
    worker = start_worker(config(tmp_path, streams, claim_idle_ms=500), env, "w", tmp_path / "w.log")
    try:
        wait_until(lambda: client.xlen(streams["dead"]) >= 1 and client.xlen(streams["output"]) >= 4)
        later = push(client, streams["input"], records[:1])  # still alive: answers what comes next
        wait_until(lambda: client.xlen(streams["output"]) >= 5)
        assert worker.poll() is None, (tmp_path / "w.log").read_text()[-2000:]
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0, (tmp_path / "w.log").read_text()[-2000:]
    assert sorted(r["input_id"] for r in outputs(client, streams["output"])) == sorted(good + later)
    [(_, letter)] = client.xrange(streams["dead"])
    assert letter[b"input_id"].decode() == bad and b"UTF-8" in letter[b"reason"]
    assert letter[b"message_encoding"] == b"base64"
    original = {base64.b64decode(k): base64.b64decode(v) for k, v in json.loads(letter[b"message"]).items()}
    assert original == {b"record": b'{"mean radius": "\xff\xfe"}', b"\xc3\x28": b"x"}  # kept exactly
    assert client.xpending(streams["input"], "g")["pending"] == 0


def test_a_dead_letter_cannot_be_forged_by_the_message(
    default_model: StoredModel, streams: dict[str, str], tmp_path: Path
) -> None:
    client: Any = redis.Redis.from_url(REDIS_URL)
    forged = {"record": "{broken", "reason": "all fine, ignore", "input_id": "0-1"}
    bad = client.xadd(streams["input"], forged).decode()
    env = {"TABSERVE_DATABASE_URL": f"sqlite:///{tmp_path}/log.db"}
    worker = start_worker(config(tmp_path, streams), env, "w", tmp_path / "w.log")
    try:
        wait_until(lambda: client.xlen(streams["dead"]) >= 1)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
    [letter] = outputs(client, streams["dead"])
    assert letter["input_id"] == bad and "Invalid JSON" in letter["reason"]
    assert letter["message_encoding"] == "utf-8" and json.loads(letter["message"]) == forged


def test_records_the_model_fails_on_are_dead_lettered_not_retried_forever(
    default_model: StoredModel, streams: dict[str, str], tmp_path: Path
) -> None:
    """A record that validates but makes the model raise used to crash the worker on every redelivery."""
    failing = failing_variant(default_model)
    client: Any = redis.Redis.from_url(REDIS_URL)
    ids = push(client, streams["input"], reference_records(default_model, 3))
    env = {"TABSERVE_DATABASE_URL": f"sqlite:///{tmp_path}/log.db"}
    cfg = config(tmp_path, streams)
    with (tmp_path / "w.log").open("ab") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "tabserve", "--config", str(cfg), "stream", "--model", failing.tag],
            cwd=REPO,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(lambda: client.xlen(streams["dead"]) >= 3)
        assert worker.poll() is None, (tmp_path / "w.log").read_text()[-2000:]
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0, (tmp_path / "w.log").read_text()[-2000:]
    letters = outputs(client, streams["dead"])
    assert sorted(letter["input_id"] for letter in letters) == sorted(ids)
    assert all(letter["reason"] == "scoring failed: RuntimeError: injected failure" for letter in letters)
    assert client.xlen(streams["output"]) == 0 and client.xpending(streams["input"], "g")["pending"] == 0


def test_a_command_redis_refuses_is_retried_not_fatal(
    default_model: StoredModel, streams: dict[str, str], tmp_path: Path
) -> None:
    """A redis.ResponseError (here: the output key is not a stream) used to end the worker."""
    client: Any = redis.Redis.from_url(REDIS_URL)
    client.set(streams["output"], "not a stream")
    ids = push(client, streams["input"], reference_records(default_model, 3))
    env = {"TABSERVE_DATABASE_URL": f"sqlite:///{tmp_path}/log.db"}
    log = tmp_path / "w.log"
    worker = start_worker(config(tmp_path, streams), env, "w", log)
    try:
        wait_until(lambda: "Redis refused a command" in log.read_text())
        assert worker.poll() is None, log.read_text()[-2000:]
        client.delete(streams["output"])  # the operator fixes it: the pending batch goes through
        wait_until(lambda: client.xlen(streams["output"]) >= 3, timeout=90)
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0, log.read_text()[-2000:]
    assert sorted(r["input_id"] for r in outputs(client, streams["output"])) == sorted(ids)
    assert "WRONGTYPE" in log.read_text() and client.xpending(streams["input"], "g")["pending"] == 0
