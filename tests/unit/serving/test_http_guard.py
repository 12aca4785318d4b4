"""The pure parts of the HTTP guard: content types, error bodies, task ids, messages, the document."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from tabserve.serving.file_tasks import ProgressStore, is_task_id, new_task_id, public_message
from tabserve.serving.http_bodies import RefusedError
from tabserve.serving.http_errors import ClientErrorLogFilter, bound_error_body
from tabserve.serving.http_limits import HttpLimits, check_content_type, media_type
from tabserve.serving.openapi_doc import amend_openapi

LIMITS = HttpLimits(
    max_body_bytes=100,
    max_upload_bytes=1000,
    max_concurrency=4,
    json_paths=frozenset({"/predict"}),
    upload_paths=frozenset({"/score_file"}),
)


def headers(content_type: str) -> list[tuple[bytes, bytes]]:
    return [(b"content-type", content_type.encode())]


def test_media_type_reads_parameters() -> None:
    assert media_type(headers('Multipart/Form-Data; boundary="abc"')) == (
        "multipart/form-data",
        {"boundary": "abc"},
    )
    assert media_type([]) == (None, {})


@pytest.mark.parametrize(
    ("method", "path", "content_type", "status"),
    [
        ("POST", "/predict", "multipart/form-data", 400),
        ("POST", "/anything", "multipart/form-data; charset=utf-8", 400),
        ("POST", "/predict", "text/plain", 415),
        ("POST", "/score_file", "application/json", 415),
        ("POST", "/predict", "application/json; charset=utf-8", None),
        ("POST", "/score_file", "multipart/form-data; boundary=x", None),
        ("GET", "/predict", "text/plain", None),
    ],
)
def test_content_type_checks(method: str, path: str, content_type: str, status: int | None) -> None:
    if status is None:
        check_content_type(LIMITS, method, path, headers(content_type))
        return
    with pytest.raises(RefusedError) as refused:
        check_content_type(LIMITS, method, path, headers(content_type))
    assert refused.value.status == status


def test_no_content_type_is_taken_as_json() -> None:
    check_content_type(LIMITS, "POST", "/predict", [])


def test_error_bodies_are_bounded_and_unwrapped() -> None:
    body = json.dumps({"error": "x" * 10_000, "detail": [{"loc": ["k" * 1_000_000]}] * 50}).encode()
    bounded = json.loads(bound_error_body(body))
    assert len(bounded["error"]) < 300 and bounded["error"].endswith("(10000 characters)")
    assert len(bounded["detail"]) == 21 and bounded["detail"][-1] == {
        "type": "truncated",
        "msg": "30 more not listed",
    }
    assert len(json.dumps(bounded)) < 10_000
    assert json.loads(bound_error_body(b'[{"error": "no"}]')) == {"error": "no"}  # BentoML's tuple
    assert bound_error_body(b"x" * 100_000) == b"x" * 16_384


def test_client_errors_log_as_one_warning_line() -> None:
    class Model(BaseModel):
        value: int

    try:
        Model.model_validate({"value": "x" * 5_000})
    except ValidationError as error:
        record = logging.LogRecord(
            "b", logging.ERROR, "f", 1, "Exception on %s [%s]", ("/p", "POST"), (ValidationError, error, None)
        )
    assert ClientErrorLogFilter().filter(record)
    assert record.levelno == logging.WARNING and record.exc_info is None
    assert (
        record.getMessage().startswith("400 on /p [POST]: 1 validation error")
        and len(record.getMessage()) < 400
    )
    server = logging.LogRecord(
        "b", logging.ERROR, "f", 1, "Exception", (), (RuntimeError, RuntimeError("bug"), None)
    )
    assert ClientErrorLogFilter().filter(server) and server.levelno == logging.ERROR and server.exc_info


@pytest.mark.parametrize("task_id", ["", "x" * 65, "../x", "a b", "ü", "a.b", "local\n"])
def test_odd_task_ids_never_reach_the_file_system(tmp_path: Path, task_id: str) -> None:
    assert not is_task_id(task_id)
    store = ProgressStore(tmp_path)
    assert store.read(task_id) is None and store.result_file(task_id) is None
    with pytest.raises(ValueError, match="1 to 64"):
        store.output_dir(task_id)


def test_new_task_ids_are_valid_and_distinct() -> None:
    ids = {new_task_id() for _ in range(1000)}
    assert len(ids) == 1000 and all(is_task_id(task_id) and len(task_id) == 32 for task_id in ids)


def test_public_messages_name_the_file_not_the_server_path(tmp_path: Path) -> None:
    source = tmp_path / "upload" / "in.csv"
    message = public_message(ValueError(f"input file has no rows: {source}"), source)
    assert message == "input file has no rows: in.csv"
    assert len(public_message(ValueError("y" * 5_000), source)) < 600


def test_the_document_declares_real_error_bodies_and_limits() -> None:
    doc = {
        "components": {
            "schemas": {
                "InvalidArgument": {
                    "properties": {"error": {"type": "string"}, "detail": {"type": "string"}}
                },
                "TaskStatusResponse": {
                    "properties": {"status": {"enum": ["success"]}},
                    "required": ["task_id", "status", "created_at"],
                },
            }
        },
        "paths": {
            "/predict": {"post": {"responses": {"200": {}}}},
            "/score_file/status": {"get": {"responses": {"200": {}}}},
        },
    }
    amended = amend_openapi(doc)
    detail = amended["components"]["schemas"]["InvalidArgument"]["properties"]["detail"]
    assert {"type": "array", "items": {"type": "object"}} in detail["anyOf"]
    task_status = amended["components"]["schemas"]["TaskStatusResponse"]
    assert "completed" in task_status["properties"]["status"]["enum"]
    assert task_status["required"] == ["task_id", "status"]
    assert set(amended["paths"]["/predict"]["post"]["responses"]) == {"200", "413", "415", "429"}
    assert set(amended["paths"]["/score_file/status"]["get"]["responses"]) == {"200", "429"}
    assert "Retry-After" in amended["paths"]["/predict"]["post"]["responses"]["429"]["headers"]
