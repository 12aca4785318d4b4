"""Scale out: two replicas behind a real nginx, sharing one PostgreSQL.

Each replica is a `bentoml serve` with its own home, port and local folder, the same variants
and admin token, and the same database (prediction log and deployment state). Checked: A/B
assignment is the same whichever replica answers; a policy change made through one reaches
both; every answered prediction is logged exactly once after a graceful stop; and with one
replica killed (SIGKILL of its process group) mid-traffic, nginx fails over and every answered
prediction is in the database once the killed replica is back.
"""

from __future__ import annotations

import functools
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import yaml

from tabserve.model_store import StoredModel
from tests.factories import reference_records
from tests.integration.conftest import ADMIN_TOKEN, TEST_CONFIG
from tests.load_balancer import UPSTREAM_HEADER, nginx
from tests.postgres import temporary_database
from tests.replicas import Replica, replicas
from tests.servers import wait_for

logger = logging.getLogger(__name__)
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
KEYS = [f"user-{index}" for index in range(100)]
THREADS = 4  # client threads: bounded load on a shared 2-core machine
GRACEFUL_REQUESTS = 400
KILL_REQUESTS = 600
KILL_AFTER = 200  # answered requests before one replica is killed
LOAD_TIME_LIMIT_S = 120
POLICY_DEADLINE_S = 10  # 20x deployment.refresh_ms (500 ms): a loaded machine, not the claim
REPLAY_DEADLINE_S = 60
FLUSH_INTERVAL_MS = 2000


@pytest.fixture
def database() -> Iterator[str]:
    with temporary_database() as url:
        yield url


def replica_config(folder: Path, deployment: dict[str, Any]) -> Path:
    """The test configuration with these variants; its own spool (and journal) folder.

    The log's writer holds rows for up to FLUSH_INTERVAL_MS before writing them, so a replica
    killed mid-traffic always has answered rows not yet in the database: what a kill could lose
    is then always there to be lost (with the default 200 ms, a kill sometimes found none).
    """
    config = yaml.safe_load(TEST_CONFIG.format(folder=folder))
    config["monitoring"]["flush_interval_ms"] = FLUSH_INTERVAL_MS
    path = folder / "configuration.yaml"
    path.write_text(yaml.safe_dump({**config, "deployment": deployment}, sort_keys=False))
    return path


def replica_envs(logs: Path, database: str, deployment: dict[str, Any], count: int) -> list[dict[str, str]]:
    """One configuration file per replica: the same deployment, its own local folder."""
    envs = []
    for index in range(count):
        folder = logs / f"config-{index}-{random.randrange(10**9)}"
        folder.mkdir()
        envs.append(
            {
                "TABSERVE_CONFIG": str(replica_config(folder, deployment)),
                "TABSERVE_DATABASE_URL": database,
                "TABSERVE_ADMIN_TOKEN": ADMIN_TOKEN,
                # Two replicas on two cores: one native thread each. OpenMP's default (a thread per
                # core in every replica) oversubscribed the machine: ~250 ms per request at c=1,
                # and the batcher's 503s under the test's load.
                "OMP_NUM_THREADS": "1",
            }
        )
    return envs


def ab_deployment(default_model: StoredModel, candidate_model: StoredModel) -> dict[str, Any]:
    return {
        "variants": {"champion": default_model.tag, "candidate": candidate_model.tag},
        "policy": {"strategy": "ab", "weights": {"champion": 50, "candidate": 50}},
    }


def logged_request_ids(database: str) -> Counter[str]:
    dsn = database.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as connection:
        rows = connection.execute("SELECT request_id FROM predictions").fetchall()
    return Counter(str(row[0]) for row in rows)


def answering_replica(response: httpx.Response) -> str:
    """The replica that answered: the last address nginx tried ("A, B" after a retry), else the URL's."""
    tried = response.headers.get(UPSTREAM_HEADER)
    return tried.split(", ")[-1] if tried else f"{response.url.host}:{response.url.port}"


def variants_by_key(url: str, record: dict[str, Any], keys: list[str]) -> dict[str, tuple[str, str]]:
    """key -> (variant, the replica that answered)."""
    found = {}
    with httpx.Client(timeout=30) as client:
        for key in keys:
            response = client.post(f"{url}/predict", json={"record": record}, headers={"X-User-ID": key})
            assert response.status_code == 200, response.text
            found[key] = (response.json()["variant"], answering_replica(response))
    return found


