"""A census-like table of 14 features with a known signal, its model, and windows logged as the
service logs them: the known answers of the monitoring tests (unit and integration).

The label depends on `x0` (numeric) and `city` (categorical); the 12 other features are noise.
6,000 rows: the held-out reference has 1,500 (over 1,000, Evidently's defaults are effect sizes,
Wasserstein and Jensen-Shannon at 0.1, which a clean window does not pass by chance; at most
1,000, p-values at 0.05, which 5% of clean windows pass on each feature).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from tabserve.model_store import StoredModel, get_model
from tabserve.predictions.bulk_insert import insert_rows
from tabserve.predictions.migration import ensure_schema
from tabserve.predictions.store import make_engine, set_labels
from tabserve.settings import MonitoringSettings
from tests.factories import train_cli, write_csv

NOISE_NUMERIC = [f"n{i}" for i in range(1, 9)]
NOISE_CATEGORICAL = [f"c{i}" for i in range(1, 5)]
NOISE = {*NOISE_NUMERIC, *NOISE_CATEGORICAL}
TRAINING_ROWS = 6000
CENSUS_MODEL = "unit_census"


def census_like(rows: int, seed: int, x0_mean: float = 0.0) -> pd.DataFrame:
    """`x0_mean` moves the population (a covariate shift: older people); the relation stays."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {"x0": rng.normal(x0_mean, 1, rows), "city": rng.choice(["paris", "lyon", "nice"], rows)}
    )
    for name in NOISE_NUMERIC:
        frame[name] = rng.normal(10, 3, rows)
    for name in NOISE_CATEGORICAL:
        frame[name] = rng.choice(["a", "b", "c"], rows)
    signal = 2 * frame["x0"] + 1.5 * (frame["city"] == "paris") + rng.normal(0, 0.5, rows)
    return frame.assign(label=np.where(signal > 0.5, "yes", "no"))


def train_census_model(folder: Path) -> StoredModel:
    data = write_csv(census_like(TRAINING_ROWS, seed=0), folder / "census.csv")
    assert train_cli(["--data", str(data), "--target", "label", "--name", CENSUS_MODEL]) == 0
    return get_model(f"{CENSUS_MODEL}:latest")


ROWS = 400


def log_window(model: StoredModel, url: str, shift: dict[str, float], labels_as: str | None) -> None:
    """Score a fresh draw, log it, and label every row: "true", "flipped" (its opposite) or not (None)."""
    frame = census_like(ROWS, seed=11)
    labels = frame.pop("label")
    for name, change in shift.items():
        frame[name] = frame[name] + change
    engine = make_engine(url)
    ids = log_scored(model, engine, frame)
    if labels_as is None:
        engine.dispose()
        return
    truth = labels.map({"yes": "no", "no": "yes"}) if labels_as == "flipped" else labels
    set_labels(engine, dict(zip(ids, truth, strict=True)))
    engine.dispose()


def settings_in(folder: Path, **changes: Any) -> MonitoringSettings:
    return MonitoringSettings(
        sqlite_path=str(folder / "log.db"),
        reports_dir=str(folder / "reports"),
        workspace=str(folder / "workspace"),
        **changes,
    )


def census_drifted(rows: int, seed: int, x0_mean: float = 0.0) -> pd.DataFrame:
    """The same features after a concept drift: living in paris now lowers the odds of "yes"."""
    frame = census_like(rows, seed, x0_mean).drop(columns="label")
    rng = np.random.default_rng(seed + 1)
    signal = 2 * frame["x0"] - 2.0 * (frame["city"] == "paris") + rng.normal(0, 0.5, rows)
    return frame.assign(label=np.where(signal > -0.5, "yes", "no"))


def log_scored(
    model: StoredModel, engine: Engine, features: pd.DataFrame, seconds_apart: float = 0.0
) -> list[str]:
    """Score `features` and log them through the log's own insert, one row every `seconds_apart`
    seconds ending now (0: all at once, as one scored batch). Returns the request ids."""
    scored = model.load_predictor().predict_frame(features)
    now = datetime.now(UTC)
    count = len(features)
    rows: list[dict[str, Any]] = [
        {
            "request_id": uuid.uuid4().hex,
            "ts": now - timedelta(seconds=seconds_apart * (count - index)),
            "model": model.tag,
            "variant": "default",
            "features": record,
            "prediction": prediction,
            "probabilities": None,
        }
        for index, (record, prediction) in enumerate(
            zip(features.to_dict("records"), scored["prediction"], strict=True)
        )
    ]
    ensure_schema(engine)
    insert_rows(engine, rows)
    return [row["request_id"] for row in rows]


def log_labelled(model: StoredModel, url: str, frame: pd.DataFrame, seconds_apart: float = 1.0) -> list[str]:
    """Log `frame` (with its `label`) as `log_scored` does, a second apart (a time split needs
    distinct times), and label every row. Returns the request ids."""
    engine = make_engine(url)
    ids = log_scored(model, engine, frame.drop(columns="label"), seconds_apart)
    set_labels(engine, dict(zip(ids, frame["label"], strict=True)))
    engine.dispose()
    return ids
