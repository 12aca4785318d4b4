"""The answers of `/predict` and `/predict_batch`, as pydantic models.

Not `dict[str, Any]`: BentoML wraps a `dict` return in a root model whose media type it derives
from a JSON schema, rebuilt for every response (`IOMixin.mime_type` -> `model_json_schema`:
~15% of a worker's busy samples at c=32, bench/profile.py). A model class answers
`application/json` at once and is serialised by pydantic's core; the OpenAPI document names the
fields, too.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field, WithJsonSchema

# A class label in its own JSON type (classes may be text, numbers or booleans), or a
# regressor's value. bool first: pydantic's smart union keeps the exact type it is given.
# Documented as `oneOf`, not pydantic's `anyOf`: BentoML's OpenAPI writer replaces an `anyOf`
# by its first branch (`_flatten_field`), which declared every prediction a boolean. The three
# JSON types are disjoint (an integer is a `number`), so exactly one branch matches.
LABEL_SCHEMA = {"oneOf": [{"type": "boolean"}, {"type": "number"}, {"type": "string"}]}
Label = Annotated[bool | int | float | str, WithJsonSchema(LABEL_SCHEMA)]


def _absent(value: Any) -> bool:
    return value is None


class Prediction(BaseModel):
    prediction: Label = Field(description="The predicted class, or the regressor's value.")
    probabilities: dict[str, float] | None = Field(
        default=None,
        exclude_if=_absent,  # a regressor's answer has no such key, as before
        description="Probability per class (classifiers only).",
    )
    model: str = Field(description="Tag of the model that answered.")
    variant: str = Field(description="The deployment variant that answered.")
    request_id: str = Field(description="The prediction's id: send it back with /feedback.")


class Predictions(BaseModel):
    predictions: list[Prediction]


def prediction(result: dict[str, Any]) -> Prediction:
    return Prediction.model_validate(result)


def predictions(results: list[dict[str, Any]]) -> Predictions:
    return Predictions(predictions=[Prediction.model_validate(result) for result in results])
