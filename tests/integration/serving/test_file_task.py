"""`/score_file` as a BentoML task on the real service, over plain HTTP (multipart upload)."""

from __future__ import annotations

import io
import time
from typing import Any

import httpx
import pandas as pd

from tabserve.model_store import StoredModel
from tests.postgres import count_rows


def submit(url: str, frame: pd.DataFrame, strict: bool) -> str:
    body = frame.to_csv(index=False).encode()
    response = httpx.post(
        f"{url}/score_file/submit",
        files={"file": ("input.csv", body, "text/csv")},
        data={"strict": str(strict).lower()},
    )
    assert response.status_code == 200, response.text
    return str(response.json()["task_id"])


def wait(url: str, task_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = httpx.get(f"{url}/score_file/status", params={"task_id": task_id}).json()
        if status["status"] != "in_progress":
            return dict(status)
        time.sleep(0.2)
    raise AssertionError("task did not finish")


def input_frame(model: StoredModel) -> pd.DataFrame:
    frame = model.load_reference()[model.schema.names].copy()
    frame.insert(0, "case", range(len(frame)))
    frame["mean area"] = frame["mean area"].astype(object)
    frame.loc[5, "mean area"] = "lots"
    return frame


def test_lenient_task_scores_good_rows_lists_bad_ones_and_logs(
    service_url: str, default_model: StoredModel, pg_url: str
) -> None:
    before = count_rows(pg_url)
    frame = input_frame(default_model)
    task_id = submit(service_url, frame, strict=False)
    assert wait(service_url, task_id)["status"] == "completed"
    progress = httpx.post(f"{service_url}/score_file_progress", json={"task_id": task_id}).json()
    assert progress["state"] == "done" and progress["progress"] == 1.0
    assert (progress["rows"], progress["bad_rows"]) == (len(frame), 1)
    assert progress["errors"] == ["row 6: column 'mean area': not a number: 'lots'"]
    result = httpx.post(f"{service_url}/score_file_result", json={"task_id": task_id})
    scored = pd.read_csv(io.StringIO(result.text))
    assert scored["case"].tolist() == list(range(len(frame)))
    expected = default_model.load_predictor().predict_frame(frame.drop(index=5))
    assert scored.drop(index=5)["prediction"].tolist() == expected["prediction"].tolist()
    deadline = time.monotonic() + 10
    while count_rows(pg_url) < before + len(frame) - 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert count_rows(pg_url) >= before + len(frame) - 1  # scored rows are in the prediction log


def test_strict_task_fails_with_the_reason(service_url: str, default_model: StoredModel) -> None:
    task_id = submit(service_url, input_frame(default_model), strict=True)
    assert wait(service_url, task_id)["status"] == "failed"
    progress = httpx.post(f"{service_url}/score_file_progress", json={"task_id": task_id}).json()
    assert progress["state"] == "failed" and "strict mode: row 6" in progress["error"]
    assert httpx.post(f"{service_url}/score_file_result", json={"task_id": task_id}).status_code == 404


def test_unknown_task_progress_is_404(service_url: str) -> None:
    assert httpx.post(f"{service_url}/score_file_progress", json={"task_id": "nope"}).status_code == 404


def test_a_semicolon_file_with_decimal_commas_is_scored(service_url: str, default_model: StoredModel) -> None:
    frame = default_model.load_reference()[default_model.schema.names].head(50)
    body = frame.to_csv(index=False, sep=";", decimal=",").encode()
    for fields in ({}, {"sep": ";"}):
        response = httpx.post(
            f"{service_url}/score_file/submit", files={"file": ("eu.csv", body, "text/csv")}, data=fields
        )
        assert response.status_code == 200, response.text
        task_id = str(response.json()["task_id"])
        assert wait(service_url, task_id)["status"] == "completed"
        progress = httpx.post(f"{service_url}/score_file_progress", json={"task_id": task_id}).json()
        assert (progress["state"], progress["rows"], progress["bad_rows"]) == ("done", 50, 0), progress
        result = httpx.post(f"{service_url}/score_file_result", json={"task_id": task_id})
        scored = pd.read_csv(io.StringIO(result.text))
        expected = default_model.load_predictor().predict_frame(frame)
        assert scored["prediction"].tolist() == expected["prediction"].tolist()
