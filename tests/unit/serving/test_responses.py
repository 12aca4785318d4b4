"""The typed answers: the same JSON as before, and BentoML serialises them without a schema per response."""

from __future__ import annotations

import json
from typing import Any

import bentoml
import jsonschema  # schemathesis's validator: the one the fuzz test judges answers with

from tabserve.serving.responses import Prediction, prediction, predictions

CLASSIFIED = {"prediction": "benign", "probabilities": {"benign": 0.75, "malignant": 0.25}}
ANSWERED = {"model": "m:1", "variant": "default", "request_id": "r" * 32}


def test_a_classifiers_answer_keeps_its_fields_and_label_types() -> None:
    for label in ("benign", 1, True, 2.5):
        body = json.loads(prediction({**CLASSIFIED, "prediction": label, **ANSWERED}).model_dump_json())
        assert body == {**CLASSIFIED, "prediction": label, **ANSWERED}
        assert type(body["prediction"]) is type(label)


def test_a_regressors_answer_has_no_probabilities_key() -> None:
    body = json.loads(predictions([{"prediction": 121.5, **ANSWERED}]).model_dump_json())
    assert body == {"predictions": [{"prediction": 121.5, **ANSWERED}]}


def test_bentoml_takes_the_model_class_as_the_output_spec() -> None:
    """A `dict` return is wrapped in a root model whose JSON schema BentoML rebuilds per response."""

    @bentoml.service
    class Answering:
        @bentoml.api
        def typed(self, record: dict[str, Any]) -> Prediction:
            return prediction({**CLASSIFIED, **ANSWERED})

        @bentoml.api
        def untyped(self, record: dict[str, Any]) -> dict[str, Any]:
            return {}

    apis = Answering.apis  # type: ignore[attr-defined]
    assert issubclass(apis["typed"].output_spec, Prediction)
    assert apis["typed"].output_spec.mime_type() == "application/json"
    assert not issubclass(apis["untyped"].output_spec, Prediction)


def test_the_openapi_document_accepts_every_label_type() -> None:
    """BentoML's OpenAPI writer keeps only the first branch of an `anyOf`: the document said
    every prediction was a boolean, and the fuzz test saw `"benign"` violate it (CI, stop 17)."""

    @bentoml.service
    class Documented:
        @bentoml.api
        def predict(self, record: dict[str, Any]) -> Prediction:
            return prediction({**CLASSIFIED, **ANSWERED})

    document = Documented.openapi_spec.asdict()  # type: ignore[attr-defined]
    answer = document["paths"]["/predict"]["post"]["responses"][200]["content"]["application/json"]
    for label in ("benign", 1, True, 2.5):
        body = json.loads(prediction({**CLASSIFIED, "prediction": label, **ANSWERED}).model_dump_json())
        jsonschema.validate(body, answer["schema"])
    try:
        jsonschema.validate({**CLASSIFIED, "prediction": None, **ANSWERED}, answer["schema"])
    except jsonschema.ValidationError:
        pass
    else:
        raise AssertionError("a null prediction passed: the label schema accepts anything")
