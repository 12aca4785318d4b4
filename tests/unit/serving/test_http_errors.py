"""The 400 answer to invalid input names each field and its reason, not pydantic's class title."""

from __future__ import annotations

import json

from tabserve.serving.http_errors import MAX_LISTED_ITEMS, bound_error_body, field_name


def test_field_names_read_as_the_client_wrote_them() -> None:
    assert field_name(["record", "mean radius"]) == "mean radius"
    assert field_name(["records", 2, "age"]) == "records[2].age"
    assert field_name(["records"]) == "records"
    assert field_name([]) == "body"


def test_bentoml_validation_body_gets_a_summary_naming_every_field() -> None:
    detail = [
        {"type": "missing", "loc": ["record", "age"], "msg": "Field required"},
        {"type": "float_parsing", "loc": ["record", "sex"], "msg": "Input should be a valid number"},
    ]
    body = json.dumps({"error": "2 validation error for Input", "detail": detail}).encode()
    answer = json.loads(bound_error_body(body))
    assert answer["error"] == "2 invalid fields: age: Field required; sex: Input should be a valid number"
    assert answer["detail"] == detail


def test_a_long_list_is_summarised_within_bounds() -> None:
    detail = [{"type": "missing", "loc": ["record", f"f{i}"], "msg": "Field required"} for i in range(50)]
    body = json.dumps({"error": "50 validation errors for Input", "detail": detail}).encode()
    error = json.loads(bound_error_body(body))["error"]
    assert error.startswith("50 invalid fields: f0: Field required; f1: ")
    assert f"{50 - MAX_LISTED_ITEMS} more not listed" in error and "f20:" not in error


def test_other_errors_are_left_as_they_are() -> None:
    body = json.dumps({"error": "no score_file task x", "detail": []}).encode()
    assert json.loads(bound_error_body(body))["error"] == "no score_file task x"
