"""The prediction log keeps every answered prediction: `kill -9` of a worker, poison rows."""

from __future__ import annotations

import contextlib
import json
import signal
import time
from collections.abc import Collection, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil
import pytest

from tabserve.model_store import StoredModel
from tabserve.predictions.logger import PredictionLogger
from tests.factories import prediction_rows, reference_records
from tests.postgres import count_rows, temporary_database
from tests.servers import bentoml_server

WORKER_SCRIPT = "_bentoml_impl.worker.service"
# A long write interval keeps answered rows in the worker's memory when it is killed.
DURABILITY_CONFIG = """
serving:
  workers: 1  # the test kills the one worker
monitoring:
  flush_interval_ms: 3000
  spool_dir: {spool}
"""


@pytest.fixture
def fresh_database() -> Iterator[str]:
    with temporary_database() as url:
        yield url


def service_workers(other_than: Collection[int] = ()) -> list[psutil.Process]:
    """BentoML worker processes of this test run, but those in `other_than` (e.g. the workers of
    servers other tests keep running for the session)."""
    return [
        child
        for child in psutil.Process().children(recursive=True)
        if any(WORKER_SCRIPT in part for part in child.cmdline()) and child.pid not in other_than
    ]


def answered_ids(url: str, records: list[dict[str, float]], requests: int) -> list[str]:
    def predict(index: int) -> str | None:
        try:
            answer = httpx.post(f"{url}/predict", json={"record": records[index % len(records)]}, timeout=10)
        except httpx.HTTPError:
            return None
        return str(answer.json()["request_id"]) if answer.status_code == 200 else None

    with ThreadPoolExecutor(8) as pool:
        return [request_id for request_id in pool.map(predict, range(requests)) if request_id]


def all_logged(database_url: str, ids: list[str], timeout_s: float) -> int:
    """How many of `ids` are in the log, waiting up to `timeout_s` for all of them."""
    quoted = ",".join(f"'{request_id}'" for request_id in ids)
    deadline = time.monotonic() + timeout_s
    while (found := count_rows(database_url, f"request_id IN ({quoted})")) < len(ids):
        if time.monotonic() > deadline:
            break
        time.sleep(0.5)
    return found


def test_answered_predictions_survive_kill_9_of_the_worker(
    default_model: StoredModel, fresh_database: str, logs: Path, tmp_path: Path
) -> None:
    config = tmp_path / "configuration.yaml"
    config.write_text(DURABILITY_CONFIG.format(spool=tmp_path / "spool"))
    env = {"TABSERVE_CONFIG": str(config), "TABSERVE_DATABASE_URL": fresh_database}
    records = reference_records(default_model)
    successors: list[psutil.Process] = []
    others = {worker.pid for worker in service_workers()}
    try:
        with bentoml_server(logs, env) as url:
            answered_ids(url, records, 5)  # the schema exists before counting
            [worker] = service_workers(others)
            ids = answered_ids(url, records, 400)
            worker.send_signal(signal.SIGKILL)
            worker.wait(10)
            assert len(ids) > 300  # a few may be refused by an overloaded batcher on a busy machine
            # BentoML starts a new worker: it adopts the dead one's journal and writes it.
            found = all_logged(fresh_database, ids, timeout_s=120)
            successors = service_workers(others)
            assert [successor.pid for successor in successors] != [worker.pid]
            assert found == len(ids)
    finally:
        _, alive = psutil.wait_procs(successors, timeout=15)
        for orphan in alive:  # seen once: a worker started after the kill outlived its server
            with contextlib.suppress(psutil.NoSuchProcess):
                orphan.kill()


def test_a_poison_row_is_quarantined_and_later_rows_reach_postgresql(
    fresh_database: str, tmp_path: Path
) -> None:
    logger = PredictionLogger(fresh_database, tmp_path / "spool", flush_interval_s=0.05)
    rows = prediction_rows("pg", 0, 100)
    rows[40]["request_id"] = "x" * 100  # the column is String(64): PostgreSQL refuses it
    logger.log(rows)
    for start in range(100, 3000, 100):
        logger.log(prediction_rows("pg", start, 100))
    assert logger.flush(timeout_s=60)
    logger.close()
    assert count_rows(fresh_database) == 2999
    assert logger.spooled_files() == []
    entries = [
        json.loads(line) for path in logger.quarantine_files() for line in path.read_text().splitlines()
    ]
    assert [entry["row"]["request_id"] for entry in entries] == ["x" * 100]
    assert "too long" in entries[0]["reason"]
