"""One logged prediction by its request id (`GET /explain/{request_id}`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select

from tabserve.predictions.tables import predictions


def logged_prediction(engine: Engine, request_id: str) -> dict[str, Any] | None:
    """The newest logged row with this request id (a caller may reuse one), or None."""
    columns = predictions.c
    query = (
        select(
            columns.request_id,
            columns.model,
            columns.variant,
            columns.features,
            columns.prediction,
            columns.probabilities,
        )
        .where(columns.request_id == request_id)
        .order_by(columns.id.desc())
        .limit(1)
    )
    with engine.connect() as connection:
        row = connection.execute(query).first()
    return None if row is None else dict(row._mapping)  # JSON columns come back decoded (store.make_engine)
