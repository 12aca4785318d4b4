"""`monitoring.log_policy` through the real service and the drift job (issue 22).

A model with an `email` and a `name` column is served under each policy; rows carrying a raw
email and name never seen in training are scored one by one and in batches; then the database
file, the spool folder (journal and spool files), the drift job's reports and its Evidently
workspace are searched, byte for byte, for the raw values. Under `keep` the same search finds
them (the control: the search can fail).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tabserve.model_store import StoredModel
from tabserve.predictions.log_policy import LOG_HASH_KEY_ENV
from tests.factories import EMAIL, NAME, TRAINING_EMAIL, raw_hits
from tests.servers import bentoml_server, run_tabserve

ROWS = 30
POLICIES = {
    "keep": "keep",
    "drop": "drop",
    "hash": "hash",
    "bucket": {"action": "bucket", "width": 10},
    "truncate": {"action": "truncate", "chars": 3},
}


@pytest.fixture(params=list(POLICIES))
def policy_run(
    request: pytest.FixtureRequest, personal_model: StoredModel, tmp_path: Path, logs: Path
) -> Iterator[tuple[str, Path]]:
    action = request.param
    config = {
        "serving": {"workers": 1, "model": personal_model.tag, "task_dir": str(tmp_path / "tasks")},
        "monitoring": {
            "database_url": f"sqlite:///{tmp_path / 'log.db'}",
            "spool_dir": str(tmp_path / "spool"),
            "reports_dir": str(tmp_path / "reports"),
            "workspace": str(tmp_path / "workspace"),
            "min_samples": 10,
            "log_policy": {"email": POLICIES[action], "name": POLICIES[action]},
        },
    }
    path = tmp_path / "configuration.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {"TABSERVE_CONFIG": str(path), LOG_HASH_KEY_ENV: "test-hash-key"}
    with bentoml_server(logs, env) as url:
        record = {"income": 61.0, "email": EMAIL, "name": NAME}
        for _ in range(ROWS // 2):
            assert httpx.post(f"{url}/predict", json={"record": record}, timeout=30).status_code == 200
        batch = httpx.post(f"{url}/predict_batch", json={"records": [record] * (ROWS // 2)}, timeout=30)
        assert batch.status_code == 200, batch.text
        wait_for_rows(tmp_path / "log.db", ROWS)
    monitor = run_tabserve("monitor", "--quiet", "--last", str(ROWS), env=env, timeout=600)
    assert monitor.returncode in (0, 1), monitor.stdout + monitor.stderr
    yield action, tmp_path


def wait_for_rows(database: Path, rows: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if database.exists():
            with sqlite3.connect(database) as connection:
                try:
                    if connection.execute("SELECT count(*) FROM predictions").fetchone()[0] >= rows:
                        return
                except sqlite3.OperationalError:
                    pass
        time.sleep(0.3)
    raise AssertionError(f"fewer than {rows} rows logged in 60 s")


def hits(folder: Path, values: tuple[str, ...]) -> list[str]:
    return raw_hits(folder, values, skip="configuration.yaml")


def test_nothing_written_anywhere_holds_a_value_the_policy_changes(policy_run: tuple[str, Path]) -> None:
    action, folder = policy_run
    assert list((folder / "reports").glob("*.html")), "the drift job wrote no report"
    assert (folder / "workspace").is_dir()
    found = hits(folder, (EMAIL, NAME))
    in_reports = hits(folder / "reports", (TRAINING_EMAIL,)) + hits(folder / "workspace", (TRAINING_EMAIL,))
    if action == "keep":  # the control: the same search finds the values where they are
        assert any(item.startswith("log.db") for item in found), found
        assert in_reports, "the reports show the reference's categories under keep"
    else:
        assert found == [], found
        assert in_reports == [], in_reports
