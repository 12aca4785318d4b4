"""The prediction log writer's insert: one driver-level `executemany` per batch.

SQLAlchemy Core's `insert(...).on_conflict_do_nothing()` set up a compiled statement and ran
every column's type processor for every row: profiled in-process (1,000 rows of 30 features,
SQLite), ~45% of the insert's time was that processing, the driver's `executemany` ~30%. The
writer shares the worker's GIL with the request path (~8% of a worker's samples at c=32,
bench/profile.py). Here the row values are built once, the JSON columns with orjson (the
engine's own serializer), and the statement goes to the driver as it is (`exec_driver_sql`):
psycopg 3 pipelines an `executemany`, SQLite binds in C. The rows read back the same as
SQLAlchemy's insert writes them (a test compares both), and `ON CONFLICT (log_id) DO NOTHING`
keeps replays idempotent. Errors are SQLAlchemy's own exceptions, so the logger's split of a
batch on a rejected row works as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import JSON, Engine

from tabserve.predictions.store import predictions, with_log_ids

COLUMNS = (
    "log_id",
    "request_id",
    "ts",
    "model",
    "variant",
    "features",
    "prediction",
    "probabilities",
    "api_key",
)
JSON_COLUMNS = frozenset(name for name in COLUMNS if isinstance(predictions.c[name].type, JSON))


def insert_statement(dialect: str) -> str:
    """Pure: the driver-level INSERT for `dialect` ("sqlite": qmark style; else psycopg's %s)."""
    if dialect == "sqlite":
        marks = ["?"] * len(COLUMNS)
    else:  # PostgreSQL: the JSON columns take text, cast as SQLAlchemy's psycopg dialect does
        marks = ["%s::JSON" if name in JSON_COLUMNS else "%s" for name in COLUMNS]
    return (
        f"INSERT INTO {predictions.name} ({', '.join(COLUMNS)}) VALUES ({', '.join(marks)}) "
        "ON CONFLICT (log_id) DO NOTHING"
    )


def insert_rows(engine: Engine, rows: Sequence[dict[str, Any]]) -> None:
    """Insert the rows in one transaction; a row already logged (same `log_id`) is skipped."""
    if not rows:
        return
    dialect = engine.dialect
    # SQLite stores a datetime as text: SQLAlchemy's own conversion, once per distinct time
    # (every row of one scored batch shares its time).
    to_text = predictions.c.ts.type.dialect_impl(dialect).bind_processor(dialect)
    times: dict[Any, Any] = {}
    values = []
    for row in with_log_ids(rows):
        ts = row["ts"]
        if to_text is not None:
            ts = times[ts] if ts in times else times.setdefault(ts, to_text(ts))
        values.append(
            (
                row["log_id"],
                row["request_id"],
                ts,
                row["model"],
                row["variant"],
                orjson.dumps(row["features"]).decode(),
                orjson.dumps(row["prediction"]).decode(),
                orjson.dumps(row.get("probabilities")).decode(),
                row.get("api_key"),  # the API key's name (issue 22); None: keys off, or a job
            )
        )
    with engine.begin() as connection:
        connection.exec_driver_sql(insert_statement(dialect.name), values)
