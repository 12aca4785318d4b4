"""The BentoML service: thin. Scoring lives in `tabserve`; this file declares the HTTP surface."""

import functools
import os
import time
from collections.abc import Callable
from http import HTTPStatus
from pathlib import Path
from typing import Annotated, Any, TypeVar

import bentoml
from bentoml.exceptions import BentoMLException
from pydantic import BaseModel, Field

from tabserve.api_models import example_record, record_model
from tabserve.cpu_budget import auto_workers, available_cores
from tabserve.deployment.admin_api import ADMIN_TOKEN_ENV, AdminApi
from tabserve.deployment.deployment import Deployment
from tabserve.errors import DataError
from tabserve.model_store import get_model
from tabserve.monitoring.live_metrics import start_live_drift
from tabserve.predictions.logger import open_prediction_logger
from tabserve.predictions.migration import stop_if_behind
from tabserve.predictions.outcomes import OutcomeEvent
from tabserve.predictions.store import make_engine
from tabserve.serving.api_key_guard import ApiKeyGuard, access_control, warn_if_open
from tabserve.serving.explanations import Explained, ExplainedBatch, ServedExplanations, lookup_app
from tabserve.serving.feedback import (
    FEEDBACK_TOKEN_ENV,
    FeedbackError,
    LabelUpdate,
    authorize,
    record_feedback,
)
from tabserve.serving.file_tasks import TASK_ID_RULE, ProgressStore, is_task_id, run_file_task
from tabserve.serving.http_errors import quiet_client_errors
from tabserve.serving.http_limits import HttpLimits, RequestGuard
from tabserve.serving.metrics import DriftMetricsRefresher, service_metrics
from tabserve.serving.openapi_doc import OpenApiAmendments
from tabserve.serving.outcomes import record_outcomes
from tabserve.serving.responses import Prediction, Predictions, prediction, predictions
from tabserve.serving.runtime import info_app, limit_worker_threads, tune_gc
from tabserve.serving.task_ids import TaskIds, task_id_of
from tabserve.serving.tracing import bentoml_tracing
from tabserve.settings import load_settings

SETTINGS = load_settings()
stop_if_behind(SETTINGS.monitoring)  # before any worker: `tabserve db upgrade` first, if it must
quiet_client_errors()  # a client's mistake is one WARNING line in the log, not a traceback
ACCESS = access_control(SETTINGS.serving)  # API keys (docs/privacy.md); a missing required key stops here
if bentoml.server_context.worker_index is None:  # the serving process, not each worker: one line
    warn_if_open(ACCESS)
# Every variant, looked up once; a missing one fails here, with how to train one.
MODELS = {name: get_model(tag) for name, tag in SETTINGS.variants.items()}
STORED = MODELS[str(SETTINGS.policy.primary)]  # the request schema and example come from it
STICKY_FIELD = SETTINGS.deployment.sticky_field
Record = record_model(
    STORED.schema,
    example_record(STORED.schema, STORED.load_reference()),
    STICKY_FIELD,
    STORED.markers,
    STORED.unused_columns,
)
Records = Annotated[
    list[Record],  # type: ignore[valid-type]
    Field(min_length=1, max_length=SETTINGS.serving.max_batch_records),
]


# Feedback for a prediction another worker has not written yet waits this many flush intervals.
FEEDBACK_WAIT_INTERVALS, FEEDBACK_POLL_S = 10, 0.05
# Read once, at start-up; API keys with the feedback right take its place (one Bearer header).
FEEDBACK_TOKEN = None if ACCESS.ring else os.environ.get(FEEDBACK_TOKEN_ENV) or None
NO_NUL = r"^[^\x00]*$"  # PostgreSQL text cannot hold NUL: a 400 here, not a 500 at the insert
RequestId = Annotated[str, Field(min_length=1, max_length=64, pattern=NO_NUL)]
# A label in its JSON type or as its text (1 or "1", true or "True").
Label = bool | int | float | Annotated[str, Field(pattern=NO_NUL)]
Actor = Annotated[str | None, Field(max_length=200, description="Who changes the label (audit trail).")]
Reason = Annotated[str | None, Field(max_length=500, description="Why (audit trail).")]


