"""The feature schema: what the model expects, inferred from training data and stored with it."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from tabserve.errors import DataError

NUMERIC: Literal["numeric"] = "numeric"
CATEGORICAL: Literal["categorical"] = "categorical"
# Above this many distinct values only the most frequent are listed in the schema.
MAX_LISTED_CATEGORIES = 100


class FeatureSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    kind: Literal["numeric", "categorical"]
    dtype: str
    categories: list[str] | None = None
    minimum: float | None = None
    maximum: float | None = None
    missing_share: float = 0.0


class FeatureSchema(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    features: list[FeatureSpec]

    @property
    def names(self) -> list[str]:
        return [feature.name for feature in self.features]

    @property
    def numeric(self) -> list[str]:
        return [feature.name for feature in self.features if feature.kind == NUMERIC]

    @property
    def categorical(self) -> list[str]:
        return [feature.name for feature in self.features if feature.kind == CATEGORICAL]

    def to_metadata(self) -> list[dict[str, Any]]:
        return [feature.model_dump(exclude_none=True) for feature in self.features]

    @classmethod
    def from_metadata(cls, items: list[dict[str, Any]]) -> FeatureSchema:
        return cls(features=[FeatureSpec(**item) for item in items])


def _describe(column: pd.Series, kind: Literal["numeric", "categorical"]) -> FeatureSpec:
    missing_share = round(float(column.isna().mean()), 6)
    if kind == NUMERIC:
        present = column.dropna()
        return FeatureSpec(
            name=str(column.name),
            kind=kind,
            dtype=str(column.dtype),
            minimum=float(present.min()) if present.size else None,
            maximum=float(present.max()) if present.size else None,
            missing_share=missing_share,
        )
    counts = column.dropna().astype(str).value_counts()
    return FeatureSpec(
        name=str(column.name),
        kind=kind,
        dtype=str(column.dtype),
        categories=sorted(counts.index[:MAX_LISTED_CATEGORIES].tolist()),
        missing_share=missing_share,
    )


def infer_schema(
    features: pd.DataFrame,
    numeric: list[str] | None = None,
    categorical: list[str] | None = None,
) -> FeatureSchema:
    """Numeric dtypes are numeric, everything else categorical; explicit lists win."""
    forced_numeric, forced_categorical = set(numeric or []), set(categorical or [])
    unknown = (forced_numeric | forced_categorical) - set(features.columns)
    if unknown:
        raise DataError(f"configured feature columns not in the data: {sorted(unknown)}")
    specs = []
    for name in features.columns:
        column = features[name]
        is_numeric = pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
        if name in forced_categorical or (not is_numeric and name not in forced_numeric):
            specs.append(_describe(column, CATEGORICAL))
        else:
            specs.append(_describe(column, NUMERIC))
    return FeatureSchema(features=specs)


def as_category(value: Any) -> Any:
    """Categories are strings; every missing marker becomes NaN, which the imputer recognises."""
    if isinstance(value, str):
        return value
    if value is None or pd.isna(value):
        return np.nan
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # pandas turns [3, None] into [3.0, nan]: the category is still "3"
    return str(value)


def coerce_frame(frame: pd.DataFrame, schema: FeatureSchema) -> pd.DataFrame:
    """Pure: columns in schema order, numeric as float, categorical as object strings."""
    out = pd.DataFrame(index=frame.index)
    for feature in schema.features:
        column = frame[feature.name]
        if feature.kind == NUMERIC:
            out[feature.name] = pd.to_numeric(column, errors="raise").astype(float)
        else:
            out[feature.name] = column.map(as_category).astype(object)
    return out
