"""The dataset matrix end to end (issue 11): each served case trains with the CLI, is served by
`bentoml serve`, scores raw CSV text and typed records alike, takes feedback and is monitored.

One server per case (pytest groups the tests by the module-scoped case fixture). The prediction
log is a temporary PostgreSQL database for some cases and the default kind, an SQLite file, for
the others (each database stores JSON its own way). Cases and expectations: tests/datasets_matrix.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tabserve.model_store import StoredModel, get_model
from tests.datasets_matrix import MAX_LISTED_VALUES, MISSING_MARKERS, SERVED, Case, csv_rows, raw_records
from tests.postgres import temporary_database
from tests.servers import REPO, bentoml_server

CONFIG = """
monitoring:
  min_samples: {min_samples}
  min_labels: {min_labels}
  flush_interval_ms: 50
  reports_dir: {folder}/reports
  workspace: {folder}/workspace
  spool_dir: {folder}/spool
serving:
  task_dir: {folder}/tasks
"""
DATABASE_ENV = "TABSERVE_DATABASE_URL"
MIN_SAMPLES = 100
MIN_LABELS = 50
MONITORED_ROWS = 120  # logged and labelled before the drift job runs: above both minimums
COMPARED_ROWS = 6  # rows sent both as raw text and typed (plus every row with a missing marker, up to this)
BATCH_ROWS = 12
LOG_WAIT_S = 30
# The job ran and judged: 0 all clear, 1 drift/degradation. 2 (an error) or a traceback fails.
MONITOR_VERDICT_CODES = (0, 1)
MIN_ACCURACY = 0.7  # on rows the model was trained or evaluated on, with an easy signal
# Cases whose prediction log is an SQLite file (the default); the others log to PostgreSQL.
SQLITE_CASES = {
    "served_bool",
    "served_float_coded",
    "served_messy_text",
    "served_multiclass",
    "served_regression",
}


@dataclass(frozen=True)
class Served:
    case: Case
    data: Path
    model: StoredModel
    url: str
    env: dict[str, str]  # TABSERVE_CONFIG and TABSERVE_DATABASE_URL, for the server and the drift job

    @property
    def raw(self) -> list[dict[str, str]]:
        return raw_records(self.data, self.case.features)

    @property
    def typed(self) -> list[dict[str, Any]]:
        return self.case.typed_records()


@pytest.fixture(scope="module")
def matrix_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    folder = tmp_path_factory.mktemp("matrix")
    config = folder / "configuration.yaml"
    config.write_text(CONFIG.format(folder=folder, min_samples=MIN_SAMPLES, min_labels=MIN_LABELS))
    with temporary_database() as url:
        yield {"TABSERVE_CONFIG": str(config), DATABASE_ENV: url}


@pytest.fixture(scope="module", params=list(SERVED.values()), ids=list(SERVED))
def trained(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Case, Path]:
    """The case written as CSV and trained by the real CLI (`tabserve train`) in a subprocess."""
    case: Case = request.param
    data = case.write_csv(tmp_path_factory.mktemp(case.name))
    process = subprocess.run(
        [
            sys.executable,
            "-m",
            "tabserve",
            "train",
            "--data",
            str(data),
            "--target",
            case.target,
            "--name",
            case.name,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert process.returncode == 0, f"training failed ({process.returncode}):\n{process.stderr[-3000:]}"
    return case, data


@pytest.fixture(scope="module")
def served(trained: tuple[Case, Path], matrix_env: dict[str, str], logs: Path) -> Iterator[Served]:
    case, data = trained
    model = get_model(f"{case.name}:latest")
    env = dict(matrix_env)
    if case.name in SQLITE_CASES:
        env[DATABASE_ENV] = f"sqlite:///{data.parent / 'predictions.db'}"
    with bentoml_server(logs, {**env, "TABSERVE_MODEL": model.tag}) as url:
        yield Served(case, data, model, url, env)


def post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(url, json=body, timeout=60)
    assert response.status_code == 200, f"{url} -> {response.status_code}: {response.text[:2000]}"
    return dict(response.json())


def logged(served: Served, request_ids: list[str], labelled: bool = False) -> dict[str, dict[str, Any]]:
    """The prediction-log rows of these requests, once the background writer has written them all."""
    condition = " AND label IS NOT NULL" if labelled else ""
    deadline = time.monotonic() + LOG_WAIT_S
    while True:
        rows = query_log(served.env[DATABASE_ENV], request_ids, condition)
        if len(rows) == len(request_ids) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert len(rows) == len(request_ids), f"{len(rows)} of {len(request_ids)} rows logged{condition}"
    return {row[0]: {"features": row[1], "prediction": row[2], "label": row[3]} for row in rows}


def query_log(url: str, request_ids: list[str], condition: str) -> list[tuple[Any, ...]]:
    """(request_id, features, prediction, label) rows, read with the database's own driver."""
    columns = "request_id, features, prediction, label"
    if url.startswith("sqlite"):
        marks = ",".join("?" * len(request_ids))
        with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as connection:
            found = connection.execute(
                f"SELECT {columns} FROM predictions WHERE request_id IN ({marks}){condition}", request_ids
            ).fetchall()
        # JSON is stored as text; SQLite may have turned a number's text into a number
        return [(row[0], *(json.loads(v) if isinstance(v, str) else v for v in row[1:])) for row in found]
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as connection:
        return connection.execute(
            f"SELECT {columns} FROM predictions WHERE request_id = ANY(%s){condition}", (request_ids,)
        ).fetchall()


