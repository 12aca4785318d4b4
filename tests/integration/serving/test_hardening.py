"""Bad input from outside (careless client or attacker): a 4xx naming the problem, never a 500.

Each case was found by probing the served model (issue 12); each test failed before its fix.
"""

from __future__ import annotations

import io
import json
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pandas as pd
import pytest

from tabserve.model_store import StoredModel
from tests.factories import reference_records
from tests.integration.conftest import TEST_CONFIG
from tests.servers import bentoml_server

# What no answer may contain: a path on the server.
SERVER_PATH = re.compile(r"(/tmp/|/var/|/home/|/root/|/work/|bentoml/|site-packages)")


def sync_upload(url: str, name: str, body: bytes, strict: bool = False) -> httpx.Response:
    return httpx.post(
        f"{url}/score_file",
        files={"file": (name, body, "application/octet-stream")},
        data={"strict": str(strict).lower()},
        timeout=60,
    )


def csv_of(model: StoredModel, rows: int = 30) -> bytes:
    frame = model.load_reference()[model.schema.names].head(rows).copy()
    frame.insert(0, "case", range(len(frame)))
    return frame.to_csv(index=False).encode()


def assert_clean(response: httpx.Response) -> None:
    assert not SERVER_PATH.search(response.text), response.text
    assert "Traceback" not in response.text


# 1. Data leak: every synchronous call gets its own unguessable task id.


def test_sync_uploads_get_their_own_unguessable_ids(service_url: str, default_model: StoredModel) -> None:
    bodies = [csv_of(default_model, rows) for rows in (40, 25)]
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda body: sync_upload(service_url, "in.csv", body), bodies))
    assert [answer.status_code for answer in answers] == [200, 200], [a.text for a in answers]
    ids = [answer.json()["task_id"] for answer in answers]
    assert len(set(ids)) == 2 and all(re.fullmatch(r"[0-9a-f]{32}", task_id) for task_id in ids)
    for task_id, rows in zip(ids, (40, 25), strict=True):
        result = httpx.post(f"{service_url}/score_file_result", json={"task_id": task_id})
        assert len(pd.read_csv(io.StringIO(result.text))) == rows  # both results kept, each its own
    leaked = httpx.post(f"{service_url}/score_file_result", json={"task_id": "local"})
    assert leaked.status_code == 404


# 2. No 500 for a user's mistake.


@pytest.mark.parametrize(
    ("case", "needle"),
    [
        ("binary", "UTF-8"),
        ("empty", "empty"),
        ("header-only", "no rows"),
        ("wrong-columns", "lacks feature column"),
        ("strict-bad-row", "strict mode: row 3"),
        ("bad-parquet", "Parquet"),
    ],
)
def test_sync_score_file_user_mistakes_are_4xx(
    service_url: str, default_model: StoredModel, case: str, needle: str
) -> None:
    good = csv_of(default_model, 5).decode().splitlines()
    bad_row = good[3].split(",")
    bad_row[2] = "lots"
    uploads = {
        "binary": ("in.csv", bytes(range(256)) * 40, False),
        "empty": ("in.csv", b"", False),
        "header-only": ("in.csv", (good[0] + "\n").encode(), False),
        "wrong-columns": ("in.csv", b"a,b\n1,2\n", False),
        "strict-bad-row": ("in.csv", "\n".join([*good[:3], ",".join(bad_row), *good[4:]]).encode(), True),
        "bad-parquet": ("in.parquet", b"PAR1 this is not parquet PAR1", False),
    }
    name, body, strict = uploads[case]
    response = sync_upload(service_url, name, body, strict)
    assert 400 <= response.status_code < 500, response.text
    assert needle in response.json()["error"], response.text
    assert_clean(response)