class Feedback(BaseModel):
    request_id: RequestId
    label: Label
    correct: bool = Field(default=False, description="Required to change a label already set.")
    actor: Actor = None
    reason: Reason = None


OutcomeName = Annotated[str, Field(min_length=1, max_length=64, description="A name in deployment.outcomes.")]
OutcomeValue = Annotated[
    bool | int | float, Field(description="A rate: 1 (it happened) or 0; a value: a number.")
]


class Outcome(BaseModel):
    request_id: RequestId
    name: OutcomeName
    value: OutcomeValue = 1
    actor: Actor = None


WORKERS = SETTINGS.serving.workers or auto_workers(available_cores())
Service = TypeVar("Service", bound=type)
Stored = TypeVar("Stored")


def _current_deployment() -> Deployment | None:
    """This worker's deployment, for the admin API's handlers; None until the service has started."""
    try:
        return bentoml.get_current_service().deployment  # type: ignore[no-any-return]
    except BentoMLException:  # "service isn't instantiated yet"
        return None


def _with_models(service: Service) -> Service:
    """One `BentoModel` class attribute per variant: `bentoml build` packs each one into the Bento.

    BentoML finds a service's models among its class attributes; the variants come from the
    configuration, so their attributes are set here rather than written out in the class body.
    """
    for name, stored in MODELS.items():
        setattr(service, f"model_{name}", bentoml.models.BentoModel(stored.tag))
    return service


def _current_explanations() -> ServedExplanations | None:
    """This worker's explanations, for `GET /explain/{request_id}`; None until the service has started."""
    try:
        return bentoml.get_current_service().explanations  # type: ignore[no-any-return]
    except BentoMLException:
        return None


ADMIN_APP = AdminApi(os.environ.get(ADMIN_TOKEN_ENV), _current_deployment).app()  # token read once


