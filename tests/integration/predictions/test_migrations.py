"""Migrations on the real PostgreSQL, and what the service and the monitoring job do with an
older schema (on PostgreSQL and on an SQLite file): stop with the one command to run."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tabserve.model_store import StoredModel
from tabserve.predictions.migration import head_revision, schema_status, upgrade
from tabserve.predictions.store import make_engine
from tests.factories import reference_records
from tests.migrations import diff_names, migrate_to, missing_at, schema_diff, start_together
from tests.postgres import temporary_database
from tests.servers import BENTOML, REPO, bentoml_server, free_port, private_home

REFUSAL_TIMEOUT_S = 90
COMMAND = re.compile(r"run `(?P<command>[^`]+)`$")


@pytest.fixture
def database() -> Iterator[str]:
    with temporary_database() as url:
        yield url


def test_the_migrations_build_exactly_the_declared_tables_on_postgresql(database: str) -> None:
    engine = make_engine(database)
    for revision in ("0001", "0002", "0003", "0004"):
        migrate_to(engine, revision)
        assert sorted(diff_names(engine)) == missing_at(revision), revision
    upgrade(engine)
    assert schema_diff(engine) == [] and schema_status(engine).at_head
    engine.dispose()


def test_replicas_starting_together_on_an_empty_database_create_it_once(database: str) -> None:
    assert start_together(database) == [0, 0, 0, 0]
    engine = make_engine(database)
    assert schema_diff(engine) == []
    engine.dispose()


def _config(folder: Path, sqlite: Path | None = None) -> Path:
    path = folder / "configuration.yaml"
    lines = ["serving:", "  workers: 1", "monitoring:", f"  spool_dir: {folder / 'spool'}"]
    lines += [f"  reports_dir: {folder / 'reports'}", f"  workspace: {folder / 'workspace'}"]
    if sqlite is not None:
        lines.append(f"  sqlite_path: {sqlite}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _run_the_command_it_names(stderr: str, env: dict[str, str]) -> None:
    """The refusal's last words are the command to run: run exactly that, in a shell."""
    found = COMMAND.search(stderr.strip())
    assert found, stderr
    path = f"{Path(sys.executable).parent}:{os.environ['PATH']}"
    done = subprocess.run(
        ["bash", "-c", found["command"]],
        env={**os.environ, **env, "PATH": path},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert f"revision 0001 -> {head_revision()}" in done.stdout


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
def test_the_service_and_the_monitoring_job_stop_on_an_older_schema_with_the_command_to_run(
    dialect: str, database: str, default_model: StoredModel, tmp_path: Path, logs: Path
) -> None:
    sqlite = tmp_path / "log.db" if dialect == "sqlite" else None
    config = _config(tmp_path, sqlite)
    env = {"TABSERVE_CONFIG": str(config)}
    if sqlite is None:
        env["TABSERVE_DATABASE_URL"] = database
    engine = make_engine(database if sqlite is None else f"sqlite:///{sqlite}")
    migrate_to(engine, "0001")

    port = free_port()
    served = subprocess.run(
        [BENTOML, "serve", "service:TabularModel", "--host", "127.0.0.1", "--port", str(port)],
        cwd=REPO,
        env={**os.environ, "BENTOML_HOME": private_home(logs, port), **env},
        capture_output=True,
        text=True,
        timeout=REFUSAL_TIMEOUT_S,
        check=False,
    )
    refusal = (
        f"error: the prediction-log database is at schema revision 0001; this version needs "
        f"{head_revision()}: run `"
    )
    assert served.returncode == 2 and served.stderr.startswith(refusal), served.stderr
    assert served.stderr.count("\n") == 1  # one line, no traceback

    monitor = subprocess.run(
        [sys.executable, "-m", "tabserve", "monitor", "--quiet", "--config", str(config)],
        cwd=REPO,
        env={**os.environ, **{k: v for k, v in env.items() if k != "TABSERVE_CONFIG"}},
        capture_output=True,
        text=True,
        check=False,
    )
    assert monitor.returncode == 2 and monitor.stderr.startswith(refusal), monitor.stderr
    assert monitor.stderr.strip().endswith(f"--config {config}`")

    _run_the_command_it_names(served.stderr, env)
    assert schema_diff(engine) == []
    with bentoml_server(logs, env) as url:
        record = reference_records(default_model, 1)[0]
        assert httpx.post(f"{url}/predict", json={"record": record}, timeout=30).status_code == 200
    engine.dispose()
