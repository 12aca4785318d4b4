import numpy as np
import pandas as pd
import pytest

from tabserve.datasets import clean_frame, load_dataset, split_features
from tabserve.errors import DataError
from tabserve.settings import DataSettings

SETTINGS = DataSettings(target="y")


def test_clean_strips_names_and_turns_markers_into_missing() -> None:
    raw = pd.DataFrame({" a ": ["1", " 2 ", "?"], "b": ["x", "", " y "], "y": ["p", "q", "p"]})
    cleaned = clean_frame(raw, SETTINGS)
    assert list(cleaned.columns) == ["a", "b", "y"]
    assert cleaned["a"].dtype == float and np.isnan(cleaned["a"][2]) and cleaned["a"][1] == 2
    assert cleaned["b"].tolist()[0] == "x" and pd.isna(cleaned["b"][1]) and cleaned["b"][2] == "y"


def test_numeric_column_with_a_typo_is_reported_with_its_row() -> None:
    raw = pd.DataFrame({"a": [str(i) for i in range(20)] + ["1,5"], "y": ["p"] * 21})
    with pytest.raises(DataError, match=r"column 'a' is numeric.*'1,5' in data row 21"):
        clean_frame(raw, SETTINGS)


def test_forced_categorical_keeps_text() -> None:
    raw = pd.DataFrame({"a": [str(i) for i in range(20)] + ["x"], "y": ["p"] * 21})
    cleaned = clean_frame(raw, DataSettings(target="y", categorical=["a"]))
    assert cleaned["a"].dtype == object


def test_missing_target_lists_the_columns() -> None:
    with pytest.raises(DataError, match=r"target column 'y' not found; columns are: \['a'\]"):
        split_features(pd.DataFrame({"a": [1]}), SETTINGS)


def test_unlabeled_rows_are_dropped() -> None:
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "y": ["p", np.nan, "q"]})
    features, target = split_features(frame, SETTINGS)
    assert len(features) == 2 and target.tolist() == ["p", "q"]


def test_builtin_dataset_has_named_classes() -> None:
    frame = load_dataset("sklearn:breast_cancer")
    assert set(frame["diagnosis"]) == {"malignant", "benign"} and frame.shape == (569, 31)
