"""Stream message parsing: the same validation as the API, stable request ids, honest dead letters."""

import base64
import json
import uuid

import pandas as pd
import pytest

from tabserve.api_models import record_model
from tabserve.schema import infer_schema
from tabserve.streaming.transport import Message, dead_letter_fields, decode_message
from tabserve.streaming.worker import parse, request_id_for

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
        request_id_for("in", message, b"k")
        == request_id_for("in", Message("5-1", {"record": "{other}"}), b"k")  # a redelivery
        != request_id_for("in", Message("5-2", {}), b"k")
    )
    assert request_id_for("in", Message("5-1", {"request_id": "mine"}), b"k") == "mine"


def test_request_ids_cannot_be_computed_without_the_secret() -> None:
    """They were uuid5 of the message id: anyone could compute them and rewrite their labels."""
    message = Message("5-1", {"record": "{}"})
    ours = request_id_for("in", message, b"secret one")
    assert ours != request_id_for("in", message, b"secret two")
    old = uuid.uuid5(uuid.UUID("6f0e2b1a-9d7c-4c1e-8a55-2d1f0b7f3e10"), "in/5-1").hex
    assert ours != old and len(ours) == len(old) == 32 and int(ours, 16) >= 0


def test_a_message_that_is_not_utf8_is_parsed_into_a_reason_not_an_exception() -> None:
    message = decode_message(b"7-0", {b"record": b'{"c": "\xff"}'})
    assert message.id == "7-0" and message.fields == {}
    with pytest.raises(ValueError, match="not UTF-8"):
        parse(message, RECORD)


def test_an_overlong_caller_request_id_is_a_reason() -> None:
    with pytest.raises(ValueError, match="request_id must be 1 to 64 characters"):
        parse(Message("1-0", {"record": '{"x": 2, "c": null}', "request_id": "r" * 65}), RECORD)


def test_a_dead_letter_keeps_our_fields_and_the_message_verbatim() -> None:
    forged = {"record": "{", "reason": "fine", "input_id": "0-1", "message": "x"}
    letter = dead_letter_fields(Message("9-0", forged), "Invalid JSON")
    assert letter == {
        "input_id": "9-0",
        "reason": "Invalid JSON",
        "message": json.dumps(forged),
        "message_encoding": "utf-8",
    }


def test_a_dead_letter_of_bytes_that_are_not_utf8_is_base64() -> None:
    raw = {b"record": b"\xff", b"\xc3(": b"ok"}
    letter = dead_letter_fields(decode_message("9-0", raw), "not UTF-8")
    assert letter["message_encoding"] == "base64"
    decoded = {base64.b64decode(k): base64.b64decode(v) for k, v in json.loads(letter["message"]).items()}
    assert decoded == raw
    kafka = dead_letter_fields(Message("0-5", {}, b"\xfe{"), "not UTF-8")
    assert base64.b64decode(kafka["message"]) == b"\xfe{" and kafka["message_encoding"] == "base64"
