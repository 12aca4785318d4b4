"""Load a training dataset and clean it into a frame the pipeline can learn from.

Cleaning rules (documented in the README; the cell rules are `tabserve.cleaning`'s, shared by
every scoring path):
- column names are stripped of surrounding spaces;
- string cells are stripped, and placeholder markers ("?", "", "NA", ...) become missing;
- an object column whose every non-missing value parses as a number becomes numeric.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tabserve.cleaning import clean_cell, clean_series, to_number
from tabserve.csv_format import check_header, parse_sep, sniff, with_decimal_points
from tabserve.errors import DataError
from tabserve.settings import BUILTIN_DATASET_PREFIX, DataSettings

BUILTIN_TARGET = "diagnosis"
# Share of parseable values above which a text column is taken to be a numeric column with typos.
NUMERIC_SHARE_FOR_TYPOS = 0.9
PARQUET_SUFFIXES = (".parquet", ".pq")


def builtin_breast_cancer() -> pd.DataFrame:
    """scikit-learn's bundled breast-cancer data, target named by class ('malignant'/'benign')."""
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer(as_frame=True)
    frame = bunch.frame.drop(columns=["target"])
    frame[BUILTIN_TARGET] = np.asarray(bunch.target_names)[bunch.target.to_numpy()]
    return frame


def read_csv(
    path: Path, *, sep: str | None = None, na_values: Sequence[str] = (), chunk_rows: int | None = None
) -> Iterator[pd.DataFrame]:
    """Every path that reads a CSV file reads it here (training, `tabserve score`, `/score_file`).

    The delimiter and decimal mark are detected (`csv_format`) unless `sep` is given; chunks of
    `chunk_rows` rows (None: the whole file in one), index = 0-based row number in the file,
    column names stripped of surrounding spaces by the callers' cleaning rules, not here.
    """
    found = sniff(path, parse_sep(sep))
    try:
        options: dict[str, Any] = {
            "sep": found.sep,
            "decimal": found.decimal,
            "keep_default_na": False,
            "na_values": list(na_values),
        }
        frames: Iterable[pd.DataFrame] = (
            [pd.read_csv(path, **options)]
            if chunk_rows is None
            else pd.read_csv(path, chunksize=chunk_rows, **options)
        )
        for frame in frames:
            check_header(frame.columns, path.name)
            yield with_decimal_points(frame) if found.decimal == "," else frame
    except pd.errors.EmptyDataError:
        raise DataError(f"data file is empty: {path}") from None
    except pd.errors.ParserError as error:
        raise DataError(f"cannot parse {path}: {error}") from None
    except UnicodeDecodeError as error:
        raise DataError(
            f"{path.name} is not UTF-8 text (byte {error.object[error.start]:#04x} at offset {error.start} "
            "of a block): send CSV encoded as UTF-8, or Parquet"
        ) from None


def read_table(path: Path, sep: str | None = None) -> pd.DataFrame:
    """Read a CSV or Parquet file as strings-as-found (cleaning happens after)."""
    if not path.exists():
        raise DataError(f"data file not found: {path}")
    if path.stat().st_size == 0:
        raise DataError(f"data file is empty: {path}")
    try:
        if path.suffix.lower() in PARQUET_SUFFIXES:
            return pd.read_parquet(path)
        return next(read_csv(path, sep=sep))
    except (OSError, ValueError) as error:
        raise DataError(f"cannot read {path}: {error}") from None


def load_dataset(source: str, sep: str | None = None) -> pd.DataFrame:
    """Load the configured dataset: a builtin name or a CSV/Parquet path (`sep`: CSV's delimiter)."""
    if source.startswith(BUILTIN_DATASET_PREFIX):
        name = source.removeprefix(BUILTIN_DATASET_PREFIX)
        if name != "breast_cancer":
            raise DataError(f"unknown builtin dataset {source!r}; known: sklearn:breast_cancer")
        return builtin_breast_cancer()
    return read_table(Path(source), sep)


def clean_text(column: pd.Series, markers: frozenset[str]) -> pd.Series:
    """Pure: strip string cells; a cell that is a missing marker becomes NaN."""
    cleaned = column.map(lambda value: clean_cell(value, markers))
    return cleaned.where(cleaned.notna(), np.nan).astype(object)


def _unparseable(column: pd.Series) -> pd.Series:
    """The non-missing values of `column` that do not parse as numbers."""
    present = column.dropna()
    _, errors = clean_series(present, lambda value: to_number(value, ()))
    return present[errors.notna()]


def clean_frame(frame: pd.DataFrame, settings: DataSettings) -> pd.DataFrame:
    """Pure: strip names and cells, turn missing markers into NaN, make numeric text numeric."""
    markers = frozenset(settings.missing_markers)
    cleaned = frame.rename(columns=lambda name: str(name).strip())
    duplicated = cleaned.columns[cleaned.columns.duplicated()].tolist()
    if duplicated:
        raise DataError(f"duplicate column names after stripping spaces: {duplicated}")
    forced_numeric = set(settings.numeric or [])
    forced_categorical = set(settings.categorical or []) | set(settings.datetime or [])
    for name in cleaned.columns:
        column = cleaned[name]
        if column.dtype != object and not isinstance(column.dtype, pd.StringDtype):
            continue
        column = clean_text(column.astype(object), markers)
        bad = _unparseable(column)
        present = column.notna().sum()
        if name in forced_categorical or (name == settings.target and bad.size):
            cleaned[name] = column
        elif not bad.size and present:
            cleaned[name] = column.map(lambda value: to_number(value, ())).astype(float)
        elif name in forced_numeric or (present and 1 - bad.size / present >= NUMERIC_SHARE_FOR_TYPOS):
            row = int(bad.index[0]) + 1
            raise DataError(
                f"column {name!r} is numeric but has {bad.size} unparseable value(s), "
                f"e.g. {bad.iloc[0]!r} in data row {row}; fix them or add the column to "
                "data.categorical or the marker to data.missing_markers"
            )
        else:
            cleaned[name] = column
    return cleaned


def split_features(frame: pd.DataFrame, settings: DataSettings) -> tuple[pd.DataFrame, pd.Series]:
    """Validate the target and return (features, target) with unlabeled rows dropped."""
    if frame.empty:
        raise DataError("the dataset has no rows")
    if settings.target not in frame.columns:
        raise DataError(f"target column {settings.target!r} not found; columns are: {list(frame.columns)}")
    labeled = frame[frame[settings.target].notna()]
    if labeled.empty:
        raise DataError(f"target column {settings.target!r} has no values")
    dropped = [settings.target]
    if settings.id_column:
        dropped.append(settings.id_column)
    features = labeled.drop(columns=[name for name in dropped if name in labeled.columns])
    if features.shape[1] == 0:
        raise DataError("no feature columns left after removing the target, id and dropped columns")
    return features.reset_index(drop=True), labeled[settings.target].reset_index(drop=True)
