"""The one cleaning rule set: the same raw values give the same features through every path."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tabserve.api_models import record_model
from tabserve.batch.file_scoring import validate_chunk
from tabserve.cleaning import DEFAULT_MISSING_MARKERS, CleaningError, to_category, to_datetime_text, to_number
from tabserve.datasets import clean_frame
from tabserve.schema import coerce_frame, infer_roles
from tabserve.serving.feedback import FeedbackError, validate_label
from tabserve.settings import DataSettings

MARKERS = DEFAULT_MISSING_MARKERS


@pytest.mark.parametrize(
    ("raw", "number"),
    [(" 3.5 ", 3.5), ("?", None), ("", None), ("NA", None), (2, 2.0), (None, None), (float("nan"), None)],
)
def test_numbers(raw: Any, number: float | None) -> None:
    assert to_number(raw, MARKERS) == number


@pytest.mark.parametrize(
    ("raw", "code"),
    [("abc", "float_parsing"), ("1_000", "float_parsing"), ("inf", "finite_number"), (True, "float_parsing")],
)
def test_bad_numbers_say_why(raw: Any, code: str) -> None:
    with pytest.raises(CleaningError) as info:
        to_number(raw, MARKERS)
    assert info.value.code == code


def test_categories_and_dates() -> None:
    assert to_category(" paris ", MARKERS) == "paris" and to_category("?", MARKERS) is None
    assert to_category(3.0, MARKERS) == "3" and to_category(True, MARKERS) == "True"
    assert to_category("true", MARKERS, boolean=True) == "True"
    assert to_datetime_text(" 2024-03-01 ", MARKERS) == "2024-03-01"
    assert to_datetime_text("13:45", MARKERS, "time") == "13:45"
    with pytest.raises(CleaningError, match="ISO 8601"):
        to_datetime_text("March 1st", MARKERS)


def _training_frame() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    rows = 60
    return pd.DataFrame(
        {
            "n": rng.normal(0, 1, rows).round(3).astype(str),
            "c": rng.choice(["a", "b", "c"], rows),
            "flag": rng.choice(["True", "False"], rows),
            "day": pd.date_range("2024-01-01", periods=rows).strftime("%Y-%m-%d"),
            "y": rng.choice(["p", "q"], rows),
        }
    )


RAW_ROWS = [
    {"n": " 1.25 ", "c": " a ", "flag": "true", "day": "2024-02-03"},
    {"n": "?", "c": "", "flag": "NA", "day": "?"},
    {"n": "-3", "c": "zzz", "flag": "False", "day": " 2025-12-31 "},
]


def test_raw_text_rows_clean_the_same_in_training_file_scoring_and_the_api() -> None:
    settings = DataSettings(target="y")
    training = clean_frame(_training_frame(), settings)
    schema, dropped = infer_roles(training.drop(columns=["y"]))
    assert dropped == {}
    raw = pd.DataFrame(RAW_ROWS)
    by_training = coerce_frame(clean_frame(raw, DataSettings(target="y", numeric=["n"])), schema)
    by_file, errors = validate_chunk(raw, schema, frozenset(MARKERS))
    record_type = record_model(schema, {})
    by_api = pd.DataFrame([record_type.model_validate(row).model_dump(by_alias=True) for row in RAW_ROWS])
    assert errors.isna().all()
    for frame in (by_training, by_file, by_api):
        cells = [
            {name: None if pd.isna(value) else value for name, value in row.items()}
            for row in frame[schema.names].to_dict("records")
        ]
        assert cells == [
            {"n": 1.25, "c": "a", "flag": "True", "day": "2024-02-03"},
            {"n": None, "c": None, "flag": None, "day": None},
            {"n": -3.0, "c": "zzz", "flag": "False", "day": "2025-12-31"},
        ]


def test_api_names_the_field_and_the_reason() -> None:
    schema, _ = infer_roles(clean_frame(_training_frame(), DataSettings(target="y")).drop(columns=["y"]))
    record_type = record_model(schema, {})
    with pytest.raises(Exception) as info:
        record_type.model_validate({**RAW_ROWS[0], "n": "lots", "day": "yesterday"})
    found = {(error["loc"], error["type"]) for error in info.value.errors()}  # type: ignore[attr-defined]
    assert found == {(("n",), "float_parsing"), (("day",), "datetime_parsing")}


@pytest.mark.parametrize(
    ("label", "classes", "stored"),
    [
        (1, (0, 1), 1),
        ("1", (0, 1), 1),
        (1.0, (0, 1), 1),
        (True, (False, True), True),
        ("true", (False, True), True),
        ("False", (False, True), False),
        ("yes", ("no", "yes"), "yes"),
        ("2.5", None, 2.5),
    ],
)
def test_feedback_labels_in_their_json_type_or_as_text(label: Any, classes: Any, stored: Any) -> None:
    value = validate_label(label, classes, "label")
    assert value == stored and type(value) is type(stored)


def test_feedback_label_outside_the_classes_is_refused() -> None:
    with pytest.raises(FeedbackError, match="not one of the model's classes"):
        validate_label(2, (0, 1), "label")
    assert math.isclose(validate_label(3, None, "label"), 3.0)
