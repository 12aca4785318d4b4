"""API keys on the real service (issue 22): 401/403/200 on every endpoint of `/docs.json`, the
key file rotated without a restart, the key's name (never the key) in the prediction log, and
the loud warning of a service started without keys."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tabserve.model_store import StoredModel
from tabserve.predictions.store import make_engine
from tabserve.predictions.tables import predictions
from tabserve.serving.api_keys import hash_key
from tabserve.settings import OPEN_PATHS
from tests.integration.conftest import ADMIN_TOKEN, API_KEYS, api_keys_env, bearer
from tests.servers import bentoml_server

# The right each documented endpoint needs, written out here (not read from the code): a new
# endpoint fails the enumeration below until someone decides its right.
EXPECTED_RIGHT = {
    "/predict": "score",
    "/predict_batch": "score",
    "/score_file": "score",
    "/score_file_progress": "score",
    "/score_file_result": "score",
    "/feedback": "feedback",
    "/feedback_batch": "feedback",
    "/outcome": "feedback",
    "/outcome_batch": "feedback",
    "/model": "score",
    "/explain": "explain",
    "/explain_batch": "explain",
}
KEY_WITHOUT = {"score": "labeller", "feedback": "scorer", "explain": "scorer"}
ROTATING = ("rotating-key-1", "rotating-key-2")


def right_of(path: str) -> str:
    base = path.split("/")[1]
    assert f"/{base}" in EXPECTED_RIGHT, f"{path}: a new endpoint; add its right to EXPECTED_RIGHT"
    return EXPECTED_RIGHT[f"/{base}"]


@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("keys") / "api_keys"
    path.write_text(f"# rotated by the test\nrotating:{hash_key(ROTATING[0])}:score\n")
    return path


@pytest.fixture(scope="module")
def url(default_model: StoredModel, service_env: dict[str, str], logs: Path, key_file: Path) -> Iterator[str]:
    env = {
        **service_env,
        "TABSERVE_API_KEYS": api_keys_env(),
        "TABSERVE_API_KEYS_FILE": str(key_file),
        "TABSERVE_ADMIN_TOKEN": ADMIN_TOKEN,
    }
    with bentoml_server(logs, env) as served:
        yield served


def call(url: str, method: str, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.request(method.upper(), f"{url}{path}", headers=headers, timeout=30)


def test_every_documented_endpoint_needs_a_key_with_its_right(url: str) -> None:
    doc = httpx.get(f"{url}/docs.json", timeout=30).json()  # open: no key
    operations = [
        (method, path)
        for path, item in doc["paths"].items()
        for method in item
        if method in ("get", "post", "put", "delete")
    ]
    protected = [(method, path) for method, path in operations if path not in OPEN_PATHS]
    assert len(protected) >= 14  # predict, batch, file task routes, progress, result, feedback, outcome
    for method, path in [*protected, ("get", "/model/")]:
        right = right_of(path)
        anonymous = call(url, method, path)
        assert anonymous.status_code == 401, (method, path, anonymous.text)
        assert anonymous.headers["www-authenticate"] == "Bearer"
        assert call(url, method, path, {"Authorization": "Bearer not-a-key"}).status_code == 401
        lacking = call(url, method, path, bearer(KEY_WITHOUT[right]))
        assert lacking.status_code == 403, (method, path, lacking.text)
        assert KEY_WITHOUT[right] in lacking.json()["error"]
        allowed = call(url, method, path, bearer("full"))
        assert allowed.status_code not in (401, 403), (method, path, allowed.text)
        declared = doc["paths"].get(path, {}).get(method, {}).get("responses", {})
        assert path == "/model/" or {"401", "403"} <= set(declared), (method, path)


def test_health_metrics_and_the_document_stay_open_and_admin_keeps_its_token(url: str) -> None:
    for path in ("/livez", "/readyz", "/metrics", "/docs.json"):
        assert call(url, "get", path).status_code == 200, path
    assert call(url, "get", "/admin/state").status_code == 401  # the admin API's own answer
    admin = call(url, "get", "/admin/state", {"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert admin.status_code == 200, admin.text


def test_the_log_keeps_the_key_name_never_the_key(url: str, service_env: dict[str, str]) -> None:
    record = httpx.get(f"{url}/docs.json").json()["components"]["schemas"]["Record"]["example"]
    one = httpx.post(f"{url}/predict", json={"record": record}, headers=bearer("scorer"), timeout=30)
    many = httpx.post(
        f"{url}/predict_batch", json={"records": [record, record]}, headers=bearer("full"), timeout=30
    )
    assert one.status_code == 200 and many.status_code == 200, (one.text, many.text)
    expected = {one.json()["request_id"]: "scorer"} | {
        item["request_id"]: "full" for item in many.json()["predictions"]
    }
    engine = make_engine(service_env["TABSERVE_DATABASE_URL"])
    deadline = time.monotonic() + 30
    found: dict[str, Any] = {}
    while time.monotonic() < deadline and len(found) < len(expected):
        with engine.connect() as connection:
            rows = connection.execute(
                select(predictions).where(predictions.c.request_id.in_(list(expected)))
            ).all()
        found = {row.request_id: row for row in rows}
        time.sleep(0.2)
    engine.dispose()
    assert {request_id: row.api_key for request_id, row in found.items()} == expected
    secrets = [*API_KEYS.values(), *(hash_key(key) for key in API_KEYS.values())]
    assert not any(secret in str(tuple(row)) for row in found.values() for secret in secrets)


def test_a_file_task_logs_its_key_name(
    url: str, default_model: StoredModel, service_env: dict[str, str]
) -> None:
    """A `/score_file/submit` task runs after its answer is sent: its rows still name the key."""
    frame = default_model.load_reference()[default_model.schema.names].head(7)
    engine = make_engine(service_env["TABSERVE_DATABASE_URL"])
    before = logged_by(engine, "scorer")
    submitted = httpx.post(
        f"{url}/score_file/submit",
        files={"file": ("input.csv", frame.to_csv(index=False).encode(), "text/csv")},
        headers=bearer("scorer"),
        timeout=30,
    )
    assert submitted.status_code == 200, submitted.text
    deadline = time.monotonic() + 60
    while logged_by(engine, "scorer") < before + len(frame):
        assert time.monotonic() < deadline, "the file's rows were not logged under the key's name"
        time.sleep(0.3)
    engine.dispose()


def logged_by(engine: Any, name: str) -> int:
    with engine.connect() as connection:
        return len(connection.execute(select(predictions.c.id).where(predictions.c.api_key == name)).all())


def test_a_key_file_is_rotated_without_a_restart(url: str, key_file: Path) -> None:
    old, new = ({"Authorization": f"Bearer {key}"} for key in ROTATING)
    assert call(url, "post", "/score_file_progress", old).status_code != 401
    assert call(url, "post", "/score_file_progress", new).status_code == 401
    key_file.write_text(f"rotating:{hash_key(ROTATING[1])}:score\n")
    deadline = time.monotonic() + 20
    while call(url, "post", "/score_file_progress", new).status_code == 401:
        assert time.monotonic() < deadline, "the new key was not taken within 20 s"
        time.sleep(0.5)
    assert call(url, "post", "/score_file_progress", old).status_code == 401
    assert call(url, "post", "/score_file_progress", bearer("full")).status_code != 401  # the env's stay


def test_a_service_without_keys_says_so_once_and_answers_everyone(service_url: str, logs: Path) -> None:
    port = service_url.rsplit(":", 1)[1]
    [log] = logs.glob(f"bentoml-{port}-*.log")
    assert log.read_text().count("API keys are OFF") == 1
    assert call(service_url, "post", "/score_file_progress").status_code != 401


def test_required_keys_without_any_stop_the_service_with_the_setting_to_use(
    default_model: StoredModel, service_env: dict[str, str], logs: Path
) -> None:
    """What the image does (bentofile.yaml sets TABSERVE_API_KEYS_REQUIRED) when given no key."""
    env = {**service_env, "TABSERVE_API_KEYS_REQUIRED": "true", "TABSERVE_API_KEYS": ""}
    with pytest.raises(RuntimeError, match="server exited") as stopped, bentoml_server(logs, env):
        pass
    assert "TABSERVE_API_KEYS" in str(stopped.value) and "api_keys_required" in str(stopped.value)
