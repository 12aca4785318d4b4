"""Small frames and files with known properties, made in the tests (no committed data)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tabserve.cli.main import main as tabserve_main
from tabserve.model_store import StoredModel


def mixed_frame(rows: int = 400, seed: int = 0) -> pd.DataFrame:
    """Numeric, categorical and missing values; the label depends on `income` and `city`."""
    rng = np.random.default_rng(seed)
    income = rng.normal(50, 15, rows)
    age = rng.integers(18, 80, rows).astype(float)
    city = rng.choice(["paris", "lyon", "nice"], rows)
    score = income / 10 + (city == "paris") * 3 + rng.normal(0, 1, rows)
    label = np.where(score > np.median(score), "yes", "no")
    frame = pd.DataFrame({" income ": income.round(2), "age": age, "city": city, "label": label})
    frame.loc[rng.choice(rows, rows // 10, replace=False), " income "] = np.nan
    frame.loc[rng.choice(rows, rows // 10, replace=False), "city"] = "?"
    return frame


# A person's email and name never seen in training: the log policy tests search for them.
EMAIL, NAME = "zed.secret@example.org", "Zed Secretname"
TRAINING_EMAIL = "ana@example.org"  # in the personal model's reference sample


def personal_frame(rows: int = 300, seed: int = 0) -> pd.DataFrame:
    """An email and a name column (few values: categorical features the model uses) and an income."""
    rng = np.random.default_rng(seed)
    income = rng.normal(50, 15, rows).round(2)
    emails = rng.choice([TRAINING_EMAIL, "bo@example.org", "cy@example.org", "di@example.org"], rows)
    names = rng.choice(["Ana Lopez", "Bo Chen", "Cy Diaz", "Di Evans"], rows)
    label = np.where(income + (names == "Bo Chen") * 10 > 55, "yes", "no")
    return pd.DataFrame({"income": income, "email": emails, "name": names, "label": label})


def raw_hits(folder: Path, values: tuple[str, ...], skip: str = "") -> list[str]:
    """Every file under `folder` holding one of `values`, searched as bytes whatever its format."""
    return [
        f"{path.relative_to(folder)}: {value}"
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != skip
        for value in values
        if value.encode() in path.read_bytes()
    ]


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


def prediction_rows(prefix: str, start: int, count: int) -> list[dict[str, Any]]:
    """Rows as the service hands them to the prediction log."""
    now = datetime.now(UTC)
    return [
        {
            "request_id": f"{prefix}{i}",
            "ts": now,
            "model": "m:1",
            "variant": "default",
            "features": {"x": float(i)},
            "prediction": "a",
            "probabilities": {"a": 1.0},
        }
        for i in range(start, start + count)
    ]


def reference_records(model: StoredModel, count: int | None = None) -> list[dict[str, Any]]:
    """Feature records from a numeric model's reference sample, cycled to `count` if given."""
    frame = model.load_reference()[model.schema.names]
    rows = [{str(k): float(v) for k, v in row.items()} for row in frame.to_dict("records")]
    return rows if count is None else [rows[i % len(rows)] for i in range(count)]


def train_cli(argv: list[str]) -> int:
    """`tabserve train ARGV` in this process: the exit code."""
    return tabserve_main(["train", *argv])


def drift_frame(rows: int, seed: int, shift_a: float = 0.0) -> pd.DataFrame:
    """Two numeric features and a categorical one, with a prediction column; `shift_a` moves `a`."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "a": rng.normal(0, 1, rows) + shift_a,
            "b": rng.normal(5, 2, rows),
            "c": rng.choice(["x", "y", "z"], rows, p=[0.5, 0.3, 0.2]),
        }
    )
    frame["prediction"] = np.where(frame["b"] > 5, "hi", "lo")
    return frame
