"""`monitoring.log_policy` in the stream worker (issue 22): the logged rows, the spool folder and
the dead-letter stream never hold a raw value the policy changes; under `keep` they do (the control)."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from tabserve.model_store import StoredModel
from tabserve.predictions.log_policy import LOG_HASH_KEY_ENV
from tests.factories import EMAIL, NAME, raw_hits
from tests.redis_streams import REDIS_URL, config, start_worker, wait_until

GOOD = 5


@pytest.mark.parametrize("action", ["keep", "hash", "drop", "truncate"])
def test_the_stream_worker_logs_and_dead_letters_under_the_policy(
    personal_model: StoredModel, streams: dict[str, str], tmp_path: Path, action: str
) -> None:
    path = config(tmp_path, streams)
    settings = yaml.safe_load(path.read_text())
    settings["serving"] = {"model": personal_model.tag}
    settings["monitoring"]["log_policy"] = {"email": action, "name": action}
    path.write_text(yaml.safe_dump(settings))
    client: Any = redis.Redis.from_url(REDIS_URL)
    record = {"income": 61.0, "email": EMAIL, "name": NAME}
    for _ in range(GOOD):
        client.xadd(streams["input"], {"record": json.dumps(record)})
    client.xadd(
        streams["input"], {"record": json.dumps({**record, "income": "lots"})}
    )  # invalid: dead letter
    client.xadd(streams["input"], {"record": json.dumps(record)[:-5]})  # cut short: unreadable
    env = {"TABSERVE_DATABASE_URL": f"sqlite:///{tmp_path}/log.db", LOG_HASH_KEY_ENV: "stream-hash-key"}
    worker = start_worker(path, env, "w", tmp_path / "w.log")
    try:
        wait_until(lambda: client.xlen(streams["dead"]) >= 2 and client.xlen(streams["output"]) >= GOOD)
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0, (tmp_path / "w.log").read_text()[-2000:]
    dead = repr(client.xrange(streams["dead"])).encode()
    in_dead = [value for value in (EMAIL, NAME) if value.encode() in dead]
    on_disk = raw_hits(tmp_path, (EMAIL, NAME), skip=path.name)
    if action == "keep":  # the control
        assert in_dead and any(item.startswith("log.db") for item in on_disk), (in_dead, on_disk)
    else:
        assert in_dead == [] and on_disk == [], (in_dead, on_disk)
        assert b"withheld" in dead  # the unreadable record is not kept
