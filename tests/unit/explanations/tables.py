"""Tables with every column shape the folding must handle, and pipelines fitted on them."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from tabserve.pipeline import build_pipeline, make_estimator
from tabserve.predictor import Predictor
from tabserve.schema import coerce_frame, infer_schema
from tabserve.settings import EstimatorSettings

RARE_CITIES = [f"village{i}" for i in range(12)]  # pooled into one "infrequent" output


def mixed_table(rows: int = 500, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """income/age numbers, a city (three frequent, twelve rare values), a date; `score` depends
    on income, city and the date's month."""
    rng = np.random.default_rng(seed)
    income = rng.normal(50, 15, rows)
    city = rng.choice(["paris", "lyon", "nice", *RARE_CITIES], rows, p=[0.3, 0.25, 0.25] + [0.2 / 12] * 12)
    day = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 700, rows), unit="D")
    frame = pd.DataFrame(
        {
            "income": income.round(2),
            "age": rng.integers(18, 80, rows).astype(float),
            "city": city,
            "day": day.strftime("%Y-%m-%d"),
        }
    )
    frame.loc[rng.choice(rows, rows // 10, replace=False), "income"] = np.nan
    score = np.nan_to_num(income, nan=50) / 10 + (city == "paris") * 3 + (day.month.to_numpy() > 6) * 2
    return frame, score + rng.normal(0, 1, rows)


def graded_table(rows: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Eight numeric columns x0..x7, each weighing half the one before in the target."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({f"x{i}": rng.normal(0, 1, rows) for i in range(8)})
    weights = 8.0 / 2.0 ** np.arange(8)
    return frame, frame.to_numpy() @ weights + rng.normal(0, 0.1, rows)


def target(score: np.ndarray, kind: str) -> np.ndarray:
    if kind == "regression":
        return score
    if kind == "binary":
        return np.where(score > np.median(score), "yes", "no")
    return np.digitize(score, np.quantile(score, [0.33, 0.66])).astype(str)  # three classes


def fitted_predictor(
    estimator: str, kind: str, params: dict[str, Any] | None = None
) -> tuple[Predictor, pd.DataFrame]:
    """A Predictor trained like `tabserve train` does, and its coerced training frame."""
    frame, score = mixed_table()
    return fitted_on(frame, target(score, kind), estimator, kind, params)


def fitted_on(
    frame: pd.DataFrame, labels: np.ndarray, estimator: str, kind: str, params: dict[str, Any] | None = None
) -> tuple[Predictor, pd.DataFrame]:
    schema = infer_schema(frame)
    features = coerce_frame(frame, schema)
    task = "regression" if kind == "regression" else "classification"
    spec = EstimatorSettings(estimator=estimator, params=params or {})
    pipeline = build_pipeline(schema, make_estimator(spec, task), max_categories=5)
    pipeline.fit(features, labels)
    classes = tuple(pipeline.classes_.tolist()) if task == "classification" else None
    return Predictor(pipeline, schema, tag="t:1", classes=classes), features
