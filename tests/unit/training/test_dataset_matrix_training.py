"""Training on every shape of the dataset matrix, one shape at a time, from CSV and Parquet.

Through the CLI's `main` in-process (the integration matrix runs the same CLI as a subprocess):
what training decides (task, classes and their types, column kinds, dropped columns) is asserted
against each case's stated expectations.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tabserve.model_store import get_model
from tests.datasets_matrix import PARQUET, SINGLE_SHAPES, Case
from tests.factories import train_cli

# The shared signal is easy: a model below these learned nothing.
MIN_ACCURACY = 0.7
MIN_R2 = 0.5

FILES = [(name, "csv") for name in SINGLE_SHAPES] + [(name, "parquet") for name in PARQUET]


def train_case(case: Case, fmt: str, folder: Path) -> tuple[dict[str, Any], str]:
    path = case.write_csv(folder) if fmt == "csv" else case.write_parquet(folder)
    name = f"unit_{case.name}_{fmt}"
    code = train_cli(["--data", str(path), "--target", case.target, "--name", name])
    assert code == 0, f"training {path.name} exited with {code}"
    return get_model(f"{name}:latest").metadata, name


@pytest.mark.parametrize(("name", "fmt"), FILES, ids=[f"{name}-{fmt}" for name, fmt in FILES])
def test_training_decides_task_classes_and_column_roles(
    name: str,
    fmt: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    case = SINGLE_SHAPES[name]
    meta, _ = train_case(case, fmt, tmp_path)
    assert meta["task"] == case.task
    if case.classes is None:
        assert meta.get("classes") is None
        assert meta["metrics"]["r2"] > MIN_R2
    else:
        assert meta["classes"] == case.classes
        assert [type(label) for label in meta["classes"]] == [case.label_type] * len(case.classes)
        assert meta["metrics"]["accuracy"] > MIN_ACCURACY
    assert {spec["name"]: spec["kind"] for spec in meta["feature_schema"]} == case.kinds
    dropped = meta.get("dropped_columns", {})
    assert set(dropped) == set(case.dropped), dropped
    for column, reason in case.dropped.items():
        assert dropped[column].startswith(reason), (column, dropped[column])
    output = caplog.text + "".join(capsys.readouterr())
    warnings = [line for line in output.splitlines() if "WARNING" in line]
    for column in case.dropped:
        assert [line for line in warnings if column in line], f"no WARNING line names {column!r}:\n{output}"
