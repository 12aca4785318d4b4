"""CSV files as Europe writes them: ';' between fields, ',' as the decimal mark; read like any other."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tabserve.datasets import clean_frame, load_dataset
from tabserve.errors import DataError
from tabserve.model_store import get_model
from tabserve.settings import DataSettings
from tests.factories import mixed_frame, train_cli

SETTINGS = DataSettings(target="label")


def _both(tmp_path: Path) -> tuple[Path, Path]:
    frame = mixed_frame(rows=300, seed=3)
    comma, semicolon = tmp_path / "comma.csv", tmp_path / "semicolon.csv"
    frame.to_csv(comma, index=False)
    frame.to_csv(semicolon, index=False, sep=";", decimal=",")  # "51,37;34.0" -> "51,37;34,0"
    assert "," in semicolon.read_text().splitlines()[1]
    return comma, semicolon


def test_a_semicolon_file_with_decimal_commas_reads_like_the_comma_version(tmp_path: Path) -> None:
    comma, semicolon = _both(tmp_path)
    expected = clean_frame(load_dataset(str(comma)), SETTINGS)
    found = clean_frame(load_dataset(str(semicolon)), SETTINGS)
    assert list(found.columns) == list(expected.columns) == ["income", "age", "city", "label"]
    assert found.dtypes.to_dict() == expected.dtypes.to_dict()
    pd.testing.assert_frame_equal(found, expected)


@pytest.mark.parametrize("sep", ["\t", "|"])
def test_tab_and_pipe_delimiters_are_detected(tmp_path: Path, sep: str) -> None:
    path = tmp_path / "data.csv"
    mixed_frame(rows=50).to_csv(path, index=False, sep=sep)
    frame = load_dataset(str(path))
    assert list(frame.columns) == [" income ", "age", "city", "label"]
    assert frame["age"].dtype == np.float64


def test_a_header_read_as_one_column_says_which_delimiter_and_sep(tmp_path: Path) -> None:
    _, semicolon = _both(tmp_path)
    with pytest.raises(DataError, match=r"one column .*holding ';'.*--sep ';'"):
        load_dataset(str(semicolon), sep=",")  # the wrong delimiter, given explicitly


def test_training_on_the_semicolon_file_gives_the_same_model_schema(tmp_path: Path) -> None:
    comma, semicolon = _both(tmp_path)
    assert train_cli(["--data", str(comma), "--target", "label", "--name", "eu_comma"]) == 0
    assert train_cli(["--data", str(semicolon), "--target", "label", "--name", "eu_semicolon"]) == 0
    assert train_cli(["--data", str(semicolon), "--target", "label", "--name", "eu_sep", "--sep", ";"]) == 0
    schemas = [get_model(f"{name}:latest").schema for name in ("eu_comma", "eu_semicolon", "eu_sep")]
    kinds = [[(spec.name, spec.kind, spec.dtype) for spec in schema.features] for schema in schemas]
    assert kinds[0] == kinds[1] == kinds[2]
    assert ("income", "numeric", "float64") in kinds[1]