@bentoml.service(
    workers=WORKERS,
    traffic={"timeout": 60},
    logging={"access": {"enabled": False}},
    tracing=bentoml_tracing(SETTINGS.serving.tracing),
)
@bentoml.asgi_app(info_app(STORED), path="/model")
@bentoml.asgi_app(ADMIN_APP, path="/admin")
@bentoml.asgi_app(lookup_app(_current_explanations), path="/explain")
@_with_models
class TabularModel:
    """Predictions from a scikit-learn pipeline trained by `tabserve train`."""

    def __init__(self) -> None:
        limit_worker_threads(SETTINGS.serving, WORKERS)  # before any model loads
        metrics = service_metrics()
        self.prediction_logger = open_prediction_logger(SETTINGS.monitoring)
        logger_engine = self.prediction_logger.engine if self.prediction_logger else None
        self.engine = logger_engine or make_engine(SETTINGS.monitoring.url)
        # All variants' models load here, once per worker; the policy picks one per request.
        self.deployment = Deployment(SETTINGS, MODELS, self.engine, self.prediction_logger, metrics)
        self.explanations = ServedExplanations(
            SETTINGS.serving.explanations, self.deployment, self.engine, self.prediction_logger
        )
        self.refresher = DriftMetricsRefresher(self.engine, metrics, SETTINGS.monitoring.metrics_refresh_s)
        # PSI and estimated quality of every loaded variant, runtime-added ones included.
        self.live_drift = start_live_drift(self.engine, self.deployment.models, SETTINGS.monitoring)
        self.progress = ProgressStore(Path(SETTINGS.serving.task_dir))
        tune_gc(SETTINGS.serving.gc_threshold)

    @bentoml.on_shutdown
    def close(self) -> None:
        self.refresher.close()
        if self.live_drift is not None:
            self.live_drift.close()
        self.deployment.close()
        if self.prediction_logger is not None:
            self.prediction_logger.close()  # drains the queue: a graceful shutdown loses nothing

    @bentoml.api
    async def predict(self, record: Record, ctx: bentoml.Context) -> Prediction:  # type: ignore[valid-type]
        """Score one record. Concurrent calls are batched together inside the service.

        The answer names the variant that served it. A/B and canary splits are sticky by the
        `deployment.sticky_header` header (default `X-User-ID`) or `deployment.sticky_field`.
        """
        row = record.model_dump(by_alias=True)  # type: ignore[attr-defined]
        return prediction(await self.deployment.predict_one(row, _sticky_key(ctx, row)))

    @bentoml.api
    def predict_batch(self, records: Records, ctx: bentoml.Context) -> Predictions:
        """Score 1 to `serving.max_batch_records` records; each record is routed (and named) on its own."""
        rows = [record.model_dump(by_alias=True) for record in records]  # type: ignore[attr-defined]
        return predictions(self.deployment.predict_many(rows, [_sticky_key(ctx, row) for row in rows]))

    @bentoml.api
    def explain(self, record: Record, ctx: bentoml.Context) -> Explained:  # type: ignore[valid-type]
        """`/predict`, routed and logged the same, with each column's contribution (docs/explanations.md)."""
        row = record.model_dump(by_alias=True)  # type: ignore[attr-defined]
        return self.explanations.explain([row], [_sticky_key(ctx, row)])[0]

    @bentoml.api
    def explain_batch(self, records: Records, ctx: bentoml.Context) -> ExplainedBatch:
        """`/predict_batch` with explanations: at most `serving.explanations.max_batch_records` (413)."""
        rows = [record.model_dump(by_alias=True) for record in records]  # type: ignore[attr-defined]
        return ExplainedBatch(
            predictions=self.explanations.explain(rows, [_sticky_key(ctx, row) for row in rows])
        )

    @bentoml.task
    def score_file(
        self, file: Path, ctx: bentoml.Context, strict: bool = False, sep: str | None = None
    ) -> dict[str, Any]:
        """Score an uploaded CSV/Parquet file into a file with prediction, probability and error columns.

        Lenient by default: bad rows are kept, unscored, with the reason in `error`; `strict`
        fails the task on the first bad row. `sep`: a CSV file's delimiter (, ; | or tab;
        default: detected from its first lines, with a decimal comma when ';' separates fields).
        Poll `/score_file/status` or `/score_file_progress`;
        download the scored file from `/score_file_result`.
        """
        task_id = task_id_of(ctx.request.headers, self.progress)
        try:
            return run_file_task(
                self.deployment.primary,
                file,
                SETTINGS.data.missing_markers,
                strict,
                SETTINGS.serving.file_chunk_rows,
                self.progress,
                task_id,
                sep,
            )
        except DataError as error:  # the file is wrong: say what, keep the task id for progress
            ctx.response.status_code = HTTPStatus.BAD_REQUEST
            return {"error": str(error), "task_id": task_id, "state": "failed"}

    @bentoml.api
    def score_file_progress(self, task_id: str, ctx: bentoml.Context) -> dict[str, Any]:
        """Rows scored so far, bad rows with their reasons, and the state of a `score_file` task."""
        if not is_task_id(task_id):
            ctx.response.status_code = HTTPStatus.BAD_REQUEST
            return {"error": TASK_ID_RULE}
        found = self.progress.read(task_id)
        if found is None:
            ctx.response.status_code = HTTPStatus.NOT_FOUND
            return {"error": f"no score_file task {task_id}"}
        return found

    @bentoml.api
    def score_file_result(self, task_id: str, ctx: bentoml.Context) -> Path:
        """The scored file of a finished `score_file` task (kept 24 hours)."""
        if not is_task_id(task_id):
            raise bentoml.exceptions.InvalidArgument(TASK_ID_RULE)
        found = self.progress.result_file(task_id)
        state = (self.progress.read(task_id) or {}).get("state")
        if found is None or state != "done":
            raise bentoml.exceptions.NotFound(f"no finished score_file task {task_id}")
        return found

    @bentoml.api
    def feedback(
        self,
        request_id: RequestId,
        label: Label,
        ctx: bentoml.Context,
        correct: bool = False,
        actor: Actor = None,
        reason: Reason = None,
    ) -> dict[str, Any]:
        """Store the true label of one logged prediction (sending it again changes nothing).

        Changing a label already set needs `correct: true` (else 409); every change is audited.
        With `TABSERVE_FEEDBACK_TOKEN` set, send `Authorization: Bearer <token>`.
        """
        item = Feedback(request_id=request_id, label=label, correct=correct, actor=actor, reason=reason)
        return self._feedback([item], ctx)

    @bentoml.api
    def feedback_batch(
        self, items: Annotated[list[Feedback], Field(min_length=1, max_length=10_000)], ctx: bentoml.Context
    ) -> dict[str, Any]:
        """Store many labels at once: all or nothing."""
        return self._feedback(items, ctx)

    def _feedback(self, items: list[Feedback], ctx: bentoml.Context) -> dict[str, Any]:
        try:
            authorize(FEEDBACK_TOKEN, ctx.request.headers.get("authorization"))
            if self.prediction_logger is None:
                raise FeedbackError(
                    HTTPStatus.CONFLICT, "the prediction log is off (monitoring.log_predictions: false)"
                )
            self._check_sampled(items)
            return {"stored": self._store_labels([LabelUpdate(**item.model_dump()) for item in items])}
        except FeedbackError as error:
            ctx.response.status_code = error.status
            if error.status == HTTPStatus.UNAUTHORIZED:
                ctx.response.headers["WWW-Authenticate"] = "Bearer"
            return {"error": str(error)}

    @bentoml.api
    def outcome(
        self,
        request_id: RequestId,
        name: OutcomeName,
        ctx: bentoml.Context,
        value: OutcomeValue = 1,
        actor: Actor = None,
    ) -> dict[str, Any]:
        """Record a business outcome of one logged prediction: a rate (`click`: 1 or 0) or a value.

        Idempotent, first value wins: sending it again changes nothing (`unchanged`), a different
        value is ignored and listed in `ignored`. Names come from `deployment.outcomes`.
        With `TABSERVE_FEEDBACK_TOKEN` set, send `Authorization: Bearer <token>`.
        """
        return self._outcomes([Outcome(request_id=request_id, name=name, value=value, actor=actor)], ctx)

    @bentoml.api
    def outcome_batch(
        self, items: Annotated[list[Outcome], Field(min_length=1, max_length=10_000)], ctx: bentoml.Context
    ) -> dict[str, Any]:
        """Record many outcomes at once: all or nothing."""
        return self._outcomes(items, ctx)

    def _outcomes(self, items: list[Outcome], ctx: bentoml.Context) -> dict[str, Any]:
        try:
            authorize(FEEDBACK_TOKEN, ctx.request.headers.get("authorization"), "outcomes")
            if self.prediction_logger is None:
                raise FeedbackError(
                    HTTPStatus.CONFLICT, "the prediction log is off (monitoring.log_predictions: false)"
                )
            self._check_sampled(items)
            events = [OutcomeEvent(**item.model_dump()) for item in items]
            kinds = SETTINGS.deployment.outcomes
            return self._once_logged(lambda: record_outcomes(self.engine, events, kinds))
        except FeedbackError as error:
            ctx.response.status_code = error.status
            if error.status == HTTPStatus.UNAUTHORIZED:
                ctx.response.headers["WWW-Authenticate"] = "Bearer"
            return {"error": str(error)}

    def _check_sampled(self, items: list[Feedback] | list[Outcome]) -> None:
        """A 404 that says why, at once, for a request the log's sample left out."""
        assert self.prediction_logger is not None
        left_out = [item.request_id for item in items if not self.prediction_logger.keeps(item.request_id)]
        if left_out:
            rate = SETTINGS.monitoring.log_sample_rate
            raise FeedbackError(
                HTTPStatus.NOT_FOUND,
                f"request {left_out[0]} was not logged: monitoring.log_sample_rate={rate} logs a share "
                f"of requests ({len(left_out)} of {len(items)} in this call); nothing stored",
            )

    def _store_labels(self, pairs: list[LabelUpdate]) -> int:
        return self._once_logged(lambda: record_feedback(self.engine, pairs, self._classes_of))

    def _once_logged(self, store: Callable[[], Stored]) -> Stored:
        """`store()`, again once the predictions it refers to are in the log (404 until then)."""
        assert self.prediction_logger is not None
        try:
            return store()
        except FeedbackError as error:
            if error.status != HTTPStatus.NOT_FOUND:
                raise
        # The prediction may still be queued for the log: write what is queued here, then look
        # again. Another worker may hold it: its writer flushes within flush_interval_ms.
        if not self.prediction_logger.flush(timeout_s=10):
            raise FeedbackError(HTTPStatus.SERVICE_UNAVAILABLE, "the prediction log is behind; retry shortly")
        deadline = time.monotonic() + FEEDBACK_WAIT_INTERVALS * SETTINGS.monitoring.flush_interval_ms / 1000
        while True:
            try:
                return store()
            except FeedbackError as error:
                if error.status != HTTPStatus.NOT_FOUND or time.monotonic() >= deadline:
                    raise
            time.sleep(FEEDBACK_POLL_S)

    @functools.lru_cache(maxsize=64)  # noqa: B019 (one service instance per worker)
    def _classes_of(self, tag: str) -> tuple[Any, ...] | None:
        served = {stored.tag: stored for stored in MODELS.values()}
        return (served.get(tag) or get_model(tag)).classes


