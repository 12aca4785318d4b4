"""The BentoML service: thin. Scoring lives in `tabserve`; this file declares the HTTP surface."""

from typing import Annotated, Any

import bentoml
from pydantic import Field

from tabserve.api_models import example_record, record_model
from tabserve.http_limits import BodySizeLimit
from tabserve.model_store import get_model
from tabserve.serving import Scorer, info_app, tune_gc
from tabserve.settings import load_settings

SETTINGS = load_settings()
STORED = get_model(SETTINGS.served_tag)  # fails here, with how to train one, if there is none
Record = record_model(STORED.schema, example_record(STORED.schema, STORED.load_reference()))
Records = Annotated[
    list[Record],  # type: ignore[valid-type]
    Field(min_length=1, max_length=SETTINGS.serving.max_batch_records),
]


@bentoml.service(workers=1, traffic={"timeout": 60}, logging={"access": {"enabled": False}})
class TabularModel:
    """Predictions from a scikit-learn pipeline trained by `python -m train`."""

    model_ref = bentoml.models.BentoModel(STORED.tag)  # packed into the Bento by `bentoml build`

    def __init__(self) -> None:
        self.scorer = Scorer(get_model(str(self.model_ref.tag)), SETTINGS.serving)
        tune_gc(SETTINGS.serving.gc_threshold)

    def __is_ready__(self) -> bool:
        return self.scorer is not None

    @bentoml.api
    async def predict(self, record: Record) -> dict[str, Any]:  # type: ignore[valid-type]
        """Score one record. Concurrent calls are batched together inside the service."""
        return await self.scorer.score_one(record.model_dump(by_alias=True))  # type: ignore[attr-defined]

    @bentoml.api
    def predict_batch(self, records: Records) -> dict[str, Any]:
        """Score 1 to `serving.max_batch_records` records in one vectorised call."""
        rows = [record.model_dump(by_alias=True) for record in records]  # type: ignore[attr-defined]
        return {"predictions": self.scorer.score_records(rows), "model": self.scorer.tag}


# mypy sees the class, BentoML's decorator returns a Service: hence the ignores.
TabularModel.add_asgi_middleware(BodySizeLimit, max_body_bytes=SETTINGS.serving.max_body_bytes)  # type: ignore[attr-defined]
TabularModel.mount_asgi_app(info_app(STORED), path="/model")  # type: ignore[attr-defined]
