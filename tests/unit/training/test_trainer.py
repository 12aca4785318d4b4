"""Training end to end on small generated files, through the CLI (`tabserve train`)."""

from pathlib import Path
from typing import Any

import bentoml
import numpy as np
import pandas as pd
import pytest
from bentoml.exceptions import NotFound

from tabserve.cli.train import model_name_for
from tabserve.model_store import get_model
from tabserve.training.trainer import LIBRARIES
from tests.factories import mixed_frame, train_cli, write_csv
from tests.servers import REPO


def models_named(name: str) -> list[str]:
    try:
        return [str(model.tag) for model in bentoml.models.list(name)]
    except NotFound:
        return []


def test_trains_a_mixed_csv_and_stores_metadata_and_reference(tmp_path: Path) -> None:
    data = write_csv(mixed_frame(), tmp_path / "mixed.csv")
    assert train_cli(["--data", str(data), "--target", "label", "--name", "unit_mixed"]) == 0
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
    assert train_cli(["--data", str(data), "--target", "label", "--name", "unit_reg"]) == 0
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
    assert train_cli(["--data", str(data), "--target", target, "--name", "unit_bad"]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and err.count("\n") == 0
    assert models_named("unit_bad") == []


def test_if_missing_does_not_retrain(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("model:\n  name: unit_mixed\n")
    data = write_csv(mixed_frame(), tmp_path / "mixed.csv")
    assert (
        train_cli(["--config", str(config), "--data", str(data), "--target", "label", "--name", "unit_mixed"])
        == 0
    )
    before = models_named("unit_mixed")
    assert train_cli(["--config", str(config), "--if-missing"]) == 0
    assert models_named("unit_mixed") == before and "not training" in capsys.readouterr().out


def test_reference_is_a_parquet_file_inside_the_model_directory() -> None:
    stored = get_model("unit_mixed:latest")
    assert stored.reference_path.parent == stored.path
    assert isinstance(pd.read_parquet(stored.reference_path), pd.DataFrame)


def _signal_frame(rows: int = 240, seed: int = 1) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, rows)
    return pd.DataFrame({"x": x.round(3), "c": rng.choice(["a", "b"], rows)}), x > 0


@pytest.mark.parametrize(
    ("labels", "classes"),
    [
        (lambda y: np.where(y, 1, 0), [0, 1]),
        (lambda y: y, [False, True]),
        (lambda y: np.where(y, 2.0, 1.0), [1, 2]),
        (lambda y: np.where(y, " yes ", "no"), ["no", "yes"]),
        (lambda y: np.where(y, 1.5, 0.5), ["0.5", "1.5"]),
    ],
    ids=["zero-one", "bool", "float-coded", "text-with-spaces", "float-classes"],
)
def test_class_targets_keep_their_type(tmp_path: Path, labels: Any, classes: list[Any]) -> None:
    frame, y = _signal_frame()
    data = write_csv(frame.assign(y=labels(y)), tmp_path / "labels.csv")
    config = tmp_path / "c.yaml"
    config.write_text("training:\n  task: classification\n")
    assert (
        train_cli(
            [
                "--config",
                str(config),
                "--data",
                str(data),
                "--target",
                "y",
                "--name",
                "unit_labels",
                "--force",
            ]
        )
        == 0
    )
    stored = get_model("unit_labels:latest")
    assert stored.metadata["classes"] == classes
    assert [type(c) for c in stored.metadata["classes"]] == [type(c) for c in classes]
    assert stored.metadata["positive_class"] == classes[-1]
    result = stored.load_predictor().predict_records([{"x": 2.0, "c": "a"}])[0]
    assert result["prediction"] == classes[-1] and type(result["prediction"]) is type(classes[-1])
    assert set(result["probabilities"]) == {str(c) for c in classes}


def test_many_integer_values_are_a_regression(tmp_path: Path) -> None:
    frame, _ = _signal_frame()
    data = write_csv(frame.assign(y=(frame["x"] * 100).round().astype(int)), tmp_path / "counts.csv")
    assert train_cli(["--data", str(data), "--target", "y", "--name", "unit_counts"]) == 0
    assert get_model("unit_counts:latest").metadata["task"] == "regression"


def test_report_has_baselines_and_per_class_figures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame, y = _signal_frame()
    data = write_csv(frame.assign(y=np.where(y, "pos", "neg")), tmp_path / "report.csv")
    assert train_cli(["--data", str(data), "--target", "y", "--name", "unit_report"]) == 0
    out = capsys.readouterr().out
    assert "baseline" in out and "f1 is the F1 of class 'pos'" in out
    meta = get_model("unit_report:latest").metadata
    assert (
        meta["baseline_metrics"]["roc_auc"] == 0.5
        and meta["metrics"]["accuracy"] > meta["baseline_metrics"]["accuracy"]
    )
    assert set(meta["per_class"]) == {"neg", "pos"}
    assert train_cli(["--data", str(data), "--target", "y", "--name", "unit_report"]) == 0
    assert "previous (unit_report:" in capsys.readouterr().out


def test_name_comes_from_the_file_and_a_different_task_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert model_name_for("sklearn:breast_cancer") is None
    assert model_name_for("/data/Churn Data (2024).csv") == "churn_data_2024"
    frame, y = _signal_frame()
    data = write_csv(frame.assign(y=np.where(y, "p", "q")), tmp_path / "Unit Named.csv")
    assert train_cli(["--data", str(data), "--target", "y"]) == 0
    assert models_named("unit_named")
    write_csv(frame.assign(y=frame["x"] * 3.3), data)
    assert train_cli(["--data", str(data), "--target", "y"]) == 2
    err = capsys.readouterr().err
    assert "another task" in err and "--force" in err and err.strip().count("\n") == 0
    assert len(models_named("unit_named")) == 1
    assert train_cli(["--data", str(data), "--target", "y", "--force"]) == 0
    assert len(models_named("unit_named")) == 2


def test_column_roles_are_stored_and_dropped_columns_named(tmp_path: Path) -> None:
    frame, y = _signal_frame()
    rows = len(frame)
    frame = frame.assign(
        id=[f"C{i:05d}" for i in range(rows)],
        const="k",
        empty="",
        day=pd.date_range("2024-01-01", periods=rows).strftime("%Y-%m-%d"),
        keep="z",
        y=np.where(y, "p", "q"),
    )
    data = write_csv(frame, tmp_path / "roles.csv")
    assert train_cli(["--data", str(data), "--target", "y", "--name", "unit_roles", "--drop", "keep"]) == 0
    meta = get_model("unit_roles:latest").metadata
    assert {f["name"]: f["kind"] for f in meta["feature_schema"]} == {
        "x": "numeric",
        "c": "categorical",
        "day": "datetime",
    }
    reasons = meta["dropped_columns"]
    assert set(reasons) == {"id", "const", "empty", "keep"}
    assert reasons["id"].startswith("id-like") and reasons["const"].startswith("constant")
    assert reasons["empty"] == "all missing" and reasons["keep"] == "dropped by configuration"


def test_recorded_library_versions_need_only_the_serving_packages() -> None:
    """The monitoring extra (evidently) is optional: training where it is absent must still work."""
    lines = (REPO / "requirements" / "serving.txt").read_text().splitlines()
    serving = {line.split("==")[0] for line in lines if "==" in line and not line.startswith(" ")}
    assert set(LIBRARIES) <= serving
