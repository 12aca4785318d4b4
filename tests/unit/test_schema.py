import numpy as np
import pandas as pd

from tabserve.schema import CATEGORICAL, NUMERIC, FeatureSchema, coerce_frame, infer_roles, infer_schema


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


def test_roles_dates_times_identifiers_and_long_tails() -> None:
    rows = 400
    rng = np.random.default_rng(0)
    seconds = rng.permutation(86_400)[:rows]
    frame = pd.DataFrame(
        {
            "time": [f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}" for s in seconds],  # unique per row
            "stamp": (pd.Timestamp("2024-01-01") + pd.to_timedelta(seconds, unit="s")).strftime(
                "%Y-%m-%dT%H:%M:%S"
            ),
            "row_id": np.arange(rows),
            "code": [f"K{i}" for i in range(rows)],
            "city": [f"c{int(v)}" for v in rng.zipf(1.5, rows) % 500],
            "age": rng.integers(18, 90, rows),
            "forced": np.arange(rows),
        }
    )
    schema, dropped = infer_roles(frame, numeric=["forced"])
    kinds = {feature.name: (feature.kind, feature.dtype) for feature in schema.features}
    assert kinds["time"] == ("datetime", "time") and kinds["stamp"] == ("datetime", "date")
    assert kinds["age"][0] == "numeric" and kinds["forced"][0] == "numeric"  # configured: kept
    assert set(dropped) == {"row_id", "code"} and all(r.startswith("id-like") for r in dropped.values())
    city = next(feature for feature in schema.features if feature.name == "city")
    assert city.cardinality is not None and city.cardinality > 20 and len(city.categories or []) == 20
    assert (city.categories or [])[0] == "c1"  # the most frequent first
    time = next(feature for feature in schema.features if feature.name == "time")
    assert time.parts == ["hour", "minute"]


def test_constant_and_empty_columns_are_dropped_with_the_reason() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "k": ["a", "a", "a"], "e": [None, None, None]})
    _, dropped = infer_roles(frame)
    assert dropped == {"k": "constant (always 'a')", "e": "all missing"}
