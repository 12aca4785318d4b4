"""The drift job's window on PostgreSQL: ids sampled first, then the sampled rows read in chunks.

The same checks as tests/unit/predictions/test_window.py (SQLite), on the real server: the
sample comes from the window only, each row once, with its own prediction.
"""

from __future__ import annotations

from tabserve.predictions.bulk_insert import insert_rows
from tabserve.predictions.migration import upgrade as upgrade_schema
from tabserve.predictions.store import FETCH_CHUNK, load_window, make_engine
from tests.factories import prediction_rows
from tests.postgres import temporary_database

LOGGED = FETCH_CHUNK + 600


def test_a_sample_of_the_last_rows_is_drawn_from_them_only() -> None:
    with temporary_database() as url:
        engine = make_engine(url)
        upgrade_schema(engine)
        rows = prediction_rows("r", 0, LOGGED)
        for row in rows:
            row["prediction"] = "odd" if int(row["features"]["x"]) % 2 else "even"
        insert_rows(engine, rows)
        last = FETCH_CHUNK + 400
        window, total = load_window(engine, "m:1", last=last, sample=FETCH_CHUNK + 100)
        engine.dispose()

    assert total == last and len(window) == FETCH_CHUNK + 100
    seen = window["x"].astype(int)
    assert seen.is_unique and seen.min() >= LOGGED - last
    assert (window["prediction"] == seen.map(lambda x: "odd" if x % 2 else "even")).all()