class Load:
    """Client threads posting /predict to one URL until `total` requests are sent or time is up."""

    def __init__(self, url: str, records: list[dict[str, Any]], total: int) -> None:
        self.url, self.records, self.total = url, records, total
        self.answered: dict[str, str] = {}  # request id -> the replica that answered (nginx's header)
        self.failures: list[str] = []
        self.retried = 0  # answers nginx got from a second replica after the first one failed
        self._sent = 0
        self._lock = threading.Lock()
        self._deadline = time.monotonic() + LOAD_TIME_LIMIT_S
        self._threads = [threading.Thread(target=self._run, args=(seed,)) for seed in range(THREADS)]

    def _take(self) -> bool:
        with self._lock:
            if self._sent >= self.total or time.monotonic() > self._deadline:
                return False
            self._sent += 1
            return True

    def _run(self, seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(timeout=30) as client:
            while self._take():
                headers = {"X-User-ID": f"load-{rng.randrange(10**9)}"}
                try:
                    response = client.post(
                        f"{self.url}/predict", json={"record": rng.choice(self.records)}, headers=headers
                    )
                except httpx.HTTPError as error:
                    self.failures.append(repr(error))
                    continue
                if response.status_code == 200:
                    self.answered[response.json()["request_id"]] = answering_replica(response)
                    if "," in response.headers[UPSTREAM_HEADER]:  # "A, B": A failed, B answered
                        self.retried += 1
                else:
                    self.failures.append(f"{response.status_code}: {response.text[:300]}")

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        for thread in self._threads:
            thread.join(LOAD_TIME_LIMIT_S + 60)  # past the deadline plus one request's timeout


def test_replicas_agree_on_sticky_variants_follow_one_policy_and_log_each_answer_once(
    logs: Path, database: str, default_model: StoredModel, candidate_model: StoredModel
) -> None:
    envs = replica_envs(logs, database, ab_deployment(default_model, candidate_model), 2)
    record = reference_records(default_model, 1)[0]
    answered: list[str] = []
    with (
        replicas(logs / "graceful", envs) as (first, second),
        nginx(logs / "nginx-graceful", [first.address, second.address]) as balancer,
    ):
        # Sticky A/B: the same key gets the same variant from either replica, and through nginx
        # whichever replica it picks (each key is sent twice: round robin alternates them).
        direct = [variants_by_key(replica.url, record, KEYS) for replica in (first, second)]
        through = [variants_by_key(balancer, record, KEYS) for _ in range(2)]
        assert {variant for variant, _ in direct[0].values()} == {"champion", "candidate"}
        for key in KEYS:
            assert direct[0][key][0] == direct[1][key][0] == through[0][key][0] == through[1][key][0], key
        answering = {replica for result in through for _, replica in result.values()}
        assert answering == {first.address, second.address}

        # A policy change sent through nginx lands on one replica; both follow it.
        change = httpx.post(
            f"{balancer}/admin/weights",
            json={"weights": {"champion": 0, "candidate": 100}, "reason": "all to the candidate"},
            headers=AUTH,
            timeout=30,
        )
        assert change.status_code == 200, change.text
        version = change.json()["version"]

        def on_new_version(replica: Replica) -> bool:
            body = httpx.get(f"{replica.url}/admin/state", headers=AUTH, timeout=10).json()
            return bool(body["version"] == version)

        started = time.monotonic()
        for replica in (first, second):
            wait_for(functools.partial(on_new_version, replica), POLICY_DEADLINE_S, replica.url)
        logger.info("policy change on both replicas after %.2f s", time.monotonic() - started)
        for replica in (first, second):
            after = variants_by_key(replica.url, record, KEYS[:50])
            assert {variant for variant, _ in after.values()} == {"candidate"}, replica.url

        with Load(balancer, reference_records(default_model), GRACEFUL_REQUESTS) as load:
            pass
        assert load.failures == [] and len(load.answered) == GRACEFUL_REQUESTS, load.failures[:5]
        assert set(load.answered.values()) == {first.address, second.address}
        answered = list(load.answered)
        for replica in (first, second):
            assert replica.stop() == 0  # graceful: each drains its queue before it exits

    logged = logged_request_ids(database)
    sticky_requests = len(KEYS) * 4 + 2 * 50
    assert sum(logged.values()) == sticky_requests + GRACEFUL_REQUESTS  # nothing lost, nothing extra
    assert all(logged[request_id] == 1 for request_id in answered)
    assert max(logged.values()) == 1  # no duplicates


def test_a_replica_killed_mid_traffic_loses_no_answered_prediction(
    logs: Path, database: str, default_model: StoredModel, candidate_model: StoredModel
) -> None:
    envs = replica_envs(logs, database, ab_deployment(default_model, candidate_model), 2)
    with (
        replicas(logs / "killed", envs) as (victim, survivor),
        nginx(logs / "nginx-killed", [victim.address, survivor.address]) as balancer,
    ):
        with Load(balancer, reference_records(default_model), KILL_REQUESTS) as load:
            wait_for(lambda: len(load.answered) >= KILL_AFTER, LOAD_TIME_LIMIT_S, "traffic before the kill")
            before = set(load.answered.values())
            killed_at = len(load.answered)  # counted as the kill starts: kill() also waits for the exit
            victim.kill()
        assert before == {victim.address, survivor.address}  # both answered before the kill
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{victim.url}/livez", timeout=2)  # nothing of the victim is left
        # nginx failed over: every request was answered, the ones in flight at the kill included.
        assert load.failures == [] and len(load.answered) == KILL_REQUESTS, load.failures[:5]
        assert load.retried > 0  # requests that reached the dead replica were answered by the other
        assert KILL_AFTER <= killed_at < KILL_REQUESTS  # the kill happened mid-traffic
        answered = set(load.answered)

        victim.start()  # the same home and folder: what it left on disk is replayed
        deadline = time.monotonic() + REPLAY_DEADLINE_S
        while (missing := answered - set(logged_request_ids(database))) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not missing, f"{len(missing)} of {len(answered)} answered predictions not in the log"
        for replica in (victim, survivor):
            assert replica.stop() == 0

    logged = logged_request_ids(database)
    assert all(logged[request_id] == 1 for request_id in answered)
    assert max(logged.values()) == 1
    # Rows for requests nobody was answered: scored by the victim, the answer lost with it, then
    # retried by nginx on the survivor. At most one per request in flight at the kill.
    assert len(set(logged) - answered) <= THREADS
