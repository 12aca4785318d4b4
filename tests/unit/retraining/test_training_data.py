"""Training data from the prediction log: the labelled window, the time split, the labels' types,
and the default mix of old and new rows under a concept drift."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import clone

from tabserve.model_store import StoredModel
from tabserve.predictions.store import make_engine
from tabserve.retraining.training_data import (
    LABEL_COLUMN,
    TS_COLUMN,
    Window,
    as_targets,
    labels_since,
    mix_rows,
    newest_label,
    original_rows,
    read_labelled,
    split_by_time,
    unlearnable_columns,
)
from tabserve.schema import coerce_frame
from tabserve.settings import ColumnLogRule, DataSettings
from tests.census import CENSUS_MODEL, census_drifted, census_like, log_labelled


def test_the_holdout_is_the_most_recent_rows() -> None:
    frame = pd.DataFrame({"x": range(10), TS_COLUMN: pd.date_range("2026-01-01", periods=10, tz="UTC")})
    train, holdout = split_by_time(frame, share=0.3, min_rows=2)
    assert list(holdout["x"]) == [7, 8, 9] and list(train["x"]) == list(range(7))
    assert holdout[TS_COLUMN].min() > train[TS_COLUMN].max()
    _, held = split_by_time(frame, share=0.1, min_rows=4)  # the minimum wins over the share
    assert len(held) == 4


def test_labels_take_the_models_own_types() -> None:
    """As /feedback matches them: by their text (1, 1.0 and "1" are class 1; True is not)."""
    sent = pd.Series([1, "1", 1.0, "0", 0, None, "maybe", True])
    assert as_targets(sent, (0, 1)).tolist()[:5] == [1, 1, 1, 0, 0]
    assert as_targets(sent, (0, 1)).iloc[5:].isna().all()
    assert as_targets(pd.Series(["True", False]), (False, True)).tolist() == [True, False]
    assert as_targets(pd.Series(["yes", "no", "Yes"]), ("no", "yes")).tolist()[:2] == ["yes", "no"]
    assert as_targets(pd.Series(["1.5", 2, None]), None).tolist()[:2] == [1.5, 2.0]


def test_a_column_the_log_does_not_keep_as_sent_cannot_be_learnt() -> None:
    policy = {"email": "hash", "age": ColumnLogRule(action="bucket", width=10), "city": "keep"}
    assert unlearnable_columns(policy, ["age", "city", "income"]) == ["age"]
    assert unlearnable_columns({}, ["age"]) == []


def test_original_rows_never_outvote_recent_ones() -> None:
    recent = pd.DataFrame({"x": np.arange(100)})
    original = pd.DataFrame({"x": np.arange(1000, 6000)})
    mixed = mix_rows(recent, original, share=0.3, seed=0)
    old = mixed["x"] >= 1000
    assert old.sum() == 42  # floor(0.3 / 0.7 * 100)
    assert old.mean() <= 0.3
    assert mix_rows(recent, original, share=0.0, seed=0).equals(recent)
    assert mix_rows(recent, original.head(10), share=0.3, seed=0)["x"].ge(1000).sum() == 10


def test_under_a_concept_drift_the_default_mix_beats_all_old_rows(census_model: StoredModel) -> None:
    """The choice the loop makes: the champion's 6,000 old rows, all added, outvote 800 new ones
    and teach the old relation again; capped at 30% of the training rows, the new relation wins."""
    old = census_like(6000, seed=0)
    new, holdout = census_drifted(800, seed=21), census_drifted(3000, seed=22)
    schema = census_model.schema
    recipe = census_model.load_predictor().pipeline

    def accuracy(rows: pd.DataFrame) -> float:
        model = clone(recipe).fit(coerce_frame(rows, schema), rows["label"])
        return float((model.predict(coerce_frame(holdout, schema)) == holdout["label"]).mean())

    everything = accuracy(pd.concat([old, new], ignore_index=True))
    default = accuracy(mix_rows(new, old, share=0.3, seed=0))
    recent_only = accuracy(new)
    assert default > everything + 0.05, (default, everything)
    assert recent_only > everything + 0.05


def test_the_window_reads_labelled_rows_of_every_version_oldest_first(
    census_model: StoredModel, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    labelled = census_drifted(300, seed=3)
    ids = log_labelled(census_model, url, labelled)
    engine = make_engine(url)
    frame = read_labelled(engine, CENSUS_MODEL, Window(last=200))
    assert len(frame) == 200
    assert frame[TS_COLUMN].is_monotonic_increasing
    assert frame[LABEL_COLUMN].tolist() == labelled["label"].tolist()[-200:]  # the last 200, in order
    assert set(census_model.schema.names) <= set(frame.columns)
    assert len(read_labelled(engine, CENSUS_MODEL, Window())) == len(ids)
    assert read_labelled(engine, "other_model", Window()).empty
    watermark = newest_label(engine, CENSUS_MODEL)
    assert watermark is not None and labels_since(engine, CENSUS_MODEL, watermark) == 0
    engine.dispose()


def test_a_time_window_keeps_rows_scored_inside_it(census_model: StoredModel, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    log_labelled(census_model, url, census_like(300, seed=4), seconds_apart=60)
    engine = make_engine(url)
    everything = read_labelled(engine, CENSUS_MODEL, Window())
    since = everything[TS_COLUMN].iloc[-100].to_pydatetime()
    assert len(read_labelled(engine, CENSUS_MODEL, Window(since=since))) == 100
    engine.dispose()


def test_the_original_data_is_read_back_while_its_file_is_there(
    census_model: StoredModel, tmp_path: Path
) -> None:
    rows, note = original_rows(census_model, DataSettings())
    assert len(rows) == 6000 and "6,000 rows" in note
    assert set(census_model.schema.names) < set(rows.columns) and set(rows[LABEL_COLUMN]) == {"yes", "no"}
    moved = {**census_model.metadata, "training_data": {"source": str(tmp_path / "gone.csv")}}
    rows, note = original_rows(replace(census_model, metadata=moved), DataSettings())
    assert rows.empty and "not used" in note and "gone.csv" in note
