"""Compare a live window with a model's reference sample: data drift, prediction drift, quality.

Evidently 0.7 computes the per-column drift tests (column types from the model's feature
schema); quality is accuracy (classifiers) or MAE (regressors) on the labelled rows.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset

from tabserve.monitoring.estimated_quality import EstimatedQuality
from tabserve.monitoring.quality import Quality, judge_quality, quality
from tabserve.predictor import PREDICTION_COLUMN
from tabserve.schema import FeatureSchema
from tabserve.settings import MonitoringSettings

VERDICT_OK, VERDICT_DRIFT, VERDICT_NOT_ENOUGH = "ok", "drift", "not_enough_data"
DRIFT_TEST_PREFIX = "Value Drift for column "


@dataclass
class ColumnDrift:
    score: float
    method: str
    threshold: float
    drifted: bool


@dataclass
class DriftResult:
    current_rows: int
    reference_rows: int
    drift_share: float | None = None
    dataset_drift: bool | None = None
    features: dict[str, ColumnDrift] = field(default_factory=dict)
    prediction: ColumnDrift | None = None
    quality: Quality | None = None
    message: str = ""
    estimated_quality: EstimatedQuality | None = None  # classifiers: set by the job (no labels needed)

    @property
    def drifted_features(self) -> list[str]:
        return [name for name, column in self.features.items() if column.drifted]

    @property
    def verdict(self) -> str:
        if self.dataset_drift is None:  # no comparison was run
            return VERDICT_NOT_ENOUGH
        return VERDICT_DRIFT if self.alarm else VERDICT_OK

    @property
    def alarm(self) -> bool:
        degraded = bool(self.quality and self.quality.degraded)
        prediction = bool(self.prediction and self.prediction.drifted)
        estimated = bool(self.estimated_quality and self.estimated_quality.degraded)
        return bool(self.dataset_drift) or prediction or degraded or estimated

    def to_dict(self) -> dict[str, Any]:
        derived = {"verdict": self.verdict, "drifted_features": self.drifted_features, "alarm": self.alarm}
        return {**asdict(self), **derived}


def _definition(schema: FeatureSchema, classifier: bool) -> DataDefinition:
    numeric, categorical = list(schema.numeric), list(schema.categorical)
    (categorical if classifier else numeric).append(PREDICTION_COLUMN)
    return DataDefinition(numerical_columns=numeric, categorical_columns=categorical)


def _preset(settings: MonitoringSettings) -> DataDriftPreset:
    return DataDriftPreset(
        drift_share=settings.drift_share,
        num_method=settings.num_method,
        num_threshold=settings.num_threshold,
        cat_method=settings.cat_method,
        cat_threshold=settings.cat_threshold,
    )


def _column_drifts(snapshot_dict: dict[str, Any]) -> dict[str, ColumnDrift]:
    """Per-column score, method and threshold from the metrics; the verdict from Evidently's tests."""
    scores = {}
    for metric in snapshot_dict["metrics"]:
        config = metric["config"]
        if config.get("type", "").endswith("ValueDrift"):
            scores[config["column"]] = (float(metric["value"]), config["method"], float(config["threshold"]))
    failed = {
        test["name"].removeprefix(DRIFT_TEST_PREFIX): test["status"] == "FAIL"
        for test in snapshot_dict["tests"]
        if test["name"].startswith(DRIFT_TEST_PREFIX)
    }
    return {
        column: ColumnDrift(score, method, threshold, failed.get(column, False))
        for column, (score, method, threshold) in scores.items()
    }


def compare(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    schema: FeatureSchema,
    classifier: bool,
    settings: MonitoringSettings,
) -> tuple[DriftResult, Any]:
    """Returns the result and Evidently's snapshot (None when there was not enough data)."""
    if len(current) < settings.min_samples:
        return DriftResult(
            current_rows=len(current),
            reference_rows=len(reference),
            message=f"{len(current)} rows in the window, fewer than min_samples={settings.min_samples}",
        ), None
    # Dates and times are not compared: their values move forward by nature (every new date is
    # "unseen"); their numeric parts would fire on any window of another month.
    columns = [*schema.numeric, *schema.categorical, PREDICTION_COLUMN]
    definition = _definition(schema, classifier)
    prepared = [frame[columns].copy() for frame in (current, reference)]
    for frame in prepared:
        if classifier:
            frame[PREDICTION_COLUMN] = frame[PREDICTION_COLUMN].astype(str)
        for name in schema.numeric:
            frame[name] = pd.to_numeric(frame[name], errors="coerce").astype(float)
        for name in schema.categorical:
            frame[name] = frame[name].astype(object).where(frame[name].notna(), np.nan)
    report = Report([_preset(settings)], include_tests=True)
    snapshot = report.run(
        Dataset.from_pandas(prepared[0], data_definition=definition),
        Dataset.from_pandas(prepared[1], data_definition=definition),
    )
    drifts = _column_drifts(snapshot.dict())
    prediction = drifts.pop(PREDICTION_COLUMN, None)
    share = sum(column.drifted for column in drifts.values()) / max(len(drifts), 1)
    scored = judge_quality(
        quality(reference, current, classifier, settings.min_labels), settings.quality_drop
    )
    result = DriftResult(
        current_rows=len(current),
        reference_rows=len(reference),
        drift_share=share,
        dataset_drift=share >= settings.drift_share,
        features=drifts,
        prediction=prediction,
        quality=scored,
    )
    return result, snapshot
