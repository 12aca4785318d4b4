"""Training end to end on small generated files, through the CLI (`python -m train`)."""

from pathlib import Path

import bentoml
import pandas as pd
import pytest
from bentoml.exceptions import NotFound

from tabserve.model_store import get_model
from tests.factories import mixed_frame, write_csv
from train.__main__ import main as train_main


def models_named(name: str) -> list[str]:
    try:
        return [str(model.tag) for model in bentoml.models.list(name)]
    except NotFound:
        return []


def test_trains_a_mixed_csv_and_stores_metadata_and_reference(tmp_path: Path) -> None:
    data = write_csv(mixed_frame(), tmp_path / "mixed.csv")
    assert train_main(["--data", str(data), "--target", "label", "--name", "unit_mixed"]) == 0
    stored = get_model("unit_mixed:latest")
    meta = stored.metadata
    assert meta["task"] == "classification" and meta["classes"] == ["no", "yes"]
    assert set(meta["metrics"]) == {"accuracy", "f1", "roc_auc", "log_loss"}
    assert meta["metrics"]["accuracy"] > 0.75
    assert {f["name"]: f["kind"] for f in meta["feature_schema"]} == {
        "income": "numeric",
        "age": "numeric",
        "city": "categorical",
    }
    assert meta["training_data"]["rows"] == 400 and len(meta["training_data"]["sha256"]) == 64
    assert stored.labels == {"stage": "staging"}
    reference = stored.load_reference()
    assert {"income", "prediction", "probability_yes", "target"} <= set(reference.columns)
    assert len(reference) == 100  # the held-out quarter


def test_numeric_target_trains_a_regressor(tmp_path: Path) -> None:
    frame = mixed_frame().assign(label=lambda f: f["age"] * 1.5 + 0.25)
    data = write_csv(frame, tmp_path / "reg.parquet")
    frame.to_parquet(data)
    assert train_main(["--data", str(data), "--target", "label", "--name", "unit_reg"]) == 0
    meta = get_model("unit_reg:latest").metadata
    assert meta["task"] == "regression" and set(meta["metrics"]) == {"mae", "rmse", "r2"}
    assert meta["metrics"]["r2"] > 0.9


@pytest.mark.parametrize(
    ("content", "target", "message"),
    [
        ("a,b\n1,2\n", "y", "target column 'y' not found"),
        ("", "y", "empty"),
        ("a,y\n1,p\n2,p\n3,p\n", "y", "single class"),
        ("a,y\n" + "".join(f"{i},{i % 2}\n" for i in range(30)) + "oops,1\n", "y", "unparseable"),
    ],
    ids=["missing-target", "empty-file", "single-class", "unparseable-numeric"],
)
def test_bad_data_fails_with_one_line_and_saves_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, target: str, message: str
) -> None:
    data = tmp_path / "bad.csv"
    data.write_text(content)
    assert train_main(["--data", str(data), "--target", target, "--name", "unit_bad"]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and err.count("\n") == 0
    assert models_named("unit_bad") == []


def test_if_missing_does_not_retrain(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("model:\n  name: unit_mixed\n")
    data = write_csv(mixed_frame(), tmp_path / "mixed.csv")
    assert train_main(["--config", str(config), "--data", str(data), "--target", "label"]) == 0
    before = models_named("unit_mixed")
    assert train_main(["--config", str(config), "--if-missing"]) == 0
    assert models_named("unit_mixed") == before and "not training" in capsys.readouterr().out


def test_reference_is_a_parquet_file_inside_the_model_directory() -> None:
    stored = get_model("unit_mixed:latest")
    assert stored.reference_path.parent == stored.path
    assert isinstance(pd.read_parquet(stored.reference_path), pd.DataFrame)
