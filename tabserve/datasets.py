"""Load a training dataset and clean it into a frame the pipeline can learn from.

Cleaning rules (documented in the README; the cell rules are `tabserve.cleaning`'s, shared by
every scoring path):
- column names are stripped of surrounding spaces;
- string cells are stripped, and placeholder markers ("?", "", "NA", ...) become missing;
- an object column whose every non-missing value parses as a number becomes numeric.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tabserve.cleaning import clean_cell, clean_series, to_number
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


def read_table(path: Path) -> pd.DataFrame:
    """Read a CSV or Parquet file as strings-as-found (cleaning happens after)."""
    if not path.exists():
        raise DataError(f"data file not found: {path}")
    if path.stat().st_size == 0:
        raise DataError(f"data file is empty: {path}")
    try:
        if path.suffix.lower() in PARQUET_SUFFIXES:
            return pd.read_parquet(path)
        return pd.read_csv(path, keep_default_na=False, na_values=[], skipinitialspace=False)
    except pd.errors.EmptyDataError:
        raise DataError(f"data file is empty: {path}") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as error:
        raise DataError(f"cannot read {path}: {error}") from None


def load_dataset(source: str) -> pd.DataFrame:
    """Load the configured dataset: a builtin name or a CSV/Parquet path."""
    if source.startswith(BUILTIN_DATASET_PREFIX):
        name = source.removeprefix(BUILTIN_DATASET_PREFIX)
        if name != "breast_cancer":
            raise DataError(f"unknown builtin dataset {source!r}; known: sklearn:breast_cancer")
        return builtin_breast_cancer()
    return read_table(Path(source))


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
