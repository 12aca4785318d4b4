"""The prediction log's database: engine, inserts, feedback and monitoring windows (SQLAlchemy Core).

SQLite by default (no setup); PostgreSQL when a URL is configured, so replicas share one log.
The tables are declared in `tables` and made by the migrations (`migration`).

Each logged row has its own `log_id`, a hash of what was predicted (request id, model, variant,
features, prediction), computed when it is scored and carried through the journal and the
spool: replays and redeliveries of the same prediction insert it once, while a second, different
prediction that reuses a caller's request id is a row of its own (`request_id` is not unique).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
from sqlalchemy import Connection, Engine, create_engine, event, func, select, update
from sqlalchemy.engine import make_url

from tabserve.errors import ConfigurationError
from tabserve.predictions.tables import LOG_ID_CHARS, label_changes, monitoring_runs, predictions
from tabserve.settings import MonitoringSettings


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the service's workers write while the monitoring job reads.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _to_json(value: Any) -> str:
    return orjson.dumps(value).decode()


def log_id_of(row: dict[str, Any]) -> str:
    """The row's identity: the same prediction always gets the same id, a different one another."""
    identity = [row["request_id"], row["model"], row["variant"], row["features"], row["prediction"]]
    encoded = orjson.dumps(identity, default=str, option=orjson.OPT_SERIALIZE_NUMPY)
    return hashlib.blake2b(encoded, digest_size=LOG_ID_CHARS // 2).hexdigest()


def with_log_ids(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [row if "log_id" in row else {**row, "log_id": log_id_of(row)} for row in rows]


def database_key(url: str) -> str:
    """A short name for a database (its URL without the password), for files that belong to it."""
    rendered = make_url(url).set(password=None).render_as_string(hide_password=False)
    return hashlib.sha256(rendered.encode()).hexdigest()[:12]


def _from_json(value: Any) -> Any:
    """orjson for JSON text. SQLite gives a JSON column numeric affinity: a stored `1` or `121.5`
    (a 0/1 class, a regressor's prediction) comes back as a number, not as text to parse."""
    return orjson.loads(value) if isinstance(value, str | bytes) else value


def make_engine(url: str) -> Engine:
    # orjson: the JSON columns' encoding was half of the writer's time with the standard library.
    json_options: dict[str, Any] = {"json_serializer": _to_json, "json_deserializer": _from_json}
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30}, **json_options)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=2,
        max_overflow=2,
        connect_args={"connect_timeout": 5},
        **json_options,
    )


def prepare_local_database(settings: MonitoringSettings) -> None:
    """The default SQLite file's folder is ours to create (a configured URL is not).

    A configuration file mounted in a read-only folder (/etc) puts relative paths there: say which
    setting to change, not a PermissionError's traceback.
    """
    if settings.database_url is None:
        folder = Path(settings.sqlite_path).parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ConfigurationError(
                f"monitoring.sqlite_path: cannot create {folder} ({error.strerror}); relative paths are "
                "relative to the configuration file's folder: set a writable absolute path, or "
                "monitoring.database_url"
            ) from None


def logged_rows(connection: Connection, request_ids: Iterable[str]) -> dict[str, list[Any]]:
    """request id -> its logged rows (log_id, model, label), locked until the transaction ends."""
    query = (
        select(predictions.c.log_id, predictions.c.request_id, predictions.c.model, predictions.c.label)
        .where(predictions.c.request_id.in_(list(request_ids)))
        .order_by(predictions.c.id)
        .with_for_update()  # two corrections of one label at once: one waits (ignored by SQLite)
    )
    found: dict[str, list[Any]] = {}
    for row in connection.execute(query):
        found.setdefault(row.request_id, []).append(row)
    return found


def write_label_changes(connection: Connection, changes: Sequence[dict[str, Any]]) -> None:
    """Set each row's label and keep the change in `label_changes` (same transaction)."""
    if not changes:
        return
    now = datetime.now(UTC)
    for change in changes:
        connection.execute(
            update(predictions)
            .where(predictions.c.log_id == change["log_id"])
            .values(label=change["new_label"], label_ts=now)
        )
    audit = [{"actor": None, "reason": None, **change, "ts": now} for change in changes]
    connection.execute(label_changes.insert(), audit)