def _sticky_key(ctx: bentoml.Context, row: dict[str, Any]) -> str | None:
    key = ctx.request.headers.get(SETTINGS.deployment.sticky_header)
    if key is None and STICKY_FIELD is not None and row.get(STICKY_FIELD) is not None:
        key = str(row[STICKY_FIELD])
    return key or None


# mypy sees the class, BentoML's decorator returns a Service: hence the ignores.
UPLOAD_APIS = frozenset({"score_file"})  # multipart/form-data; every other API takes JSON
_ROUTES = {name: api.route for name, api in TabularModel.apis.items()}  # type: ignore[attr-defined]
LIMITS = HttpLimits(
    max_body_bytes=SETTINGS.serving.max_body_bytes,
    max_upload_bytes=SETTINGS.serving.max_upload_bytes,
    max_concurrency=SETTINGS.serving.max_concurrency,
    max_large_requests=SETTINGS.serving.max_large_requests,
    json_paths=frozenset(route for name, route in _ROUTES.items() if name not in UPLOAD_APIS),
    upload_paths=frozenset(f"{_ROUTES[name]}{tail}" for name in UPLOAD_APIS for tail in ("", "/submit")),
)
TabularModel.add_asgi_middleware(ApiKeyGuard, control=ACCESS)  # type: ignore[attr-defined]  # first: outermost
TabularModel.add_asgi_middleware(RequestGuard, limits=LIMITS)  # type: ignore[attr-defined]
TabularModel.add_asgi_middleware(OpenApiAmendments, protects=ACCESS.protects)  # type: ignore[attr-defined]
# Each upload's own task id (issue 12: never a shared one), linked to BentoML's for /submit.
TabularModel.add_asgi_middleware(  # type: ignore[attr-defined]
    TaskIds, path=_ROUTES["score_file"], task_dir=Path(SETTINGS.serving.task_dir)
)
