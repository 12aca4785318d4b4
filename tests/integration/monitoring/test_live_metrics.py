"""Live drift and estimated quality on a real service's /metrics, from its own PostgreSQL log.

The service refreshes every second here (`monitoring.live_drift.interval_s: 1`). Traffic: the
reference records with `mean radius` moved far out, the other features as they were.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tabserve.model_store import StoredModel
from tests.factories import reference_records
from tests.integration.conftest import TEST_CONFIG
from tests.postgres import temporary_database
from tests.servers import REPO, bentoml_server, wait_for

ROWS, BATCH = 300, 20
SHIFTED, UNSHIFTED = "mean radius", "mean texture"
LIVE = {"interval_s": 1, "window_rows": ROWS, "min_rows": 100}
LARGE, STABLE = 0.25, 0.1


@pytest.fixture(scope="module")
def live_env(logs: Path) -> Iterator[dict[str, str]]:
    config = yaml.safe_load(TEST_CONFIG.format(folder=logs))
    config["monitoring"]["live_drift"] = LIVE
    path = logs / "live-drift.yaml"
    path.write_text(yaml.safe_dump(config))
    with temporary_database() as url:
        yield {"TABSERVE_CONFIG": str(path), "TABSERVE_DATABASE_URL": url}


def samples(url: str, model: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """This model's samples on /metrics, by name and labels other than `model`."""
    found = {}
    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics").text):
        for sample in family.samples:
            if sample.labels.get("model") == model:
                labels = tuple(sorted((k, v) for k, v in sample.labels.items() if k != "model"))
                found[(sample.name, labels)] = sample.value
    return found


def psi(values: dict[Any, float], feature: str) -> float | None:
    return values.get(("tabserve_feature_drift_psi", (("feature", feature), ("variant", "default"))))


def test_shifted_traffic_shows_on_metrics_between_job_runs(
    default_model: StoredModel, live_env: dict[str, str], logs: Path
) -> None:
    records = [{**r, SHIFTED: r[SHIFTED] + 15} for r in reference_records(default_model, ROWS)]
    with bentoml_server(logs, live_env) as url:
        for start in range(0, ROWS, BATCH):
            answer = httpx.post(f"{url}/predict_batch", json={"records": records[start : start + BATCH]})
            assert answer.status_code == 200

        def refreshed() -> dict[Any, float] | None:
            values = samples(url, default_model.tag)
            full = values.get(("tabserve_live_drift_rows", (("variant", "default"),))) == ROWS
            return values if full and (psi(values, SHIFTED) or 0) > LARGE else None

        values = wait_for(refreshed, 60, f"{SHIFTED} PSI above {LARGE} over {ROWS} rows on /metrics")
        assert psi(values, UNSHIFTED) is not None and psi(values, UNSHIFTED) < STABLE  # type: ignore[operator]
        accuracy = (("metric", "accuracy"), ("variant", "default"))
        assert 0 < values[("tabserve_estimated_quality", accuracy)] <= 1
        assert (
            values[("tabserve_reference_quality", accuracy)] == default_model.metadata["metrics"]["accuracy"]
        )
        assert ("tabserve_prediction_drift_psi", (("variant", "default"),)) in values

    # The drift job reports the same window's estimated quality beside the realized one.
    job = subprocess.run(
        [sys.executable, "-m", "tabserve", "monitor", "--quiet", "--last", str(ROWS)],
        cwd=REPO,
        env={**os.environ, **live_env},
        capture_output=True,
        text=True,
    )
    assert job.returncode in (0, 1), job.stdout + job.stderr
    summary = json.loads(Path(job.stdout.split("summary: ")[1].split()[0]).read_text())
    assert (
        summary["estimated_quality"]["metric"] == "accuracy" and summary["estimated_quality"]["rows"] == ROWS
    )
    assert "estimated quality: " in job.stdout and "accuracy estimated" in job.stdout, job.stdout
