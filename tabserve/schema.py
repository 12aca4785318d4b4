"""The feature schema: what the model expects, decided at training from the data and stored with it.

Column roles (README "Training"): numeric, categorical or datetime features; ID-like, constant
and all-missing columns are dropped (each with a reason, printed by training and stored).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from tabserve.cleaning import (
    BOOLEAN_TEXT,
    DEFAULT_MISSING_MARKERS,
    CleaningError,
    datetime_format,
    to_category,
    to_datetime_text,
    to_number,
)
from tabserve.errors import DataError

Kind = Literal["numeric", "categorical", "datetime"]
NUMERIC: Literal["numeric"] = "numeric"
CATEGORICAL: Literal["categorical"] = "categorical"
DATETIME: Literal["datetime"] = "datetime"
# Only the most frequent categories are listed (API docs stay short); `cardinality` has the count.
MAX_LISTED_CATEGORIES = 20
# A text or integer column with at least this share of distinct values is an identifier, not a feature.
ID_DISTINCT_SHARE = 0.95
ID_MIN_ROWS = 20  # below this, uniqueness says nothing
# Parts a date/time column may become; only those that vary in training are kept.
DATE_PARTS = ("year", "month", "day", "weekday", "hour", "minute")
TIME_PARTS = ("hour", "minute")
DROP_ID, DROP_CONSTANT, DROP_EMPTY, DROP_CONFIGURED = (
    "id-like",
    "constant",
    "all missing",
    "dropped by configuration",
)


class FeatureSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    kind: Kind
    dtype: str  # the training column's dtype; for datetime: "date" (dates, timestamps) or "time"
    categories: list[str] | None = None  # the most frequent, at most MAX_LISTED_CATEGORIES
    cardinality: int | None = None  # distinct categories seen in training
    parts: list[str] | None = None  # datetime: the numeric parts the Pipeline derives
    minimum: float | None = None
    maximum: float | None = None
    missing_share: float = 0.0

    @property
    def boolean(self) -> bool:
        return self.dtype == "bool"


class FeatureSchema(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    features: list[FeatureSpec]

    @property
    def names(self) -> list[str]:
        return [feature.name for feature in self.features]

    def of_kind(self, kind: Kind) -> list[str]:
        return [feature.name for feature in self.features if feature.kind == kind]

    @property
    def numeric(self) -> list[str]:
        return self.of_kind(NUMERIC)

    @property
    def categorical(self) -> list[str]:
        return self.of_kind(CATEGORICAL)

    @property
    def datetime(self) -> list[str]:
        return self.of_kind(DATETIME)

    def to_metadata(self) -> list[dict[str, Any]]:
        return [feature.model_dump(exclude_none=True) for feature in self.features]

    @classmethod
    def from_metadata(cls, items: list[dict[str, Any]]) -> FeatureSchema:
        return cls(features=[FeatureSpec(**item) for item in items])


def datetime_kind(column: pd.Series) -> str | None:
    """'date' or 'time' when every present value of a text column is ISO 8601 date/time text
    (a typed datetime column, as Parquet holds them, is 'date')."""
    if pd.api.types.is_datetime64_any_dtype(column):
        return "date"
    if column.dtype != object:
        return None
    present = column.dropna()
    if present.empty or not all(isinstance(value, str) for value in present):
        return None
    formats = {datetime_format(value) for value in present.unique()}
    return formats.pop() if len(formats) == 1 and None not in formats else None


def _iso_or_none(value: Any, dtype: str) -> str | None:
    """ISO text for a date/time value; None for a missing or unparseable one (imputed)."""
    try:
        return to_datetime_text(value, (), dtype)
    except CleaningError:
        return None


def datetime_parts(values: pd.Series, dtype: str) -> pd.DataFrame:
    """Pure: ISO date/time text -> numeric parts (NaN where missing). Used by the Pipeline."""
    present = values.notna()
    text = values.map(functools.partial(_iso_or_none, dtype=dtype))
    if dtype == "time":
        filled = text.where(present, "00:00").astype(str)
        stamps = pd.to_datetime("2000-01-01 " + filled, errors="coerce", format="mixed").where(present)
        return pd.DataFrame({"hour": stamps.dt.hour, "minute": stamps.dt.minute}, index=values.index).astype(
            float
        )
    stamps = pd.to_datetime(text.where(present, np.nan), errors="coerce", format="ISO8601", utc=True)
    return pd.DataFrame(
        {
            "year": stamps.dt.year,
            "month": stamps.dt.month,
            "day": stamps.dt.day,
            "weekday": stamps.dt.weekday,
            "hour": stamps.dt.hour,
            "minute": stamps.dt.minute,
        },
        index=values.index,
    ).astype(float)


def _describe(column: pd.Series, kind: Kind) -> FeatureSpec:
    name, missing_share = str(column.name), round(float(column.isna().mean()), 6)
    present = column.dropna()
    if kind == NUMERIC:
        return FeatureSpec(
            name=name,
            kind=kind,
            dtype=str(column.dtype),
            minimum=float(present.min()) if present.size else None,
            maximum=float(present.max()) if present.size else None,
            missing_share=missing_share,
        )
    if kind == DATETIME:
        dtype = datetime_kind(column) or "date"
        parts = datetime_parts(column, dtype)
        varying = [
            part for part in (TIME_PARTS if dtype == "time" else DATE_PARTS) if parts[part].nunique() > 1
        ]
        return FeatureSpec(name=name, kind=kind, dtype=dtype, parts=varying, missing_share=missing_share)
    boolean = pd.api.types.is_bool_dtype(column) or (
        present.size > 0
        and all(isinstance(value, bool | np.bool_) or str(value).lower() in BOOLEAN_TEXT for value in present)
    )
    counts = present.map(lambda value: to_category(value, DEFAULT_MISSING_MARKERS)).value_counts()
    counts = counts.sort_index(kind="stable").sort_values(ascending=False, kind="stable")
    return FeatureSpec(
        name=name,
        kind=kind,
        dtype="bool" if boolean else str(column.dtype),
        categories=[str(value) for value in counts.index[:MAX_LISTED_CATEGORIES]],
        cardinality=len(counts),
        missing_share=missing_share,
    )


def _is_numeric(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)


def drop_reason(column: pd.Series) -> str | None:
    """Why a column is no feature (all missing, constant, an identifier), or None."""
    present = column.dropna()
    if present.empty:
        return DROP_EMPTY
    distinct = present.nunique()
    if distinct == 1:
        return f"{DROP_CONSTANT} (always {present.iloc[0]!r})"
    text = column.dtype == object and datetime_kind(column) is None
    integer = pd.api.types.is_integer_dtype(column) or (
        _is_numeric(column) and bool(np.all(np.mod(present.to_numpy(dtype=float), 1) == 0))
    )
    identifying = distinct >= ID_DISTINCT_SHARE * len(present) if text else distinct == len(present)
    if len(present) >= ID_MIN_ROWS and (text or integer) and identifying:
        return f"{DROP_ID} ({distinct} distinct values in {len(present)} rows)"
    return None


def infer_roles(
    features: pd.DataFrame,
    numeric: Iterable[str] | None = None,
    categorical: Iterable[str] | None = None,
    datetime: Iterable[str] | None = None,
    drop: Iterable[str] = (),
) -> tuple[FeatureSchema, dict[str, str]]:
    """(schema, dropped column -> reason). Configured lists win over detection; a configured
    column is dropped only when it is entirely missing."""
    forced = {
        NUMERIC: set(numeric or []),
        CATEGORICAL: set(categorical or []),
        DATETIME: set(datetime or []),
    }
    configured = set().union(*forced.values())
    unknown = (configured | set(drop)) - set(features.columns)
    if unknown:
        raise DataError(f"configured feature columns not in the data: {sorted(unknown)}")
    dropped = {name: DROP_CONFIGURED for name in features.columns if name in set(drop)}
    specs = []
    for name in features.columns:
        if name in dropped:
            continue
        column = features[name]
        reason = drop_reason(column)
        if reason is not None and (name not in configured or reason == DROP_EMPTY):
            dropped[str(name)] = reason
            continue
        kind: Kind
        if name in configured:
            kind = next(k for k, names in forced.items() if name in names)  # type: ignore[misc]
        elif _is_numeric(column):
            kind = NUMERIC
        elif datetime_kind(column) is not None:
            kind = DATETIME
        else:
            kind = CATEGORICAL
        specs.append(_describe(column, kind))
    if not specs:
        raise DataError(f"no feature columns left; dropped: {dropped}")
    return FeatureSchema(features=specs), dropped


def infer_schema(
    features: pd.DataFrame,
    numeric: list[str] | None = None,
    categorical: list[str] | None = None,
) -> FeatureSchema:
    """The schema of every column (nothing dropped): for frames whose columns are all features."""
    forced_numeric, forced_categorical = set(numeric or []), set(categorical or [])
    unknown = (forced_numeric | forced_categorical) - set(features.columns)
    if unknown:
        raise DataError(f"configured feature columns not in the data: {sorted(unknown)}")
    specs = []
    for name in features.columns:
        column = features[name]
        if name in forced_categorical or (not _is_numeric(column) and name not in forced_numeric):
            specs.append(
                _describe(
                    column,
                    DATETIME if datetime_kind(column) and name not in forced_categorical else CATEGORICAL,
                )
            )
        else:
            specs.append(_describe(column, NUMERIC))
    return FeatureSchema(features=specs)


def cell_cleaner(spec: FeatureSpec, markers: Iterable[str]) -> Callable[[Any], Any]:
    """The shared cleaning rule for one feature's raw values (`tabserve.cleaning`)."""
    markers = frozenset(markers)
    if spec.kind == NUMERIC:
        return functools.partial(to_number, markers=markers)
    if spec.kind == CATEGORICAL:
        return functools.partial(to_category, markers=markers, boolean=spec.boolean)
    return functools.partial(to_datetime_text, markers=markers, expected=spec.dtype)


def _category(value: Any, boolean: bool) -> str | None:
    return to_category(value, (), boolean)


def coerce_frame(frame: pd.DataFrame, schema: FeatureSchema) -> pd.DataFrame:
    """Pure: columns in schema order, numeric as float, categories and dates as object text.

    The columns are built apart and joined once: inserting them one by one into a frame made
    pandas copy (and warn about) a fragmented frame on every wide table (200 features).
    """
    out: dict[str, pd.Series] = {}
    for feature in schema.features:
        column = frame[feature.name]
        if feature.kind == NUMERIC:
            out[feature.name] = pd.to_numeric(column, errors="raise").astype(float)
        elif feature.kind == CATEGORICAL:
            cleaned = column.map(functools.partial(_category, boolean=feature.boolean))
            out[feature.name] = cleaned.where(cleaned.notna(), np.nan).astype(object)
        else:
            text = column.map(functools.partial(to_datetime_text, markers=(), expected=feature.dtype))
            out[feature.name] = text.where(text.notna(), np.nan).astype(object)
    return pd.DataFrame(out, index=frame.index)
