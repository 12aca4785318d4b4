"""The one scoring code path: real-time, batch, file, stream and Spark scoring all call `Predictor`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from tabserve.schema import FeatureSchema, coerce_frame

PREDICTION_COLUMN = "prediction"
PROBABILITY_PREFIX = "probability_"
ERROR_COLUMN = "error"  # file and Spark scoring: why a row was not scored
TARGET_COLUMN = "target"  # the target's name inside the reference sample


def native(value: Any) -> Any:
    """numpy scalars -> plain Python, so results serialise to JSON as they are."""
    return value.item() if isinstance(value, np.generic) else value


@dataclass(frozen=True)
class Predictor:
    pipeline: Pipeline
    schema: FeatureSchema
    tag: str
    classes: tuple[Any, ...] | None  # None for a regressor

    @property
    def is_classifier(self) -> bool:
        return self.classes is not None

    @property
    def output_columns(self) -> list[str]:
        probabilities = [f"{PROBABILITY_PREFIX}{label}" for label in self.classes or ()]
        return [PREDICTION_COLUMN, *probabilities]

    def records_to_frame(self, records: list[dict[str, Any]]) -> pd.DataFrame:
        """Validated records -> the frame the pipeline expects (fast path for the API)."""
        numeric = self.schema.numeric
        frame = pd.DataFrame(
            np.array([[record[name] for name in numeric] for record in records], dtype=float),
            columns=numeric,
        )
        for name in (*self.schema.categorical, *self.schema.datetime):
            values = [record[name] for record in records]
            frame[name] = np.array([np.nan if v is None else v for v in values], dtype=object)
        return frame

    def _score(self, features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
        if self.classes is None:
            return np.asarray(self.pipeline.predict(features)), None
        proba = np.asarray(self.pipeline.predict_proba(features))
        # The classes' own dtype (int, bool, str): an object array of ints is an "unknown" target
        # type to scikit-learn's metrics, and 0/1 models must answer 0/1, not "0"/"1".
        labels = np.asarray(self.classes)
        return labels[proba.argmax(axis=1)], proba

    def predict_frame(self, frame: pd.DataFrame, prepared: bool = False) -> pd.DataFrame:
        """Raw feature frame (any extra columns ignored) -> prediction and probability columns.

        `prepared`: the frame already holds exactly the schema's columns, coerced (file scoring).
        """
        prediction, proba = self._score(frame if prepared else coerce_frame(frame, self.schema))
        out = pd.DataFrame({PREDICTION_COLUMN: prediction}, index=frame.index)
        if proba is not None:
            for index, column in enumerate(self.output_columns[1:]):
                out[column] = proba[:, index]
        return out

    def _results(self, prediction: np.ndarray, proba: np.ndarray | None) -> list[dict[str, Any]]:
        if proba is None:
            return [{"prediction": float(value)} for value in prediction]
        keys = [str(label) for label in self.classes or ()]
        return [
            {
                "prediction": native(label),
                "probabilities": dict(zip(keys, row.tolist(), strict=True)),
            }
            for label, row in zip(prediction, proba, strict=True)
        ]

    def predict_records(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Validated records -> one result dict each: prediction and (classifiers) probabilities."""
        return self._results(*self._score(self.records_to_frame(records)))

    def results_from_frame(self, scored: pd.DataFrame) -> list[dict[str, Any]]:
        """`predict_frame` output -> the same per-record results as `predict_records`."""
        proba = scored[self.output_columns[1:]].to_numpy(dtype=float) if self.is_classifier else None
        return self._results(scored[PREDICTION_COLUMN].to_numpy(), proba)
