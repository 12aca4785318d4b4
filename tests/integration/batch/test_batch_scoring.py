"""`python -m tabserve score`: local and Spark engines on real files; they agree row for row."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tabserve.model_store import StoredModel
from tests.factories import mixed_frame
from tests.servers import REPO


def score(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tabserve", "score", *args, "--quiet"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )


@pytest.fixture(scope="module")
def input_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    frame = mixed_frame(rows=3000, seed=11).drop(columns=["label"])
    frame.insert(0, "id", range(3000))
    frame[" income "] = frame[" income "].map(lambda v: "" if pd.isna(v) else str(v))
    frame.loc[7, " income "] = "n/a?"  # a bad row
    path = tmp_path_factory.mktemp("batch") / "input.csv"
    frame.to_csv(path, index=False)
    return path


def test_local_engine_scores_a_file_and_reports_bad_rows(
    mixed_model: StoredModel, input_csv: Path, tmp_path: Path
) -> None:
    result = score(
        str(input_csv), str(tmp_path / "out.csv"), "--model", "mixed:latest", "--chunk-rows", "700"
    )
    assert result.returncode == 0, result.stderr
    assert "scored 2999/3000 rows" in result.stdout and "row 8: column 'income'" in result.stdout
    out = pd.read_csv(tmp_path / "out.csv")
    assert len(out) == 3000 and out["id"].tolist() == list(range(3000))
    assert set(out["prediction"].dropna()) == {"yes", "no"}


def test_directory_in_directory_out(mixed_model: StoredModel, input_csv: Path, tmp_path: Path) -> None:
    result = score(str(input_csv.parent), str(tmp_path / "scored"), "--model", "mixed:latest")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "scored" / "input.csv").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--strict"], "strict mode: row 8"),
        (["--model", "nothere:latest"], "not in the BentoML model store"),
    ],
)
def test_bad_input_exits_2_with_a_message(
    mixed_model: StoredModel, input_csv: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    model_args = [] if "--model" in args else ["--model", "mixed:latest"]
    result = score(str(input_csv), str(tmp_path / "out.csv"), *model_args, *args)
    assert result.returncode == 2 and message in result.stderr


def test_missing_feature_column_exits_2(mixed_model: StoredModel, tmp_path: Path) -> None:
    source = tmp_path / "bad.csv"
    source.write_text("income,age\n1,2\n")
    result = score(str(source), str(tmp_path / "out.csv"), "--model", "mixed:latest")
    assert result.returncode == 2 and "lacks feature column(s) ['city']" in result.stderr


def test_spark_output_equals_the_local_engine_row_for_row(
    mixed_model: StoredModel, input_csv: Path, tmp_path: Path
) -> None:
    local = score(str(input_csv), str(tmp_path / "local.csv"), "--model", "mixed:latest")
    spark = score(str(input_csv), str(tmp_path / "spark.csv"), "--model", "mixed:latest", "--engine", "spark")
    assert local.returncode == 0 and spark.returncode == 0, spark.stderr[-3000:]
    expected = pd.read_csv(tmp_path / "local.csv").sort_values("id").reset_index(drop=True)
    parts = sorted((tmp_path / "spark.csv").glob("part-*.csv"))
    actual = pd.concat([pd.read_csv(part) for part in parts]).sort_values("id").reset_index(drop=True)
    assert actual["id"].tolist() == expected["id"].tolist()
    assert actual["prediction"].fillna("").tolist() == expected["prediction"].fillna("").tolist()
    for column in ("probability_no", "probability_yes"):
        assert actual[column].fillna(-1).to_numpy() == pytest.approx(expected[column].fillna(-1).to_numpy())
    assert actual["error"].fillna("").tolist() == expected["error"].fillna("").tolist()


def test_a_semicolon_file_with_decimal_commas_scores_like_the_comma_version(
    mixed_model: StoredModel, tmp_path: Path
) -> None:
    frame = mixed_frame(rows=500, seed=12).drop(columns=["label"])
    comma, semicolon = tmp_path / "comma.csv", tmp_path / "semicolon.csv"
    frame.to_csv(comma, index=False)
    frame.to_csv(semicolon, index=False, sep=";", decimal=",")
    for path in (comma, semicolon):
        result = score(str(path), str(tmp_path / f"out_{path.name}"), "--model", "mixed:latest")
        assert result.returncode == 0, result.stderr
        assert "scored 500/500 rows" in result.stdout
    expected = pd.read_csv(tmp_path / "out_comma.csv")
    found = pd.read_csv(tmp_path / "out_semicolon.csv")  # the output is written with commas
    pd.testing.assert_frame_equal(found, expected)
    explicit = score(str(semicolon), str(tmp_path / "explicit.csv"), "--model", "mixed:latest", "--sep", ";")
    assert explicit.returncode == 0, explicit.stderr
    wrong = score(str(semicolon), str(tmp_path / "wrong.csv"), "--model", "mixed:latest", "--sep", ",")
    assert wrong.returncode == 2 and "--sep ';'" in wrong.stderr, wrong.stderr