def compared_rows(served: Served) -> list[int]:
    """The first rows, and rows holding a missing marker: the ones where raw text and typed differ most."""
    rows = served.raw
    markers = [i for i, row in enumerate(rows) if any(v.strip() in MISSING_MARKERS for v in row.values())]
    return list(range(COMPARED_ROWS)) + markers[:COMPARED_ROWS]


def assert_typed_answer(case: Case, answer: dict[str, Any]) -> None:
    prediction = answer["prediction"]
    assert type(prediction) is case.label_type, f"prediction {prediction!r} is not a {case.label_type}"
    if case.classes is not None:
        assert prediction in case.classes
        assert set(answer["probabilities"]) == {str(label) for label in case.classes}
        assert sum(answer["probabilities"].values()) == pytest.approx(1.0)


def test_training_metadata(served: Served) -> None:
    case, meta = served.case, served.model.metadata
    assert meta["task"] == case.task
    if case.classes is not None:
        assert meta["classes"] == case.classes
        assert [type(label) for label in meta["classes"]] == [case.label_type] * len(case.classes)
    info = httpx.get(f"{served.url}/model/").json()  # the served view of the same metadata
    assert info["task"] == case.task and info.get("classes") == case.classes
    assert {spec["name"]: spec["kind"] for spec in info["feature_schema"]} == case.kinds
    dropped = info.get("dropped_columns", {})
    assert set(dropped) == set(case.dropped)
    for column, reason in case.dropped.items():
        assert dropped[column].startswith(reason), (column, dropped[column])


def test_raw_csv_text_and_typed_records_score_and_log_the_same(served: Served) -> None:
    raw, typed, case = served.raw, served.typed, served.case
    pairs: list[tuple[str, str]] = []
    for index in compared_rows(served):
        assert all(isinstance(value, str) for value in raw[index].values())
        from_text = post(f"{served.url}/predict", {"record": raw[index]})
        from_typed = post(f"{served.url}/predict", {"record": typed[index]})
        reordered = post(f"{served.url}/predict", {"record": dict(reversed(typed[index].items()))})
        for answer in (from_text, from_typed, reordered):
            assert_typed_answer(case, answer)
            assert answer["prediction"] == from_typed["prediction"]
            if case.classes is not None:
                assert answer["probabilities"] == pytest.approx(from_typed["probabilities"], abs=1e-12)
        pairs.append((from_text["request_id"], from_typed["request_id"]))
    rows = logged(served, [request_id for pair in pairs for request_id in pair])
    for text_id, typed_id in pairs:
        assert rows[text_id]["features"] == rows[typed_id]["features"]  # the same cleaned features
        assert type(rows[text_id]["prediction"]) is case.label_type


def test_a_whole_csv_row_as_written_scores_like_the_typed_record(served: Served) -> None:
    """Headers with their stray spaces and the columns training dropped: the row as a client reads it."""
    whole = [
        {k: v for k, v in row.items() if k.strip() != served.case.target} for row in csv_rows(served.data)
    ]
    from_text = post(f"{served.url}/predict", {"record": whole[1]})
    from_typed = post(f"{served.url}/predict", {"record": served.typed[1]})
    assert from_text["prediction"] == from_typed["prediction"]
    assert from_text.get("probabilities") == from_typed.get("probabilities")


