"""The retraining loop end to end against the real service (`bentoml serve`, 2 workers, PostgreSQL).

1. A concept drift after deployment (in paris the odds of "yes" now fall): the labelled traffic
   the service logged trains a challenger, the paired test accepts it, the service shadows it,
   steps it through the canary and promotes it on its own; `--wait` exits 0.
2. Then the world only moves (older people, the same relation): the next loop's challenger is no
   better than the new champion, the test says so, and nothing is served (exit 1).
3. A third loop straight after, with no new labels, is refused (exit 2, one line why).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
import yaml

from tabserve.model_store import ORIGIN_LABEL, RETRAINED, StoredModel, get_model
from tests.census import CENSUS_MODEL, census_drifted
from tests.integration.conftest import ADMIN_TOKEN, TEST_CONFIG
from tests.postgres import temporary_database
from tests.servers import bentoml_server, run_tabserve

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
BATCH = 20  # records per /predict_batch (the test configuration's max_batch_records)
LOOP_TIMEOUT_S = 420
RETRAIN = {
    "min_labels": 300,
    "min_holdout_rows": 200,
    "holdout_share": 0.4,
    "cooldown_minutes": 0,
    "wait_timeout_minutes": 5,
    "decision": {"resamples": 500},
}
ROLLOUT = {  # fast steps on little traffic; the latency guard generous for a busy test machine
    "steps": [50, 100],
    "min_requests": 20,
    "min_seconds": 1,
    "check_interval_s": 0.5,
    "max_p99_ms": 5000,
}


def loop_config(folder: Path) -> Path:
    config = yaml.safe_load(TEST_CONFIG.format(folder=folder))
    config["serving"]["model"] = f"{CENSUS_MODEL}:latest"
    config["deployment"] = {"rollout": ROLLOUT}
    config["retrain"] = RETRAIN
    path = folder / "retrain.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def loop_service(
    census_model: StoredModel, tmp_path_factory: pytest.TempPathFactory, logs: Path
) -> Iterator[tuple[str, dict[str, str]]]:
    folder = tmp_path_factory.mktemp("retrain")
    with temporary_database() as database:
        env = {
            "TABSERVE_CONFIG": str(loop_config(folder)),
            "TABSERVE_DATABASE_URL": database,
            "TABSERVE_ADMIN_TOKEN": ADMIN_TOKEN,
            "TABSERVE_WORKERS": "2",
        }
        with bentoml_server(logs, env) as url:
            yield url, {**env, "TABSERVE_URL": url}


def records_of(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {str(key): value for key, value in row.items()}
        for row in frame.drop(columns="label").to_dict("records")
    ]


def score_and_label(url: str, frame: pd.DataFrame) -> None:
    """The world as the service sees it: each batch scored, then its true labels sent back."""
    with httpx.Client(base_url=url, timeout=60) as client:
        for start in range(0, len(frame), BATCH):
            part = frame.iloc[start : start + BATCH]
            answer = client.post("/predict_batch", json={"records": records_of(part)})
            assert answer.status_code == 200, answer.text
            feedback = [
                {"request_id": result["request_id"], "label": label}
                for result, label in zip(answer.json()["predictions"], part["label"], strict=True)
            ]
            stored = client.post("/feedback_batch", json={"items": feedback})
            assert stored.status_code == 200, stored.text


def keep_traffic_flowing(url: str, frame: pd.DataFrame, stop: threading.Event) -> None:
    """Live traffic for the rollout's steps while the loop waits (bounded: LOOP_TIMEOUT_S)."""
    records = records_of(frame)
    deadline = time.monotonic() + LOOP_TIMEOUT_S
    with httpx.Client(base_url=url, timeout=30) as client:
        index = 0
        while not stop.is_set() and time.monotonic() < deadline:
            client.post("/predict", json={"record": records[index % len(records)]})
            index += 1
            time.sleep(0.02)


def state(url: str) -> dict[str, Any]:
    return dict(httpx.get(f"{url}/admin/state", headers=AUTH, timeout=10).json())


def test_a_concept_drift_is_retrained_promoted_and_a_mere_shift_is_not(
    loop_service: tuple[str, dict[str, str]], census_model: StoredModel, logs: Path
) -> None:
    url, env = loop_service
    score_and_label(url, census_drifted(1000, seed=31))

    stop = threading.Event()
    traffic = threading.Thread(
        target=keep_traffic_flowing, args=(url, census_drifted(500, seed=32), stop), daemon=True
    )
    traffic.start()
    try:
        first = run_tabserve("retrain", "--wait", env=env, timeout=LOOP_TIMEOUT_S)
    finally:
        stop.set()
        traffic.join(timeout=30)
    assert first.returncode == 0, first.stdout + first.stderr
    assert first.stdout.startswith("ACCEPT"), first.stdout
    assert "McNemar" in first.stdout and "log loss" in first.stdout and "ROC AUC" in first.stdout
    assert "rollout: promoted" in first.stdout

    promoted = state(url)["state"]["policy"]
    variant = promoted["active"]
    challenger = get_model(state(url)["variants"][variant])
    assert challenger.tag != census_model.tag and challenger.labels[ORIGIN_LABEL] == RETRAINED
    lineage = challenger.metadata["lineage"]
    assert lineage["parent"] == census_model.tag and lineage["rows"]["holdout_rows"] == 400
    assert get_model(f"{CENSUS_MODEL}:latest").tag == census_model.tag  # never `latest`: state serves it
    events = run_tabserve("deploy", "events", "--limit", "50", env=env)
    evaluation = lineage["evaluation_id"]
    steps = [line for line in events.stdout.splitlines() if evaluation in line]
    assert {"candidate", "advance", "promote"} <= {line.split()[2] for line in steps}, events.stdout
    answered = httpx.post(f"{url}/predict", json={"record": records_of(census_drifted(1, seed=5))[0]}).json()
    assert answered["model"] == challenger.tag

    # The world moves (older people) but the relation the new champion learnt holds.
    shifted = census_drifted(1000, seed=41, x0_mean=1.0)
    score_and_label(url, shifted)
    served = state(url)["variants"]
    second = run_tabserve("retrain", env=env, timeout=LOOP_TIMEOUT_S)
    assert second.returncode == 1, second.stdout + second.stderr
    assert second.stdout.startswith("REJECT"), second.stdout
    after = state(url)
    assert after["state"]["policy"]["active"] == variant and after["variants"] == served  # nothing new served

    third = run_tabserve("retrain", env=env, timeout=LOOP_TIMEOUT_S)
    assert third.returncode == 2 and "no new labels" in third.stderr, third.stdout + third.stderr
    assert len(third.stderr.strip().splitlines()) <= 2

    history = run_tabserve("retrain", "--history", env=env)
    outputs = (first, second, third, history)
    (logs / "retrain-loop.txt").write_text("\n\n".join(done.stdout + done.stderr for done in outputs))
    rows = history.stdout.splitlines()[1:]
    assert [row.split()[3] for row in rows[:2]] == ["rejected", "accepted"], history.stdout
    assert "promoted" in rows[1]
