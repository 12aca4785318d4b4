import numpy as np
import pandas as pd

from tabserve.schema import CATEGORICAL, NUMERIC, FeatureSchema, coerce_frame, infer_schema


def test_infer_detects_kinds_ranges_and_categories() -> None:
    frame = pd.DataFrame({"n": [1.0, np.nan, 3.0], "c": ["a", "b", None], "i": [1, 2, 3]})
    schema = infer_schema(frame, categorical=["i"])
    kinds = {feature.name: feature.kind for feature in schema.features}
    assert kinds == {"n": NUMERIC, "c": CATEGORICAL, "i": CATEGORICAL}
    numeric = schema.features[0]
    assert (numeric.minimum, numeric.maximum, round(numeric.missing_share, 3)) == (1.0, 3.0, 0.333)
    assert schema.features[1].categories == ["a", "b"]


def test_schema_round_trips_through_model_metadata() -> None:
    schema = infer_schema(pd.DataFrame({"n": [1.0], "c": ["a"]}))
    assert FeatureSchema.from_metadata(schema.to_metadata()) == schema


def test_coerce_orders_columns_and_normalises_missing() -> None:
    schema = infer_schema(pd.DataFrame({"n": [1.0], "c": ["a"]}))
    out = coerce_frame(pd.DataFrame({"c": [None, 3], "n": ["2", None], "extra": [0, 0]}), schema)
    assert list(out.columns) == ["n", "c"]
    assert out["n"].tolist()[0] == 2.0 and np.isnan(out["n"][1])
    assert np.isnan(out["c"][0]) and out["c"][1] == "3"