def test_failed_task_get_and_progress_say_why_without_paths(service_url: str) -> None:
    submitted = httpx.post(
        f"{service_url}/score_file/submit",
        files={"file": ("in.csv", b"a,b\n1,2\n", "text/csv")},
        data={"strict": "false"},
    )
    task_id = submitted.json()["task_id"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status = httpx.get(f"{service_url}/score_file/status", params={"task_id": task_id}).json()
        if status["status"] != "in_progress":
            break
        time.sleep(0.2)
    assert status["status"] == "failed"
    got = httpx.get(f"{service_url}/score_file/get", params={"task_id": task_id})
    assert got.status_code < 500 and "lacks feature column" in got.text, got.text
    assert_clean(got)
    progress = httpx.post(f"{service_url}/score_file_progress", json={"task_id": task_id})
    assert progress.json()["state"] == "failed" and "lacks feature column" in progress.json()["error"]
    assert_clean(progress)


@pytest.mark.parametrize("task_id", ["x" * 300, "../../etc/passwd", "a b", "", "ü"])
@pytest.mark.parametrize("endpoint", ["score_file_progress", "score_file_result"])
def test_odd_task_ids_are_4xx(service_url: str, endpoint: str, task_id: str) -> None:
    response = httpx.post(f"{service_url}/{endpoint}", json={"task_id": task_id})
    assert response.status_code in (400, 404), response.text
    assert_clean(response)
    assert len(response.content) < 2_000


@pytest.mark.parametrize(
    "path", ["/predict", "/predict_batch", "/score_file", "/feedback", "/score_file/submit"]
)
def test_multipart_without_boundary_is_400(service_url: str, path: str) -> None:
    response = httpx.post(
        f"{service_url}{path}", content=b"--x\r\n", headers={"content-type": "multipart/form-data"}
    )
    assert response.status_code == 400 and "boundary" in response.json()["error"], response.text


@pytest.mark.parametrize(
    "body",
    [
        b"--XX\r\n[1, 2]--XX--\r\n",  # schemathesis found it: a part without headers was a 500
        b"--XX\r\nhello\r\n--XX--\r\n",
        b"--XX\r\nContent-Type: text/csv\r\n\r\na,b\r\n--XX--\r\n",  # no Content-Disposition
    ],
    ids=["no-headers", "no-header-end", "no-disposition"],
)
@pytest.mark.parametrize("path", ["/score_file", "/score_file/submit"])
def test_malformed_multipart_is_400(service_url: str, path: str, body: bytes) -> None:
    response = httpx.post(
        f"{service_url}{path}", content=body, headers={"content-type": "multipart/form-data; boundary=XX"}
    )
    assert response.status_code == 400 and "invalid multipart data" in response.json()["error"], response.text


def _chunks(size: int, block: int = 64 * 1024) -> Iterator[bytes]:
    yield b'{"records": ['
    sent = 0
    while sent < size:
        yield b" " * block
        sent += block
    yield b"]}"


def test_chunked_body_over_the_limit_is_413(service_url: str) -> None:
    response = httpx.post(
        f"{service_url}/predict_batch", content=_chunks(400_000), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413 and "limit of 200000 bytes" in response.json()["error"]


def test_upload_has_its_own_limit(service_url: str, default_model: StoredModel) -> None:
    body = csv_of(default_model, 569)
    header, rows = body.split(b"\n", 1)
    big = header + b"\n" + rows * (400_000 // len(rows))  # over max_body_bytes, under max_upload_bytes
    assert 200_000 < len(big) < 1_000_000
    assert sync_upload(service_url, "in.csv", big).status_code == 200
    huge = header + b"\n" + rows * (1_300_000 // len(rows))  # over max_upload_bytes (1 MB in the tests)
    response = sync_upload(service_url, "in.csv", huge)
    assert response.status_code == 413 and "limit of 1000000 bytes" in response.json()["error"]


# 3. Log flooding and echoing.


def test_error_bodies_are_bounded(service_url: str, default_model: StoredModel) -> None:
    record = reference_records(default_model, 1)[0]
    record["k" * 150_000] = 1  # under the tests' max_body_bytes (200 kB)
    response = httpx.post(f"{service_url}/predict", json={"record": record})
    assert response.status_code == 400 and len(response.content) < 5_000, len(response.content)
    assert response.json()["detail"][0]["type"] == "extra_forbidden"


def test_validation_errors_name_each_field_and_its_reason(
    service_url: str, default_model: StoredModel
) -> None:
    record = reference_records(default_model, 1)[0]
    del record["mean radius"]
    record["mean area"] = "big"
    response = httpx.post(f"{service_url}/predict", json={"record": record})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert "validation error for" not in error and "Input" not in error.split(":")[0], error
    assert error.startswith("2 invalid fields: "), error
    assert "mean radius: Field required" in error, error
    assert "mean area: Input should be a valid number" in error, error
    assert len(response.json()["detail"]) == 2  # the machine-readable list stays
    batch = httpx.post(f"{service_url}/predict_batch", json={"records": [record]})
    assert batch.json()["error"].startswith("2 invalid fields: records[0].mean radius: Field required")
    broken = httpx.post(
        f"{service_url}/predict", content=b"{record: ", headers={"content-type": "application/json"}
    )
    assert broken.json()["error"].startswith("1 invalid field: body: Invalid JSON"), broken.text


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "image/png"])
def test_json_endpoint_refuses_other_content_types(
    service_url: str, default_model: StoredModel, content_type: str
) -> None:
    body = json.dumps({"record": reference_records(default_model, 1)[0]}).encode()
    response = httpx.post(f"{service_url}/predict", content=body, headers={"content-type": content_type})
    assert response.status_code == 415 and "application/json" in response.json()["error"], response.text


def test_client_errors_are_one_warning_line(
    default_model: StoredModel, service_env: dict[str, str], logs: Path
) -> None:
    folder = logs / "quiet"
    folder.mkdir()
    with bentoml_server(folder, service_env) as url:
        for _ in range(20):
            assert (
                httpx.post(
                    f"{url}/predict", content=b"{record: ", headers={"content-type": "application/json"}
                ).status_code
                == 400
            )
        log = next(folder.glob("bentoml-*.log")).read_text()
    assert "Traceback" not in log
    warnings = [line for line in log.splitlines() if "400" in line and "WARNING" in line]
    assert len(warnings) == 20, log[-3000:]
    assert all(len(line) < 600 for line in warnings)


# 4. Bounded resources.


def test_over_the_concurrency_limit_is_429_with_retry_after(
    default_model: StoredModel, service_env: dict[str, str], logs: Path, tmp_path: Path
) -> None:
    config = tmp_path / "configuration.yaml"
    config.write_text(
        TEST_CONFIG.format(folder=tmp_path).replace("serving:\n", "serving:\n  max_concurrency: 2\n")
    )
    records = reference_records(default_model, 200)
    with bentoml_server(logs, {**service_env, "TABSERVE_CONFIG": str(config)}) as url:

        def call(_: int) -> httpx.Response:
            return httpx.post(f"{url}/predict_batch", json={"records": records[:20]}, timeout=30)

        with ThreadPoolExecutor(24) as pool:
            answers = list(pool.map(call, range(240)))
        assert httpx.get(f"{url}/readyz").status_code == 200  # health is never refused
    statuses = {answer.status_code for answer in answers}
    assert statuses == {200, 429}, statuses
    refused = next(answer for answer in answers if answer.status_code == 429)
    assert int(refused.headers["retry-after"]) >= 1 and "concurrent" in refused.json()["error"]
