"""Monitoring end to end: service -> PostgreSQL log -> feedback -> `tabserve monitor` -> /metrics."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tabserve.model_store import StoredModel
from tests.factories import reference_records
from tests.postgres import count_rows
from tests.servers import REPO, bentoml_server


def monitor(env: dict[str, str], *args: str) -> tuple[int, dict[str, Any] | None, str]:
    process = subprocess.run(
        [sys.executable, "-m", "tabserve", "monitor", "--quiet", *args],
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
    )
    summary_line = next((line for line in process.stdout.splitlines() if "summary: " in line), None)
    summary = json.loads(Path(summary_line.split("summary: ")[1]).read_text()) if summary_line else None
    return process.returncode, summary, process.stdout + process.stderr


def test_no_logged_row_is_lost_across_a_graceful_restart(
    default_model: StoredModel, service_env: dict[str, str], pg_url: str, logs: Path
) -> None:
    records = reference_records(default_model)[:40]
    ids: list[str] = []
    with bentoml_server(logs, service_env) as url:
        for record in records[:20]:
            ids.append(httpx.post(f"{url}/predict", json={"record": record}).json()["request_id"])
        batch = httpx.post(f"{url}/predict_batch", json={"records": records[20:]}).json()
        ids += [item["request_id"] for item in batch["predictions"]]
    # the server has been stopped with SIGTERM: every answered prediction is in the database
    quoted = ",".join(f"'{request_id}'" for request_id in ids)
    assert count_rows(pg_url, f"request_id IN ({quoted})") == 40


def test_feedback_joins_the_right_predictions(
    service_url: str, default_model: StoredModel, pg_url: str
) -> None:
    records = reference_records(default_model)[:6]
    predictions = httpx.post(f"{service_url}/predict_batch", json={"records": records}).json()["predictions"]
    labels = ["benign", "malignant", "benign", "malignant", "benign", "malignant"]
    first = httpx.post(
        f"{service_url}/feedback", json={"request_id": predictions[0]["request_id"], "label": labels[0]}
    )
    assert first.status_code == 200 and first.json() == {"stored": 1}
    again = httpx.post(
        f"{service_url}/feedback", json={"request_id": predictions[0]["request_id"], "label": labels[0]}
    )
    assert again.status_code == 200  # idempotent
    items = [
        {"request_id": p["request_id"], "label": label}
        for p, label in zip(predictions[1:], labels[1:], strict=True)
    ]
    assert httpx.post(f"{service_url}/feedback_batch", json={"items": items}).json() == {"stored": 5}
    for prediction, label in zip(predictions, labels, strict=True):
        where = f"request_id = '{prediction['request_id']}' AND label #>> '{{}}' = '{label}'"
        assert count_rows(pg_url, where) == 1


def test_feedback_errors(service_url: str, default_model: StoredModel) -> None:
    request_id = httpx.post(
        f"{service_url}/predict", json={"record": reference_records(default_model)[0]}
    ).json()["request_id"]
    unknown = httpx.post(f"{service_url}/feedback", json={"request_id": "nope", "label": "benign"})
    assert (
        unknown.status_code == 404 and "no logged prediction with request_id nope" in unknown.json()["error"]
    )
    wrong = httpx.post(f"{service_url}/feedback", json={"request_id": request_id, "label": "unicorn"})
    assert wrong.status_code == 400 and "not one of the model's classes" in wrong.json()["error"]
    missing = httpx.post(f"{service_url}/feedback", json={"request_id": request_id})
    assert missing.status_code == 400 and missing.json()["detail"][0]["loc"] == ["label"]


def metric_values(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(f"{url}/metrics").text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)  # raises on invalid exposition format
        for sample in family.samples
    }


def wait_for_metric(url: str, name: str, model: str) -> float:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for (sample, labels), value in metric_values(url).items():
            if sample == name and ("model", model) in labels:
                return value
        time.sleep(0.5)
    raise AssertionError(f"{name} for {model} never appeared on /metrics")


@pytest.mark.parametrize("phase", ["no-drift", "drift"])
def test_monitor_verdicts_exit_codes_and_metrics(
    service_url: str, default_model: StoredModel, service_env: dict[str, str], phase: str
) -> None:
    records = reference_records(default_model)
    if phase == "drift":
        records = [{key: value * 1.6 for key, value in r.items()} for r in records]  # every feature moves
    httpx.post(f"{service_url}/predict_batch", json={"records": records[:20]})
    for start in range(20, len(records), 20):
        assert (
            httpx.post(
                f"{service_url}/predict_batch", json={"records": records[start : start + 20]}
            ).status_code
            == 200
        )
    code, summary, output = monitor(service_env, "--last", str(len(records)))
    assert summary is not None, output
    if phase == "no-drift":
        assert code == 0 and summary["drifted_features"] == [], output
    else:
        assert code == 1 and summary["dataset_drift"] and "mean radius" in summary["drifted_features"], output
        assert "DRIFT" in output
    assert summary["sampled_rows"] == len(records) and summary["reference_rows"] == len(records)
    assert Path(summary_path := output.split("report: ")[1].split()[0]).exists(), summary_path
    share = wait_for_metric(service_url, "tabserve_drift_share", default_model.tag)
    if phase == "drift":
        deadline = time.monotonic() + 10
        while share == 0 and time.monotonic() < deadline:
            time.sleep(0.5)
            share = wait_for_metric(service_url, "tabserve_drift_share", default_model.tag)
        assert share > 0
    values = metric_values(service_url)
    assert any(name == "tabserve_predictions_total" for name, _ in values)
    assert any(name == "tabserve_feature_drift_score" for name, _ in values)


def test_too_small_a_window_says_so(
    service_env: dict[str, str], default_model: StoredModel, service_url: str
) -> None:
    code, summary, output = monitor(service_env, "--last", "10")
    assert code == 0 and summary is not None and summary["verdict"] == "not_enough_data"
    assert "NOT ENOUGH DATA" in output


def test_unreachable_database_is_exit_code_2(default_model: StoredModel, test_config: Path) -> None:
    env = {
        "TABSERVE_CONFIG": str(test_config),
        "TABSERVE_DATABASE_URL": "postgresql+psycopg://x@127.0.0.1:1/none",
    }
    code, _, output = monitor(env)
    assert code == 2 and "database unreachable" in output
