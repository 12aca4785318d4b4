import math

import pandas as pd
import pytest
from pydantic import ValidationError

from tabserve.api_models import example_record, record_model
from tabserve.schema import infer_schema

SCHEMA = infer_schema(pd.DataFrame({"mean radius": [1.0, 2.0], "city": ["a", "b"]}))
RECORD = record_model(SCHEMA, {"mean radius": 1.0, "city": "a"})


def errors(payload: dict) -> list[tuple[tuple, str]]:
    with pytest.raises(ValidationError) as info:
        RECORD.model_validate(payload)
    return [(error["loc"], error["type"]) for error in info.value.errors()]


def test_valid_record_keeps_the_real_feature_names() -> None:
    record = RECORD.model_validate({"mean radius": "1.5", "city": None})
    assert record.model_dump(by_alias=True) == {"mean radius": 1.5, "city": None}


def test_bad_records_name_the_field_and_the_reason() -> None:
    assert errors({"city": "a"}) == [(("mean radius",), "missing")]
    assert errors({"mean radius": "x", "city": "a"}) == [(("mean radius",), "float_parsing")]
    assert errors({"mean radius": math.nan, "city": "a"}) == [(("mean radius",), "finite_number")]
    assert errors({"mean radius": math.inf, "city": "a"}) == [(("mean radius",), "finite_number")]
    assert errors({"mean radius": 1, "city": "a", "extra": 1}) == [(("extra",), "extra_forbidden")]


def test_schema_lists_types_and_categories() -> None:
    schema = RECORD.model_json_schema()
    assert schema["properties"]["city"]["x-categories"] == ["a", "b"]
    assert schema["properties"]["mean radius"]["x-kind"] == "numeric"
    assert schema["example"] == {"mean radius": 1.0, "city": "a"}


def test_example_comes_from_the_reference_and_maps_nan_to_null() -> None:
    reference = pd.DataFrame({"mean radius": [math.nan], "city": ["b"]})
    assert example_record(SCHEMA, reference) == {"mean radius": None, "city": "b"}
