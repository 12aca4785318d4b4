"""Model integrity: every file save_model writes is hashed at save and checked before it is read."""

from __future__ import annotations

import logging
import uuid

import bentoml
import joblib
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.pipeline import make_pipeline

from tabserve.errors import ModelIntegrityError
from tabserve.model_store import HASHES_KEY, PIPELINE_FILE, REFERENCE_FILE, StoredModel, get_model, save_model
from tabserve.schema import infer_schema

FRAME = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "y": ["a", "b", "a", "b"]})


def saved(metadata_extra: dict | None = None) -> StoredModel:
    pipeline = make_pipeline(DummyClassifier(strategy="most_frequent")).fit(FRAME[["x"]], FRAME["y"])
    metadata = {"feature_schema": infer_schema(FRAME[["x"]]).to_metadata(), "classes": ["a", "b"]}
    name = f"unit_integrity_{uuid.uuid4().hex[:8]}"
    return get_model(save_model(name, pipeline, {**metadata, **(metadata_extra or {})}, FRAME, {}))


def test_every_written_file_is_hashed_and_an_intact_model_loads() -> None:
    stored = saved()
    assert set(stored.hashes or {}) == {PIPELINE_FILE, REFERENCE_FILE}
    assert stored.load_predictor().predict_records([{"x": 1.0}])[0]["prediction"] == "a"
    assert stored.load_reference().equals(FRAME)


def test_hashes_copied_from_another_model_are_replaced() -> None:
    stored = saved({HASHES_KEY: {PIPELINE_FILE: "0" * 64, "gone.bin": "1" * 64}})
    assert set(stored.hashes or {}) == {PIPELINE_FILE, REFERENCE_FILE}
    assert (stored.hashes or {})[PIPELINE_FILE] != "0" * 64


@pytest.mark.parametrize("name", [PIPELINE_FILE, REFERENCE_FILE])
def test_a_changed_file_is_refused_by_name(name: str) -> None:
    stored = saved()
    with (stored.path / name).open("ab") as file:
        file.write(b"\0")
    with pytest.raises(ModelIntegrityError, match=rf"{name} does not match the sha256"):
        get_model(stored.tag)
    with pytest.raises(ModelIntegrityError, match=name):  # and right before the file is read
        stored.load_predictor() if name == PIPELINE_FILE else stored.load_reference()


def test_a_replaced_pipeline_never_reaches_joblib_load() -> None:
    stored = saved()
    joblib.dump({"not": "the model"}, stored.path / PIPELINE_FILE)
    with pytest.raises(ModelIntegrityError, match=f"model {stored.tag}: {PIPELINE_FILE}"):
        stored.load_predictor()


def test_a_missing_file_is_named() -> None:
    stored = saved()
    (stored.path / REFERENCE_FILE).unlink()
    with pytest.raises(ModelIntegrityError, match=f"{REFERENCE_FILE} is missing"):
        get_model(stored.tag)


def test_a_model_saved_before_hashes_loads_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    name = f"unit_legacy_{uuid.uuid4().hex[:8]}"
    pipeline = make_pipeline(DummyClassifier(strategy="most_frequent")).fit(FRAME[["x"]], FRAME["y"])
    metadata = {"feature_schema": infer_schema(FRAME[["x"]]).to_metadata(), "classes": ["a", "b"]}
    with bentoml.models.create(name, metadata=metadata) as model:  # the layout of older versions
        joblib.dump(pipeline, model.path_of(PIPELINE_FILE))
        FRAME.to_parquet(model.path_of(REFERENCE_FILE), index=False)
    with caplog.at_level(logging.WARNING, logger="tabserve.model_store"):
        stored = get_model(str(model.tag))
        stored.load_predictor()
        stored.load_reference()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "saved without artifact hashes" in warnings[0] and stored.tag in warnings[0]