def set_labels(engine: Engine, labels: dict[str, Any]) -> None:
    """Label every row of these request ids, unconditionally (fixtures and tools; audited all the same)."""
    with engine.begin() as connection:
        logged = logged_rows(connection, labels)
        changes = [
            {"request_id": request_id, "log_id": row.log_id, "old_label": row.label, "new_label": label}
            for request_id, label in labels.items()
            for row in logged.get(request_id, [])
            if row.label != label
        ]
        write_label_changes(connection, changes)


def _window_filter(model: str, since: datetime | None, until: datetime | None) -> list[Any]:
    conditions = [predictions.c.model == model]
    if since is not None:
        conditions.append(predictions.c.ts >= since)
    if until is not None:
        conditions.append(predictions.c.ts < until)
    return conditions


PREDICTION, LABEL = "prediction", "label"
WINDOW_COLUMNS = (PREDICTION, LABEL)  # beside the features in every window
FETCH_CHUNK = 5_000  # ids per `IN (...)` when reading the sampled rows (SQLite's bound-variable limit)


def load_window(
    engine: Engine,
    model: str,
    *,
    last: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    sample: int,
    features: Sequence[str] = (),
) -> tuple[pd.DataFrame, int]:
    """Rows of one model's window (the last N, or a time range), at most `sample` drawn at random.

    Returns (rows with features expanded into columns, the window's full size). `features`: the
    model's feature columns, so that an empty window (a new model, a fresh database) still has
    every column a window has and the job's checks read it like any other.

    Two steps, so a large window costs what the sample costs: the window's row ids are counted
    and sampled on the indexes alone (`model`, `ts`, the primary key), then only the sampled
    rows' features, prediction and label are read. Sorting the whole window's rows at random
    read every row's features (~4 KB a row at 200 features: 4 GB for 1,000,000 rows).
    """
    window = select(predictions.c.id).where(*_window_filter(model, since, until))
    if last is not None:
        window = window.order_by(predictions.c.id.desc()).limit(last)
    window_ids = window.subquery()
    with engine.connect() as connection:
        total = int(connection.execute(select(func.count()).select_from(window_ids)).scalar_one())
        chosen = select(window_ids.c.id)
        if total > sample:
            chosen = chosen.order_by(func.random()).limit(sample)
        ids = list(connection.execute(chosen).scalars())
        columns = (predictions.c.features, predictions.c.prediction, predictions.c.label)
        rows = [
            row
            for start in range(0, len(ids), FETCH_CHUNK)
            for row in connection.execute(
                select(*columns).where(predictions.c.id.in_(ids[start : start + FETCH_CHUNK]))
            )
        ]
    if not rows:
        return pd.DataFrame(columns=[*features, *WINDOW_COLUMNS]), total
    logged = pd.DataFrame.from_records([row.features for row in rows])
    meta = pd.DataFrame({PREDICTION: [row.prediction for row in rows], LABEL: [row.label for row in rows]})
    return pd.concat([logged, meta], axis=1), total


def save_run(engine: Engine, model: str, summary: dict[str, Any]) -> None:
    with engine.begin() as connection:
        connection.execute(
            monitoring_runs.insert().values(ts=datetime.now(UTC), model=model, summary=summary)
        )


def latest_runs(engine: Engine) -> dict[str, dict[str, Any]]:
    """The newest monitoring summary of each model."""
    newest = select(monitoring_runs.c.model, func.max(monitoring_runs.c.id).label("id")).group_by(
        monitoring_runs.c.model
    )
    newest_sq = newest.subquery()
    with engine.connect() as connection:
        rows = connection.execute(
            select(monitoring_runs.c.model, monitoring_runs.c.summary).join(
                newest_sq, monitoring_runs.c.id == newest_sq.c.id
            )
        )
        return {row.model: row.summary for row in rows}


def variant_outcomes(
    engine: Engine,
    variant: str,
    since: datetime,
    until: datetime | None = None,
    *,
    sample: int,
    model: str | None = None,
) -> pd.DataFrame:
    """Predictions and feedback labels a variant logged in a time range (at most `sample`, at random).

    `model`: only the rows of this model tag (the variant's name may have served others before).
    """
    conditions = [predictions.c.variant == variant, predictions.c.ts >= since]
    if until is not None:
        conditions.append(predictions.c.ts < until)
    if model is not None:
        conditions.append(predictions.c.model == model)
    query = (
        select(predictions.c.prediction, predictions.c.label)
        .where(*conditions)
        .order_by(func.random())
        .limit(sample)
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    return pd.DataFrame.from_records(
        [(row.prediction, row.label) for row in rows], columns=["prediction", "label"]
    )
