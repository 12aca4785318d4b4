"""The driver-level insert stores exactly what SQLAlchemy's insert stored, and stays idempotent."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError

from tabserve.predictions.bulk_insert import insert_rows
from tabserve.predictions.migration import ensure_schema
from tabserve.predictions.spool import is_row_error
from tabserve.predictions.store import make_engine, predictions, with_log_ids
from tests.factories import prediction_rows

STORED = (
    "SELECT log_id, request_id, ts, model, variant, features, prediction, probabilities, label "
    "FROM predictions ORDER BY id"
)


def varied_rows() -> list[dict[str, Any]]:
    """Classifier and regressor rows, labels of every JSON type, missing and text features."""
    rows = prediction_rows("v", 0, 6)
    rows[0]["ts"] = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    rows[1].update(prediction=121.5, probabilities=None)  # a regressor's answer
    rows[2].update(prediction=1, probabilities={"0": 0.25, "1": 0.75})
    rows[3].update(prediction=True, probabilities={"False": 0.5, "True": 0.5})
    rows[4]["features"] = {"x": None, "city": "Zürich", "when": "2026-01-01T00:00:00"}
    rows[5].pop("probabilities")
    return rows


def sqlalchemy_insert(engine: Engine, rows: list[dict[str, Any]]) -> None:
    """The reference: SQLAlchemy Core's insert of the same rows (SQLite), the types' own processing."""
    with engine.begin() as connection:
        connection.execute(predictions.insert(), with_log_ids(rows))


def database(tmp_path: Path, name: str) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / name}")
    ensure_schema(engine)
    return engine


def test_rows_are_stored_as_sqlalchemys_insert_stores_them(tmp_path: Path) -> None:
    core, driver = database(tmp_path, "core.db"), database(tmp_path, "driver.db")
    rows = varied_rows()
    sqlalchemy_insert(core, [{"probabilities": None, **row} for row in rows])
    insert_rows(driver, rows)
    stored = [
        sqlite3.connect(tmp_path / name).execute(STORED).fetchall() for name in ("core.db", "driver.db")
    ]
    assert stored[0] == stored[1] and len(stored[1]) == 6
    with core.connect() as a, driver.connect() as b:  # and read back through SQLAlchemy alike
        assert a.execute(select(predictions)).fetchall() == b.execute(select(predictions)).fetchall()


def test_a_row_logged_twice_is_stored_once(tmp_path: Path) -> None:
    engine = database(tmp_path, "p.db")
    rows = prediction_rows("twice", 0, 5)
    insert_rows(engine, rows)
    insert_rows(engine, [*rows[3:], *prediction_rows("more", 0, 2)])  # a replay plus new rows
    with engine.connect() as connection:
        assert len(connection.execute(select(predictions.c.log_id)).fetchall()) == 7


def test_a_rejected_row_raises_the_error_the_logger_isolates(tmp_path: Path) -> None:
    engine = database(tmp_path, "p.db")
    rows = prediction_rows("bad", 0, 3)
    rows[1]["model"] = None  # NOT NULL
    with pytest.raises(IntegrityError, match="NOT NULL") as raised:
        insert_rows(engine, rows)
    assert is_row_error(raised.value)
    with engine.connect() as connection:  # one transaction: nothing of the batch was kept
        assert connection.execute(select(predictions.c.log_id)).fetchall() == []