def test_predict_batch_of_raw_text_and_typed_records(served: Served) -> None:
    raw, typed = served.raw[:BATCH_ROWS], served.typed[:BATCH_ROWS]
    from_text = post(f"{served.url}/predict_batch", {"records": raw})["predictions"]
    from_typed = post(f"{served.url}/predict_batch", {"records": typed})["predictions"]
    assert len(from_text) == len(from_typed) == BATCH_ROWS
    single = post(f"{served.url}/predict", {"record": typed[0]})
    for text_answer, typed_answer in zip(from_text, from_typed, strict=True):
        assert_typed_answer(served.case, text_answer)
        assert text_answer["prediction"] == typed_answer["prediction"]
        if served.case.classes is not None:
            assert text_answer["probabilities"] == pytest.approx(typed_answer["probabilities"], abs=1e-12)
    assert single["prediction"] == from_typed[0]["prediction"]


def feedback_labels(case: Case, label: Any) -> list[Any]:
    """The label in its JSON type, then as text (and `true`/`false` as JSON writes them)."""
    texts = [str(label), json.dumps(label)] if isinstance(label, bool) else [str(label)]
    return [label, *texts]


def test_feedback_takes_the_label_in_its_type_or_as_text(served: Served) -> None:
    case = served.case
    label = case.labels()[0]
    for sent in feedback_labels(case, label):
        request_id = post(f"{served.url}/predict", {"record": served.typed[0]})["request_id"]
        response = httpx.post(f"{served.url}/feedback", json={"request_id": request_id, "label": sent})
        assert response.status_code == 200, f"label {sent!r}: {response.status_code} {response.text}"
        stored = logged(served, [request_id], labelled=True)[request_id]["label"]
        assert stored == label and type(stored) is type(label if case.classes else float(label)), stored


def test_api_docs_stay_short_and_their_example_scores(served: Served) -> None:
    docs = httpx.get(f"{served.url}/docs.json").json()
    record = docs["components"]["schemas"]["Record"]
    raw_values = {column: set(served.case.column(column).raw) for column in served.case.features}
    for name, prop in record["properties"].items():
        text = json.dumps(prop)
        listed = [value for value in raw_values.get(name, ()) if f'"{value}"' in text]
        assert len(listed) <= MAX_LISTED_VALUES, f"{name}: the docs list {len(listed)} values"
    post(f"{served.url}/predict", {"record": record["example"]})


def test_drift_job_runs_on_the_logged_and_labelled_rows(served: Served) -> None:
    case = served.case
    raw = served.raw[:MONITORED_ROWS]
    answers = post(f"{served.url}/predict_batch", {"records": raw})["predictions"]
    items = [
        {"request_id": answer["request_id"], "label": label}
        for answer, label in zip(answers, case.labels()[:MONITORED_ROWS], strict=True)
    ]
    assert post(f"{served.url}/feedback_batch", {"items": items}) == {"stored": MONITORED_ROWS}
    logged(served, [item["request_id"] for item in items], labelled=True)
    process = subprocess.run(
        [sys.executable, "-m", "tabserve", "monitor", "--quiet", "--model", served.model.tag],
        cwd=REPO,
        env={**os.environ, **served.env},
        capture_output=True,
        text=True,
    )
    output = process.stdout + process.stderr
    assert process.returncode in MONITOR_VERDICT_CODES and "Traceback" not in output, output[-3000:]
    summary_line = next(line for line in process.stdout.splitlines() if "summary: " in line)
    summary = json.loads(Path(summary_line.split("summary: ")[1]).read_text())
    assert summary["window_rows"] >= MONITORED_ROWS
    quality = summary["quality"]
    assert quality["labelled"] >= MONITORED_ROWS, quality
    if case.classes is not None:  # a label type lost on the way makes every label "wrong"
        assert quality["metric"] == "accuracy" and quality["current"] >= MIN_ACCURACY, quality
    else:
        assert quality["metric"] == "mae" and quality["current"] <= 2 * quality["reference"], quality
    # Dates and times are not compared (their values move forward by nature): every other feature is.
    watched = {name for name, kind in case.kinds.items() if kind != "datetime"}
    assert set(summary["features"]) == watched, "every numeric and categorical feature is watched for drift"
