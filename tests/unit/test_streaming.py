"""Stream message parsing: the same validation as the API, stable request ids."""

import pandas as pd
import pytest

from tabserve.api_models import record_model
from tabserve.schema import infer_schema
from tabserve.stream_transport import Message
from tabserve.streaming import parse, request_id_for

RECORD = record_model(infer_schema(pd.DataFrame({"x": [1.0], "c": ["a"]})), {"x": 1.0, "c": "a"})


def test_a_valid_message_parses_to_a_record() -> None:
    assert parse(Message("1-0", {"record": '{"x": 2, "c": null}'}), RECORD) == {"x": 2.0, "c": None}


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({}, "no 'record' field"),
        ({"record": "{not json"}, "Invalid JSON"),
        ({"record": '{"c": "a"}'}, "x: Field required"),
        ({"record": '{"x": "big", "c": "a"}'}, "x: Input should be a valid number"),
    ],
)
def test_malformed_messages_say_why(fields: dict, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse(Message("1-0", fields), RECORD)


def test_request_ids_are_stable_per_message_unless_given() -> None:
    message = Message("5-1", {"record": "{}"})
    assert (
        request_id_for("in", message)
        == request_id_for("in", message)
        != request_id_for("in", Message("5-2", {}))
    )
    assert request_id_for("in", Message("5-1", {"request_id": "mine"})) == "mine"
