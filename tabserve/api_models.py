"""Request models generated from the stored feature schema.

The API and its OpenAPI document therefore match the model they serve.

Contract (README "API"): every feature key must be present; its value may be null (missing,
imputed by the pipeline); unknown keys are rejected; numbers must be finite.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, create_model

from tabserve.schema import NUMERIC, FeatureSchema, FeatureSpec


def _field_name(index: int) -> str:
    # Feature names may hold spaces or symbols: fields get safe names, the JSON key is the alias.
    return f"f{index}"


def _describe(feature: FeatureSpec) -> str:
    if feature.kind == NUMERIC:
        return f"numeric; seen in training: [{feature.minimum}, {feature.maximum}]; null = missing"
    listed = ", ".join(feature.categories or [])
    return f"categorical; seen in training: {listed}; unseen values are accepted; null = missing"


def _field(feature: FeatureSpec) -> tuple[Any, Any]:
    extra: dict[str, Any] = {"x-kind": feature.kind}
    if feature.categories is not None:
        extra["x-categories"] = feature.categories
    if feature.kind == NUMERIC:
        annotation: Any = float | None
        return annotation, Field(
            alias=feature.name,
            description=_describe(feature),
            allow_inf_nan=False,
            json_schema_extra=extra,
        )
    return str | None, Field(alias=feature.name, description=_describe(feature), json_schema_extra=extra)


def example_record(schema: FeatureSchema, reference: pd.DataFrame) -> dict[str, Any]:
    """A real record from the model's reference sample: the OpenAPI example runs as it is."""
    row = reference.iloc[0]
    example: dict[str, Any] = {}
    for feature in schema.features:
        value = row[feature.name]
        if isinstance(value, float) and math.isnan(value):
            value = None
        example[feature.name] = float(value) if feature.kind == NUMERIC and value is not None else value
    return example


def record_model(
    schema: FeatureSchema, example: dict[str, Any], key_field: str | None = None
) -> type[BaseModel]:
    """A pydantic model with one field per feature, keyed by the feature's real name.

    `key_field`: the sticky routing key (`deployment.sticky_field`); when it is not a feature it
    is an optional extra field, logged with the record and never given to the model.
    """
    fields = {_field_name(i): _field(feature) for i, feature in enumerate(schema.features)}
    if key_field is not None and key_field not in schema.names:
        fields["routing_key"] = (
            str | None,
            Field(default=None, alias=key_field, description="Sticky routing key (not a feature)."),
        )
    return create_model(  # type: ignore[call-overload,no-any-return]
        "Record",
        __config__=ConfigDict(
            extra="forbid",
            populate_by_name=False,
            coerce_numbers_to_str=True,
            json_schema_extra={"example": example},
        ),
        **fields,
    )
