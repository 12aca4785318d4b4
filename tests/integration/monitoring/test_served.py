"""Monitor what is served (issue 15): after a switch the drift job and file scoring follow the
deployment state; a canary's two variants are monitored and named apart. Real service, PostgreSQL."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from tabserve.model_store import StoredModel
from tests.factories import reference_records
from tests.integration.conftest import ADMIN_TOKEN, deployment_config
from tests.postgres import temporary_database
from tests.servers import bentoml_server, run_tabserve

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
ROWS = 120  # above the test configuration's min_samples (100)
BATCH = 20  # the test configuration's max_batch_records


def tabserve(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_tabserve(*args, env=env)


def monitor(env: dict[str, str]) -> tuple[int, list[dict[str, Any]], str]:
    """Exit code, every variant's JSON summary, and the output."""
    process = tabserve(env, "monitor", "--quiet", "--last", str(ROWS))
    output = process.stdout + process.stderr
    paths = [
        line.split("summary: ")[1].split()[0] for line in process.stdout.splitlines() if "summary: " in line
    ]
    return process.returncode, [json.loads(Path(path).read_text()) for path in paths], output


def send(url: str, records: list[dict[str, Any]]) -> set[str]:
    variants = set()
    for start in range(0, len(records), BATCH):
        response = httpx.post(
            f"{url}/predict_batch", json={"records": records[start : start + BATCH]}, timeout=30
        )
        response.raise_for_status()
        variants |= {item["variant"] for item in response.json()["predictions"]}
    return variants


@pytest.fixture
def served(
    logs: Path, default_model: StoredModel, candidate_model: StoredModel
) -> Iterator[tuple[str, dict[str, str]]]:
    deployment = {
        "variants": {"blue": default_model.tag, "green": candidate_model.tag},
        "policy": {"strategy": "blue-green", "active": "blue"},
    }
    with temporary_database() as database:
        env = {
            "TABSERVE_CONFIG": str(deployment_config(logs, deployment)),
            "TABSERVE_DATABASE_URL": database,
            "TABSERVE_ADMIN_TOKEN": ADMIN_TOKEN,
        }
        with bentoml_server(logs, env) as url:
            yield url, env


def test_the_job_and_file_scoring_follow_the_served_model(
    served: tuple[str, dict[str, str]],
    default_model: StoredModel,
    candidate_model: StoredModel,
    tmp_path: Path,
) -> None:
    url, env = served
    records = reference_records(default_model, ROWS)
    assert send(url, records) == {"blue"}
    code, summaries, output = monitor(env)
    assert code == 0 and [(s["model"], s["variant"]) for s in summaries] == [(default_model.tag, "blue")], (
        output
    )

    switched = httpx.post(f"{url}/admin/switch", json={"to": "green", "reason": "release"}, headers=AUTH)
    assert switched.status_code == 200, switched.text
    assert send(url, records) == {"green"}
    code, summaries, output = monitor(env)
    assert code == 0, output
    assert [(s["model"], s["variant"], s["window_rows"]) for s in summaries] == [
        (candidate_model.tag, "green", ROWS)
    ], output
    assert f"model {candidate_model.tag} (variant green)" in output

    source = tmp_path / "in.csv"
    pd.DataFrame(records[:5]).to_csv(source, index=False)
    scored = tabserve(env, "score", "--quiet", str(source), str(tmp_path / "out.csv"))
    assert scored.returncode == 0 and f"(model {candidate_model.tag})" in scored.stdout, scored.stderr
    pinned = tabserve(
        env, "score", "--quiet", "--model", default_model.tag, str(source), str(tmp_path / "o.csv")
    )
    assert f"(model {default_model.tag})" in pinned.stdout, pinned.stderr

    canary = httpx.post(f"{url}/admin/canary", json={"percent": 50, "reason": "try"}, headers=AUTH)
    assert canary.status_code == 200, canary.text
    code, summaries, output = monitor(env)  # the champion (blue after the switch's policy) first
    assert [(s["model"], s["variant"]) for s in summaries] == [
        (default_model.tag, "blue"),
        (candidate_model.tag, "green"),
    ], output
