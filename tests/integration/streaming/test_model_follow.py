"""A running stream worker follows the deployment (issue 15): after a switch it scores with the
model now served, without a restart; a worker started with `--model` stays on its model.

Real Redis, a PostgreSQL database of its own holding the deployment state, the state written by
the same function the admin API uses (deployment/store.write_state).
"""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import redis
import yaml

from tabserve.deployment.policy import DeploymentState
from tabserve.deployment.store import Change, write_state
from tabserve.model_store import StoredModel
from tabserve.predictions.migration import ensure_schema
from tabserve.predictions.store import make_engine
from tabserve.settings import Policy
from tests.factories import reference_records
from tests.postgres import temporary_database
from tests.redis_streams import REDIS_URL, config, outputs, push, start_worker, wait_until

BATCH = 40
GROUPS = ("follows", "pinned")


def follow_config(base: Path, blue: str, green: str, group: str) -> Path:
    """The stream test configuration plus blue/green variants, re-read every 0.3 s.

    Each worker has a consumer group and an output stream of its own, so each reads every input.
    """
    settings = yaml.safe_load(base.read_text())
    settings["streaming"] |= {
        "follow_interval_s": 0.3,
        "group": group,
        "output_stream": f"{settings['streaming']['output_stream']}:{group}",
    }
    settings["deployment"] = {
        "variants": {"blue": blue, "green": green},
        "policy": {"strategy": "blue-green", "active": "blue"},
    }
    path = base.with_name(f"follow-{group}.yaml")
    path.write_text(yaml.safe_dump(settings))
    return path


def test_a_running_worker_switches_to_the_served_model(
    default_model: StoredModel,
    candidate_model: StoredModel,
    streams: dict[str, str],
    tmp_path: Path,
) -> None:
    client: Any = redis.Redis.from_url(REDIS_URL)
    records = reference_records(default_model, BATCH)
    base = config(tmp_path, streams)
    follows, pins = (follow_config(base, default_model.tag, candidate_model.tag, group) for group in GROUPS)
    outputs_of = {group: f"{streams['output']}:{group}" for group in GROUPS}
    with temporary_database() as database:
        engine = make_engine(database)
        ensure_schema(engine)
        env = {"TABSERVE_DATABASE_URL": database}
        log, pinned_log = tmp_path / "follower.log", tmp_path / "pinned.log"
        follower = start_worker(follows, env, "follower", log)
        pinned = start_worker(pins, env, "pinned", pinned_log, "--model", default_model.tag)
        try:
            push(client, streams["input"], records)
            wait_until(lambda: all(client.xlen(out) >= BATCH for out in outputs_of.values()))
            switched = DeploymentState(policy=Policy(strategy="blue-green", active="green"))
            assert write_state(engine, None, switched.to_json(), Change("test", "switch", "release")) == 1
            wait_until(lambda: "the deployment now serves" in log.read_text(), timeout=30)
            push(client, streams["input"], records)
            wait_until(lambda: all(client.xlen(out) >= 2 * BATCH for out in outputs_of.values()))
        finally:
            for worker in (follower, pinned):
                worker.send_signal(signal.SIGTERM)
                assert worker.wait(30) == 0, log.read_text()[-2000:] + pinned_log.read_text()[-2000:]
            engine.dispose()
    followed, stayed = (outputs(client, out) for out in outputs_of.values())
    client.delete(*outputs_of.values())
    assert [r["model"] for r in followed] == [default_model.tag] * BATCH + [candidate_model.tag] * BATCH
    assert [r["model"] for r in stayed] == [default_model.tag] * 2 * BATCH  # --model pins it
    assert f"now serves {candidate_model.tag}" in log.read_text()
    assert "following the deployment" in log.read_text() and "following" not in pinned_log.read_text()
    assert all(json.loads(r["prediction"]) in ("benign", "malignant") for r in followed + stayed)
