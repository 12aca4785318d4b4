"""The drift job's window: the last N rows (or a time range), sampled on ids, read back whole.

Read from a real SQLite log: the sample is drawn from the window only, has the sample's size,
each row once, and each sampled row comes back with its own features, prediction and label.
"""

from __future__ import annotations

from pathlib import Path

from tabserve.predictions.bulk_insert import insert_rows
from tabserve.predictions.migration import upgrade as upgrade_schema
from tabserve.predictions.store import FETCH_CHUNK, load_window, make_engine, set_labels
from tests.factories import prediction_rows

LOGGED = FETCH_CHUNK + 600  # the sampled rows are read in more than one chunk


def test_a_sample_of_the_last_rows_is_drawn_from_them_only(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'log.db'}")
    upgrade_schema(engine)
    rows = prediction_rows("r", 0, LOGGED)
    for row in rows:
        row["prediction"] = "odd" if int(row["features"]["x"]) % 2 else "even"
    insert_rows(engine, rows)
    set_labels(engine, {"r7": "odd"})
    last = FETCH_CHUNK + 400

    window, total = load_window(engine, "m:1", last=last, sample=FETCH_CHUNK + 100)
    everything, _ = load_window(engine, "m:1", last=last, sample=last)
    engine.dispose()

    assert total == last and len(window) == FETCH_CHUNK + 100
    seen = window["x"].astype(int)
    assert seen.is_unique and seen.min() >= LOGGED - last  # the newest `last` rows only
    assert (window["prediction"] == seen.map(lambda x: "odd" if x % 2 else "even")).all()
    assert sorted(everything["x"].astype(int)) == list(range(LOGGED - last, LOGGED))
    assert window["label"].isna().all()  # r7 is outside the window


def test_labels_come_back_with_their_rows_and_other_models_stay_out(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'log.db'}")
    upgrade_schema(engine)
    rows = prediction_rows("r", 0, 30)
    other = [{**row, "model": "other:1", "request_id": f"o{i}"} for i, row in enumerate(rows)]
    insert_rows(engine, rows + other)
    set_labels(engine, {"r3": "a"})

    window, total = load_window(engine, "m:1", sample=10_000)
    engine.dispose()

    assert total == 30 and len(window) == 30
    labelled = window[window["label"].notna()]
    assert labelled["x"].tolist() == [3.0] and labelled["label"].tolist() == ["a"]


def test_an_empty_window_has_the_window_columns(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'log.db'}")
    upgrade_schema(engine)
    window, total = load_window(engine, "new:1", last=100, sample=100, features=["x", "y"])
    engine.dispose()

    assert total == 0 and window.empty
    assert list(window.columns) == ["x", "y", "prediction", "label"]
