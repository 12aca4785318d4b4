"""Chunked file scoring on small generated files (real files, real model, several chunks)."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tabserve.batch.file_scoring import score_file, validate_chunk
from tabserve.batch.local_scoring import resolve
from tabserve.errors import DataError
from tabserve.pipeline import build_pipeline, make_estimator
from tabserve.predictor import ERROR_COLUMN, Predictor
from tabserve.schema import coerce_frame, infer_schema
from tabserve.serving.file_tasks import count_rows
from tabserve.settings import DataSettings, EstimatorSettings
from tests.factories import mixed_frame

MARKERS = DataSettings().missing_markers


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    frame = mixed_frame().rename(columns=lambda name: name.strip()).replace("?", np.nan)
    features, target = frame.drop(columns=["label"]), frame["label"]
    schema = infer_schema(features)
    estimator = make_estimator(
        EstimatorSettings(estimator="sklearn.linear_model.LogisticRegression"), "classification"
    )
    pipeline = build_pipeline(schema, estimator, max_categories=10)
    pipeline.fit(coerce_frame(features, schema), target)
    return Predictor(pipeline, schema, "t:1", tuple(pipeline.classes_.tolist()))


def test_validate_reports_row_column_and_value(predictor: Predictor) -> None:
    frame = pd.DataFrame(
        {"income": ["1.5", "abc", "?", "inf"], "age": [1, 2, 3, 4], "city": ["a", None, "b", 3]}
    )
    features, errors = validate_chunk(frame, predictor.schema, frozenset(MARKERS))
    assert errors.isna().tolist() == [True, False, True, False]
    assert errors[1] == "row 2: column 'income': not a number: 'abc'"
    assert errors[3] == "row 4: column 'income': not a finite number: 'inf'"
    assert np.isnan(features["income"][2]) and features["city"][3] == "3"


def test_missing_feature_column_fails_the_file(predictor: Predictor) -> None:
    with pytest.raises(DataError, match=r"lacks feature column\(s\) \['city'\]"):
        validate_chunk(pd.DataFrame({"income": [1.0], "age": [2.0]}), predictor.schema, frozenset())


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_score_file_in_chunks_keeps_every_row(tmp_path: Path, predictor: Predictor, suffix: str) -> None:
    frame = mixed_frame(rows=95, seed=3).rename(columns=lambda name: name.strip()).drop(columns=["label"])
    frame.insert(0, "id", range(1000, 1095))
    frame["income"] = frame["income"].map(lambda v: None if pd.isna(v) else str(v))  # text, as files have
    frame.loc[10, "income"] = "oops"
    source, target = tmp_path / f"in{suffix}", tmp_path / f"out{suffix}"
    frame.to_parquet(source) if suffix == ".parquet" else frame.to_csv(source, index=False)
    chunks: list[int] = []
    report = score_file(
        source, target, predictor, MARKERS, chunk_rows=20, on_chunk=lambda f, o, r: chunks.append(len(f))
    )
    assert chunks == [20, 20, 20, 20, 15] and (report.rows, report.scored, report.bad_rows) == (95, 94, 1)
    out = pd.read_parquet(target) if suffix == ".parquet" else pd.read_csv(target)
    assert out["id"].tolist() == list(range(1000, 1095))
    assert out[ERROR_COLUMN].notna().sum() == 1 and "row 11: column 'income'" in out[ERROR_COLUMN][10]
    good = out[out[ERROR_COLUMN].isna()]
    expected = predictor.predict_frame(frame.drop(index=10).replace("?", np.nan))  # "?" is a missing marker
    assert good["prediction"].tolist() == expected["prediction"].tolist()
    assert good["probability_yes"].to_numpy() == pytest.approx(expected["probability_yes"].to_numpy())


def test_strict_mode_stops_at_the_first_bad_row(tmp_path: Path, predictor: Predictor) -> None:
    source = tmp_path / "in.csv"
    source.write_text("income,age,city\n1,2,a\nx,3,b\n")
    with pytest.raises(DataError, match=r"strict mode: row 2: column 'income'"):
        score_file(source, tmp_path / "out.csv", predictor, MARKERS, strict=True)


def test_resolve_files_directories_and_globs(tmp_path: Path) -> None:
    for name in ("a.csv", "b.parquet", "notes.txt"):
        (tmp_path / name).write_text("x")
    assert resolve(str(tmp_path / "a.csv"), str(tmp_path / "o.csv")) == [
        (tmp_path / "a.csv", tmp_path / "o.csv")
    ]
    assert [p.name for p, _ in resolve(str(tmp_path), str(tmp_path / "out"))] == ["a.csv", "b.parquet"]
    assert resolve(str(tmp_path / "*.csv"), str(tmp_path / "out")) == [
        (tmp_path / "a.csv", tmp_path / "out" / "a.csv")
    ]
    with pytest.raises(DataError, match="no CSV or Parquet input"):
        resolve(str(tmp_path / "*.json"), str(tmp_path / "out"))


def test_count_rows(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("h\n1\n2\n3")
    pd.DataFrame({"x": range(7)}).to_parquet(tmp_path / "b.parquet")
    assert count_rows(tmp_path / "a.csv") == 3 and count_rows(tmp_path / "b.parquet") == 7
