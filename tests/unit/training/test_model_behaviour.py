"""Behavioural tests of a trained model (issue 11): invariance and direction, through the paths we ship.

The model is trained by the CLI on a matrix table that combines the messy shapes (0/1 target,
stray spaces in headers, a date, missing markers, numbers as text, ID columns). Records go through
the API's request model (built as service.py builds it) and the one `Predictor`; the file path
through file scoring's reader and validation.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pydantic
import pytest

from tabserve.api_models import example_record, record_model
from tabserve.batch.file_scoring import read_chunks, validate_chunk
from tabserve.model_store import StoredModel, get_model
from tabserve.predictor import Predictor
from tests.datasets_matrix import (
    date_column,
    id_columns,
    int_binary,
    make_case,
    missing_marker_columns,
    numbers_as_text_column,
    raw_records,
)
from tests.factories import train_cli

CASE = make_case(
    "behaviour",
    int_binary,
    date_column,
    missing_marker_columns,
    numbers_as_text_column,
    id_columns,
    messy_names=True,
)
ROWS = 40
SHUFFLES = 3


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return CASE.write_csv(tmp_path_factory.mktemp("behaviour"))


@pytest.fixture(scope="module")
def stored(data: Path) -> StoredModel:
    assert train_cli(["--data", str(data), "--target", CASE.target, "--name", "unit_behaviour"]) == 0
    return get_model("unit_behaviour:latest")


@pytest.fixture(scope="module")
def predictor(stored: StoredModel) -> Predictor:
    return stored.load_predictor()


@pytest.fixture(scope="module")
def record_type(stored: StoredModel) -> type[pydantic.BaseModel]:
    """The API's request model, built from the stored model exactly as service.py builds it."""
    example = example_record(stored.schema, stored.load_reference())
    return record_model(stored.schema, example, None, stored.markers, stored.unused_columns)


def validated(record_type: type[pydantic.BaseModel], record: dict[str, Any]) -> dict[str, Any]:
    return record_type.model_validate(record).model_dump(by_alias=True)


def score(
    predictor: Predictor, record_type: type[pydantic.BaseModel], records: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    return predictor.predict_records([validated(record_type, record) for record in records])


def assert_same_results(left: list[dict[str, Any]], right: list[dict[str, Any]]) -> None:
    assert [r["prediction"] for r in left] == [r["prediction"] for r in right]
    for a, b in zip(left, right, strict=True):
        assert a["probabilities"] == pytest.approx(b["probabilities"], abs=1e-12)


def shuffled(record: dict[str, Any], seed: int) -> dict[str, Any]:
    keys = list(record)
    random.Random(seed).shuffle(keys)
    return {key: record[key] for key in keys}


def test_the_model_is_the_one_the_case_describes(stored: StoredModel) -> None:
    assert stored.metadata["classes"] == [0, 1]
    assert {spec["name"]: spec["kind"] for spec in stored.metadata["feature_schema"]} == CASE.kinds


@pytest.mark.parametrize("form", ["typed", "raw"])
def test_a_record_scores_the_same_whatever_the_key_order(
    form: str, data: Path, predictor: Predictor, record_type: type[pydantic.BaseModel]
) -> None:
    records = CASE.typed_records()[:ROWS] if form == "typed" else raw_records(data, CASE.features)[:ROWS]
    expected = score(predictor, record_type, records)
    for seed in range(SHUFFLES):
        reordered = [shuffled(record, seed * ROWS + i) for i, record in enumerate(records)]
        assert [list(r) for r in reordered] != [list(r) for r in records]
        assert_same_results(score(predictor, record_type, reordered), expected)


def test_raw_csv_text_and_typed_records_clean_and_score_the_same(
    data: Path, predictor: Predictor, record_type: type[pydantic.BaseModel]
) -> None:
    raw, typed = raw_records(data, CASE.features), CASE.typed_records()
    with_markers = [i for i, row in enumerate(raw) if "?" in row.values() or "" in row.values()]
    assert with_markers, "the case has rows with missing markers"
    rows = list(range(ROWS)) + with_markers[:ROWS]
    for i in rows:  # the same cleaned features: what is scored and what is logged
        assert validated(record_type, raw[i]) == validated(record_type, typed[i]), i
    assert_same_results(
        score(predictor, record_type, [raw[i] for i in rows]),
        score(predictor, record_type, [typed[i] for i in rows]),
    )


def test_a_whole_csv_row_as_written_scores_like_the_typed_record(
    data: Path, predictor: Predictor, record_type: type[pydantic.BaseModel]
) -> None:
    """Headers with their stray spaces, dropped (ID) columns included: the row as a client reads it."""
    frame = CASE.raw.drop(columns=[CASE.target]).head(ROWS)
    whole = [{str(key): value for key, value in row.items()} for row in frame.to_dict("records")]
    assert {" x ", "customer_id"} <= set(whole[0])
    assert_same_results(
        score(predictor, record_type, whole), score(predictor, record_type, CASE.typed_records()[:ROWS])
    )


def test_the_file_path_scores_like_the_api(
    data: Path, stored: StoredModel, predictor: Predictor, record_type: type[pydantic.BaseModel]
) -> None:
    chunk = next(read_chunks(data, 10_000, list(stored.markers)))
    features, errors = validate_chunk(chunk, stored.schema, frozenset(stored.markers))
    assert errors.isna().all(), errors.dropna().head().tolist()
    from_file = predictor.results_from_frame(predictor.predict_frame(features, prepared=True))
    assert_same_results(from_file, score(predictor, record_type, CASE.typed_records()))


def test_the_model_learned_the_direction_of_the_signal(
    predictor: Predictor, record_type: type[pydantic.BaseModel]
) -> None:
    base = CASE.typed_records()[0]
    low, high = score(predictor, record_type, [{**base, "x": -2.5}, {**base, "x": 2.5}])
    assert low["probabilities"]["1"] < 0.5 < high["probabilities"]["1"]
    assert (low["prediction"], high["prediction"]) == (0, 1)


def test_text_that_is_not_a_number_is_an_error_naming_the_field(
    record_type: type[pydantic.BaseModel],
) -> None:
    with pytest.raises(pydantic.ValidationError) as raised:
        record_type.model_validate({**CASE.typed_records()[0], "balance": "12 euros"})
    assert [error["loc"] for error in raised.value.errors()] == [("balance",)]
