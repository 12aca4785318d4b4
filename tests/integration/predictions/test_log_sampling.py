"""`monitoring.log_sample_rate` through the real service: the logged share within binomial bounds,
exactly the requests the sample names, and feedback for a request left out answered with why."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import httpx
import yaml

from tabserve.model_store import StoredModel
from tabserve.predictions.log_policy import sampled
from tests.factories import reference_records
from tests.servers import bentoml_server

RATE, REQUESTS = 0.3, 400


def test_a_share_of_requests_is_logged_and_feedback_on_the_others_says_why(
    default_model: StoredModel, tmp_path: Path, logs: Path
) -> None:
    database = tmp_path / "log.db"
    config = {
        "serving": {"workers": 1, "task_dir": str(tmp_path / "tasks")},
        "monitoring": {
            "database_url": f"sqlite:///{database}",
            "spool_dir": str(tmp_path / "spool"),
            "log_sample_rate": RATE,
        },
    }
    (tmp_path / "configuration.yaml").write_text(yaml.safe_dump(config))
    records = reference_records(default_model, 20)
    with bentoml_server(logs, {"TABSERVE_CONFIG": str(tmp_path / "configuration.yaml")}) as url:
        ids: list[str] = []
        for _ in range(REQUESTS // len(records)):
            answer = httpx.post(f"{url}/predict_batch", json={"records": records}, timeout=30)
            assert answer.status_code == 200, answer.text
            ids += [item["request_id"] for item in answer.json()["predictions"]]
        kept = [request_id for request_id in ids if sampled(request_id, RATE)]
        logged = wait_for_rows(database, len(kept))
        assert logged == set(kept)  # exactly the sampled requests, none of the others
        sd = (REQUESTS * RATE * (1 - RATE)) ** 0.5
        assert abs(len(kept) - REQUESTS * RATE) <= 4.5 * sd, len(kept)
        left_out = next(request_id for request_id in ids if request_id not in logged)
        refused = httpx.post(f"{url}/feedback", json={"request_id": left_out, "label": "benign"}, timeout=30)
        assert refused.status_code == 404 and "log_sample_rate" in refused.json()["error"], refused.text
        stored = httpx.post(f"{url}/feedback", json={"request_id": kept[0], "label": "benign"}, timeout=30)
        assert stored.status_code == 200, stored.text


def wait_for_rows(database: Path, rows: int) -> set[str]:
    deadline = time.monotonic() + 60
    found: set[str] = set()
    while time.monotonic() < deadline:
        if database.exists():
            try:
                with sqlite3.connect(database) as connection:
                    found = {row[0] for row in connection.execute("SELECT request_id FROM predictions")}
            except sqlite3.OperationalError:
                found = set()
            if len(found) >= rows:
                time.sleep(1)  # and nothing more arrives
                with sqlite3.connect(database) as connection:
                    return {row[0] for row in connection.execute("SELECT request_id FROM predictions")}
        time.sleep(0.3)
    raise AssertionError(f"{len(found)} of {rows} rows logged in 60 s")
