"""A rollout guarded on a business outcome: a candidate whose users stop clicking is rolled back.

Known answer: the same model twice (every other guard passes), but the candidate's users click
2% of the time against the champion's 40%; with `outcome_guards: {click: 0.05}` the rollout
must roll back, naming the outcome guard, and never promote the candidate. The step it fires at
is the first or the second: the guard judges a step once the prediction log holds `min_requests`
of each variant, and the log trails the live request counters that let a step end by the
writer's flush (CI on a loaded machine: step 1 ended before 60 candidate rows were written).
"""

from __future__ import annotations

import random
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tabserve.model_store import StoredModel
from tests.factories import reference_records
from tests.integration.conftest import ADMIN_TOKEN, deployment_server
from tests.postgres import temporary_database
from tests.servers import wait_for

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
CLICK_SHARE = {"champion": 0.40, "candidate": 0.02}
ROLLOUT = {
    "steps": [20, 100],
    "min_requests": 60,
    "min_seconds": 3,
    "check_interval_s": 0.5,
    "max_p99_ms": 1000,
    "outcome_guards": {"click": 0.05},
}


@pytest.fixture
def database() -> Iterator[str]:
    with temporary_database() as url:
        yield url


def send_traffic(url: str, records: list[dict[str, Any]], stop: threading.Event, seed: int) -> None:
    """Predict, then report a click with the variant's probability (as a web page would)."""
    rng = random.Random(seed)
    with httpx.Client(timeout=30) as client:
        while not stop.is_set():
            headers = {"X-User-ID": f"user-{rng.randrange(10**9)}"}
            answer = client.post(f"{url}/predict", json={"record": rng.choice(records)}, headers=headers)
            if answer.status_code != 200:
                continue
            body = answer.json()
            if rng.random() < CLICK_SHARE[body["variant"]]:
                sent = client.post(f"{url}/outcome", json={"request_id": body["request_id"], "name": "click"})
                assert sent.status_code == 200, sent.text


def test_a_candidate_with_fewer_clicks_is_rolled_back_by_the_outcome_guard(
    logs: Path, database: str, default_model: StoredModel, candidate_model: StoredModel
) -> None:
    deployment = {
        "variants": {"champion": default_model.tag, "candidate": candidate_model.tag},
        "outcomes": {"click": "rate"},
        "rollout": ROLLOUT,
    }
    records = reference_records(default_model, 200)
    with deployment_server(logs, deployment, database) as url:
        started = httpx.post(f"{url}/admin/rollout", json={"reason": "ship it"}, headers=AUTH, timeout=30)
        assert started.status_code == 200, started.text
        stop = threading.Event()
        threads = [
            threading.Thread(target=send_traffic, args=(url, records, stop, seed)) for seed in range(3)
        ]
        for thread in threads:
            thread.start()
        try:

            def finished() -> dict[str, Any] | None:
                state = httpx.get(f"{url}/admin/state", headers=AUTH, timeout=10).json()["state"]
                return state["rollout"] if state["rollout"]["state"] != "running" else None

            rollout = wait_for(finished, 120, "the rollout to finish")
        finally:
            stop.set()
            for thread in threads:
                thread.join()
    assert rollout["state"] == "rolled_back", rollout["reason"]
    assert re.match(r"guard outcome:click fired at step [12] \((20|100)%\)", rollout["reason"]), rollout[
        "reason"
    ]
    guard = rollout["guards"]["outcome:click"]
    assert (
        guard["ok"] is False
        and guard["value"] < 0.1
        and "worse: click rate more than 0.05 lower" in guard["detail"]
    )
    assert all(guard["ok"] for name, guard in rollout["guards"].items() if name != "outcome:click")
