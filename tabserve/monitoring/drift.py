"""Compare a live window with a model's reference sample: data drift, prediction drift, quality.

Evidently 0.7 computes the per-column drift tests (drift_metrics: read by metric id; column types
from the model's feature schema); quality is accuracy (classifiers) or MAE (regressors) on the labelled rows.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from tabserve.monitoring.drift_metrics import ColumnDrift, build_metrics, read_column_drifts, run_report
from tabserve.monitoring.quality import Quality, judge_quality, quality
from tabserve.predictor import PREDICTION_COLUMN
from tabserve.schema import FeatureSchema
from tabserve.settings import MonitoringSettings

VERDICT_OK, VERDICT_DRIFT, VERDICT_NOT_ENOUGH = "ok", "drift", "not_enough_data"


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
        return bool(self.dataset_drift) or prediction or degraded

    def to_dict(self) -> dict[str, Any]:
        derived = {"verdict": self.verdict, "drifted_features": self.drifted_features, "alarm": self.alarm}
        return {**asdict(self), **derived}


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
    metrics = build_metrics(schema, classifier, settings)
    snapshot = run_report(reference, current, schema, classifier, metrics)
    drifts = read_column_drifts(snapshot, metrics)
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
