"""Workers and native threads in a running `bentoml serve`: the limit each worker applies, and a
prediction log that stays complete when several workers write it (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import yaml

from tabserve.cpu_budget import available_cores
from tabserve.model_store import StoredModel
from tabserve.predictions.store import make_engine
from tests.factories import reference_records
from tests.postgres import temporary_database
from tests.servers import bentoml_server

PREDICTIONS = 300
CLIENTS = 16
MAX_INFO_ROUNDS = 10  # of CLIENTS concurrent calls: enough for both workers to answer at least once

pytestmark = pytest.mark.skipif(available_cores() < 2, reason="needs 2 usable cores")


def _config(folder: Path, serving: dict[str, Any], sqlite_path: Path | None = None) -> str:
    path = folder / f"workers-{len(list(folder.glob('workers-*.yaml')))}.yaml"
    monitoring: dict[str, Any] = {"spool_dir": str(folder / "spool"), "flush_interval_ms": 20}
    if sqlite_path is not None:
        monitoring["sqlite_path"] = str(sqlite_path)
    path.write_text(yaml.safe_dump({"serving": serving, "monitoring": monitoring}))
    return str(path)


def _runtimes(url: str) -> dict[int, dict[str, Any]]:
    """GET /model/ until both workers have answered: pid -> that worker's runtime (after scoring).

    Concurrently, a new connection each: the workers accept from one shared socket, and one
    after another the same idle worker can take every connection (CI saw 60 sequential calls
    answered by one worker).
    """
    seen: dict[int, dict[str, Any]] = {}

    def one(_: int) -> dict[str, Any]:
        return dict(httpx.get(f"{url}/model/", timeout=10).json()["runtime"])

    with ThreadPoolExecutor(CLIENTS) as pool:
        for _ in range(MAX_INFO_ROUNDS):
            seen |= {runtime["pid"]: runtime for runtime in pool.map(one, range(CLIENTS))}
            if len(seen) == 2:
                break
    return seen


def _predict_concurrently(url: str, records: list[dict[str, Any]]) -> list[str]:
    with httpx.Client(timeout=60) as client, ThreadPoolExecutor(CLIENTS) as pool:

        def one(index: int) -> str:
            # A connection per request: a kept-alive one stays with the worker that accepted it.
            answer = client.post(
                f"{url}/predict",
                json={"record": records[index % len(records)]},
                headers={"Connection": "close"},
            )
            answer.raise_for_status()
            return str(answer.json()["request_id"])

        return list(pool.map(one, range(PREDICTIONS)))


def _logged_ids(url: str) -> list[str]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return [row[0] for row in connection.execute(sa.text("SELECT request_id FROM predictions"))]
    finally:
        engine.dispose()


@pytest.fixture
def pg_database() -> Iterator[str]:
    with temporary_database() as url:
        yield url


def test_one_worker_gets_every_usable_core(default_model: StoredModel, logs: Path) -> None:
    cores = available_cores()
    env = {"TABSERVE_CONFIG": _config(logs, {"workers": 1}, logs / "one.db")}
    with bentoml_server(logs, env) as url:
        _predict_concurrently(url, reference_records(default_model, 20))
        runtime = httpx.get(f"{url}/model/").json()["runtime"]
    assert runtime["workers"] == 1 and runtime["usable_cores"] == cores
    assert runtime["threads_per_worker"] == cores
    assert runtime["native_threads"]["openmp"] == cores  # what the threads that scored used


def test_two_workers_take_one_thread_each_and_log_every_prediction_once_in_postgres(
    default_model: StoredModel, logs: Path, pg_database: str
) -> None:
    env = {"TABSERVE_CONFIG": _config(logs, {"workers": 2}), "TABSERVE_DATABASE_URL": pg_database}
    records = reference_records(default_model, 50)
    with bentoml_server(logs, env) as url:
        answered = _predict_concurrently(url, records)
        runtimes = _runtimes(url)
    # bentoml_server stopped the service with SIGTERM: each worker drained its log queue.
    assert len(runtimes) == 2, f"expected two workers to answer, saw {list(runtimes)}"
    for runtime in runtimes.values():
        assert runtime["workers"] == 2 and runtime["threads_per_worker"] == available_cores() // 2
        assert runtime["native_threads"].get("openmp") == runtime["threads_per_worker"], runtimes
    logged = _logged_ids(pg_database)
    assert len(answered) == len(set(answered)) == PREDICTIONS
    assert sorted(logged) == sorted(answered)  # every answer logged, each request id once


def test_the_workers_variable_wins_and_the_thread_setting_overrides_in_sqlite(
    default_model: StoredModel, logs: Path
) -> None:
    database = logs / "two-workers.db"
    env = {
        "TABSERVE_CONFIG": _config(logs, {"workers": 1, "threads_per_worker": 3}, database),
        "TABSERVE_WORKERS": "2",
    }
    records = reference_records(default_model, 50)
    with bentoml_server(logs, env) as url:
        answered = _predict_concurrently(url, records)
        runtimes = _runtimes(url)
    assert len(runtimes) == 2, f"expected two workers to answer, saw {list(runtimes)}"
    for runtime in runtimes.values():
        assert runtime["workers"] == 2 and runtime["threads_per_worker"] == 3
        assert runtime["native_threads"]["openmp"] == 3
    logged = _logged_ids(f"sqlite:///{database}")
    assert len(answered) == len(set(answered)) == PREDICTIONS
    assert sorted(logged) == sorted(answered)
