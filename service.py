"""The BentoML service: thin. Scoring lives in `tabserve`; this file declares the HTTP surface."""

import functools
from pathlib import Path
from typing import Annotated, Any

import bentoml
from pydantic import BaseModel, Field

from tabserve.api_models import example_record, record_model
from tabserve.feedback import FeedbackError, record_feedback
from tabserve.file_tasks import ProgressStore, run_file_task
from tabserve.http_limits import BodySizeLimit
from tabserve.metrics import DriftMetricsRefresher, service_metrics
from tabserve.model_store import get_model
from tabserve.prediction_logger import open_prediction_logger
from tabserve.prediction_store import make_engine
from tabserve.serving import Scorer, info_app, tune_gc
from tabserve.settings import load_settings

SETTINGS = load_settings()
STORED = get_model(SETTINGS.served_tag)  # fails here, with how to train one, if there is none
Record = record_model(STORED.schema, example_record(STORED.schema, STORED.load_reference()))
Records = Annotated[
    list[Record],  # type: ignore[valid-type]
    Field(min_length=1, max_length=SETTINGS.serving.max_batch_records),
]


class Feedback(BaseModel):
    request_id: str = Field(min_length=1, max_length=64)
    label: str | float | int


@bentoml.service(workers=1, traffic={"timeout": 60}, logging={"access": {"enabled": False}})
class TabularModel:
    """Predictions from a scikit-learn pipeline trained by `python -m train`."""

    model_ref = bentoml.models.BentoModel(STORED.tag)  # packed into the Bento by `bentoml build`

    def __init__(self) -> None:
        metrics = service_metrics()
        self.prediction_logger = open_prediction_logger(SETTINGS.monitoring)
        # STORED is the model_ref's model: the tag was resolved once, at import.
        self.scorer = Scorer(STORED, SETTINGS.serving, self.prediction_logger, metrics)
        logger_engine = self.prediction_logger.engine if self.prediction_logger else None
        self.engine = logger_engine or make_engine(SETTINGS.monitoring.url)
        self.refresher = DriftMetricsRefresher(self.engine, metrics, SETTINGS.monitoring.metrics_refresh_s)
        self.progress = ProgressStore(Path(SETTINGS.serving.task_dir))
        tune_gc(SETTINGS.serving.gc_threshold)

    @bentoml.on_shutdown
    def close(self) -> None:
        self.refresher.close()
        self.scorer.shutdown()

    @bentoml.api
    async def predict(self, record: Record) -> dict[str, Any]:  # type: ignore[valid-type]
        """Score one record. Concurrent calls are batched together inside the service."""
        return await self.scorer.score_one(record.model_dump(by_alias=True))  # type: ignore[attr-defined]

    @bentoml.api
    def predict_batch(self, records: Records) -> dict[str, Any]:
        """Score 1 to `serving.max_batch_records` records in one vectorised call."""
        rows = [record.model_dump(by_alias=True) for record in records]  # type: ignore[attr-defined]
        return {"predictions": self.scorer.score_records(rows), "model": self.scorer.tag}

    @bentoml.task
    def score_file(self, file: Path, ctx: bentoml.Context, strict: bool = False) -> dict[str, Any]:
        """Score an uploaded CSV/Parquet file into a file with prediction, probability and error columns.

        Lenient by default: bad rows are kept, unscored, with the reason in `error`; `strict`
        fails the task on the first bad row. Poll `/score_file/status` or `/score_file_progress`;
        download the scored file from `/score_file_result`.
        """
        task_id = str(getattr(ctx.request.state, "task_id", "local"))
        serving = SETTINGS.serving
        return run_file_task(
            self.scorer,
            file,
            SETTINGS.data.missing_markers,
            strict,
            serving.file_chunk_rows,
            self.progress,
            task_id,
        )

    @bentoml.api
    def score_file_progress(self, task_id: str, ctx: bentoml.Context) -> dict[str, Any]:
        """Rows scored so far, bad rows with their reasons, and the state of a `score_file` task."""
        found = self.progress.read(task_id)
        if found is None:
            ctx.response.status_code = 404
            return {"error": f"no score_file task {task_id}"}
        return found

    @bentoml.api
    def score_file_result(self, task_id: str, ctx: bentoml.Context) -> Path:
        """The scored file of a finished `score_file` task (kept 24 hours)."""
        found = self.progress.result_file(task_id)
        state = (self.progress.read(task_id) or {}).get("state")
        if found is None or state != "done":
            raise bentoml.exceptions.NotFound(f"no finished score_file task {task_id}")
        return found

    @bentoml.api
    def feedback(self, request_id: str, label: str | float | int, ctx: bentoml.Context) -> dict[str, Any]:
        """Store the true label of one logged prediction (sending it again changes nothing)."""
        return self._feedback([Feedback(request_id=request_id, label=label)], ctx)

    @bentoml.api
    def feedback_batch(
        self, items: Annotated[list[Feedback], Field(min_length=1, max_length=10_000)], ctx: bentoml.Context
    ) -> dict[str, Any]:
        """Store many labels at once: all or nothing."""
        return self._feedback(items, ctx)

    def _feedback(self, items: list[Feedback], ctx: bentoml.Context) -> dict[str, Any]:
        if self.prediction_logger is None:
            ctx.response.status_code = 409
            return {"error": "the prediction log is off (monitoring.log_predictions: false)"}
        if not self.prediction_logger.flush(timeout_s=10):  # the prediction may still be queued
            ctx.response.status_code = 503
            return {"error": "the prediction log is behind; retry shortly"}
        try:
            count = record_feedback(
                self.engine, [(item.request_id, item.label) for item in items], self._classes_of
            )
        except FeedbackError as error:
            ctx.response.status_code = error.status
            return {"error": str(error)}
        return {"stored": count}

    @functools.lru_cache(maxsize=64)  # noqa: B019 (one service instance per worker)
    def _classes_of(self, tag: str) -> tuple[Any, ...] | None:
        model = self.scorer.stored if tag == self.scorer.tag else get_model(tag)
        classes = model.metadata.get("classes")
        return tuple(classes) if classes is not None else None


# mypy sees the class, BentoML's decorator returns a Service: hence the ignores.
TabularModel.add_asgi_middleware(BodySizeLimit, max_body_bytes=SETTINGS.serving.max_body_bytes)  # type: ignore[attr-defined]
TabularModel.mount_asgi_app(info_app(STORED), path="/model")  # type: ignore[attr-defined]
