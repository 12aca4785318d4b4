"""`/explain`, `/explain_batch` and `GET /explain/{request_id}`: what service.py delegates to.

An explanation is scored, routed, logged and counted exactly like `/predict` (through the
deployment), then explained by the variant that answered, named in the answer. A logged
prediction is explained again from its logged features by the model version that answered it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from http import HTTPStatus
from typing import TYPE_CHECKING, Annotated, Any, Literal

from bentoml.exceptions import BentoMLException
from pydantic import BaseModel, Field, WithJsonSchema
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from tabserve.errors import ModelNotFoundError
from tabserve.explanations.answers import explanations
from tabserve.explanations.cache import Explainers, ExplanationsUnavailableError
from tabserve.explanations.chart import explanation_page
from tabserve.model_store import get_model
from tabserve.predictions.lookup import logged_prediction
from tabserve.serving.responses import Prediction
from tabserve.settings import ExplanationSettings

if TYPE_CHECKING:
    from tabserve.deployment.deployment import Deployment
    from tabserve.predictions.logger import PredictionLogger

LIMIT_SETTING = "serving.explanations.max_batch_records"
# One number, or one per class label (multiclass): documented as oneOf (BentoML's OpenAPI
# writer keeps only the first branch of an anyOf: see responses.LABEL_SCHEMA).
PER_CLASS = {"oneOf": [{"type": "number"}, {"type": "object", "additionalProperties": {"type": "number"}}]}
CONTRIBUTIONS = {
    "oneOf": [
        {"type": "object", "additionalProperties": {"type": "number"}},
        {
            "type": "object",
            "additionalProperties": {"type": "object", "additionalProperties": {"type": "number"}},
        },
    ]
}


class Explanation(BaseModel):
    method: str = Field(description="tree_shap (exact) or permutation (the model-agnostic estimate).")
    output_space: Literal["log_odds", "probability", "target"]
    base_value: Annotated[float | dict[str, float], WithJsonSchema(PER_CLASS)]
    output: Annotated[float | dict[str, float], WithJsonSchema(PER_CLASS)]
    contributions: Annotated[
        dict[str, float] | dict[str, dict[str, float]], WithJsonSchema(CONTRIBUTIONS)
    ] = Field(description="Per column the user sent (multiclass: per class label, then per column).")


class Explained(Prediction):
    explanation: Explanation


class ExplainedBatch(BaseModel):
    predictions: list[Explained]


def too_many(count: int, limit: int) -> BentoMLException:
    return BentoMLException(
        f"{count} records: /explain_batch takes at most {limit} ({LIMIT_SETTING})",
        error_code=HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    )


class ServedExplanations:
    def __init__(
        self,
        settings: ExplanationSettings,
        deployment: Deployment,
        engine: Engine,
        prediction_logger: PredictionLogger | None,
    ) -> None:
        self.settings, self.deployment = settings, deployment
        self.engine, self.prediction_logger = engine, prediction_logger
        self.explainers = Explainers(settings)

    def explain(self, records: Sequence[dict[str, Any]], keys: Sequence[str | None]) -> list[Explained]:
        """Score (routed, logged) and explain each record by the variant that answered it."""
        if len(records) > self.settings.max_batch_records:
            raise too_many(len(records), self.settings.max_batch_records)
        results = self.deployment.predict_many(records, keys)
        groups: dict[str, list[int]] = {}
        for index, result in enumerate(results):
            groups.setdefault(result["variant"], []).append(index)
        for variant, indexes in groups.items():
            scorer = self.deployment.variants.scorers[variant]
            explainer = functools.partial(self.explainers.get, scorer.stored, scorer.predictor)
            found = self._explained(explainer, [records[index] for index in indexes])
            for index, explanation in zip(indexes, found, strict=True):
                results[index]["explanation"] = explanation
        return [Explained.model_validate(result) for result in results]

    def lookup(self, request_id: str) -> tuple[HTTPStatus, dict[str, Any]]:
        """A logged prediction explained again by the model version that answered it."""
        row = logged_prediction(self.engine, request_id)
        if row is None and self.prediction_logger is not None and self.prediction_logger.flush(timeout_s=5):
            row = logged_prediction(self.engine, request_id)  # it may still have been queued here
        if row is None:
            return HTTPStatus.NOT_FOUND, {"error": f"no logged prediction with request id {request_id}"}
        tag = row["model"]
        served = {scorer.tag: scorer for scorer in self.deployment.variants.scorers.values()}
        try:
            stored = served[tag].stored if tag in served else get_model(tag)
        except ModelNotFoundError:
            return HTTPStatus.GONE, {
                "error": f"model {tag}, which answered {request_id}, is no longer in the store"
            }
        predictor = served[tag].predictor if tag in served else None
        explainer = functools.partial(self.explainers.get, stored, predictor)
        (explanation,) = self._explained(explainer, [row["features"]])
        answer = {key: row[key] for key in ("prediction", "model", "variant", "request_id")}
        if row["probabilities"] is not None:
            answer["probabilities"] = row["probabilities"]
        return HTTPStatus.OK, Explained.model_validate({**answer, "explanation": explanation}).model_dump(
            mode="json", exclude_none=True
        )

    @staticmethod
    def _explained(explainer: Callable[[], Any], records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        try:
            return explanations(explainer().explain_records(records))
        except ExplanationsUnavailableError as error:
            raise BentoMLException(str(error), error_code=HTTPStatus.NOT_IMPLEMENTED) from None


def lookup_app(current: Callable[[], ServedExplanations | None]) -> Starlette:
    """GET /{request_id}, mounted at /explain; `?view=html`: the explanation as a chart page."""

    async def explain_logged(request: Request) -> Response:
        served = current()
        if served is None:
            return JSONResponse(
                {"error": "the service is starting"}, status_code=HTTPStatus.SERVICE_UNAVAILABLE
            )
        try:
            status, body = await run_in_threadpool(served.lookup, request.path_params["request_id"])
        except BentoMLException as error:
            status, body = error.error_code, {"error": str(error)}
        if status == HTTPStatus.OK and request.query_params.get("view") == "html":
            return HTMLResponse(explanation_page(body))
        return JSONResponse(body, status_code=status)

    return Starlette(routes=[Route("/{request_id}", explain_logged, methods=["GET"])])
