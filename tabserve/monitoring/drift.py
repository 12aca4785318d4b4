"""Compare a live window with a model's reference sample: data drift, prediction drift, quality.

Evidently 0.7 computes the per-column drift tests (drift_metrics: read by metric id; column types
from the model's feature schema); the data-drift alarm weighs them by the model's importance
(alarm.py); quality is accuracy (classifiers) or MAE (regressors) on the labelled rows.

The verdict names its cause: `drift` (data or prediction drift), `quality` (realized quality
dropped), `drift_and_quality` (both), `ok`, or `not_enough_data`. Any but `ok` and
`not_enough_data` is an alarm (exit code 1).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from tabserve.monitoring.alarm import DataDriftJudgement, importance_weights, judge_data_drift
from tabserve.monitoring.drift_metrics import ColumnDrift, build_metrics, read_column_drifts, run_report
from tabserve.monitoring.estimated_quality import EstimatedQuality
from tabserve.monitoring.quality import Quality, judge_quality, quality
from tabserve.monitoring.quality_series import QualitySeries
from tabserve.predictor import PREDICTION_COLUMN
from tabserve.schema import FeatureSchema
from tabserve.settings import MonitoringSettings

VERDICT_OK, VERDICT_DRIFT, VERDICT_NOT_ENOUGH = "ok", "drift", "not_enough_data"
VERDICT_QUALITY, VERDICT_DRIFT_AND_QUALITY = "quality", "drift_and_quality"
ALARM_VERDICTS = (VERDICT_DRIFT, VERDICT_QUALITY, VERDICT_DRIFT_AND_QUALITY)
# Reason kinds, in the order the report lists them.
DATA_DRIFT, PREDICTION_DRIFT, QUALITY, ESTIMATED_QUALITY = (
    "data drift",
    "prediction drift",
    "quality",
    "estimated quality",
)
ATTRIBUTION_DRIFT = "attribution drift"


@dataclass(frozen=True)
class Reason:
    kind: str
    fired: bool | None  # None: not judged (not enough data or labels, or not measured)
    detail: str


@dataclass
class DriftResult:
    current_rows: int
    reference_rows: int
    drift_share: float | None = None
    dataset_drift: bool | None = None  # the data-drift alarm under the policy (None: not compared)
    features: dict[str, ColumnDrift] = field(default_factory=dict)
    prediction: ColumnDrift | None = None
    quality: Quality | None = None
    data_drift: DataDriftJudgement | None = None
    importance: dict[str, float] | None = None  # feature -> share of the model's importance
    message: str = ""
    estimated_quality: EstimatedQuality | None = None  # classifiers: set by the job (no labels needed)
    attribution: dict[str, Any] | None = None  # attribution drift, set by the job (attribution_drift.py)

    @property
    def drifted_features(self) -> list[str]:
        return [name for name, column in self.features.items() if column.drifted]

    @property
    def drift_alarm(self) -> bool:
        attribution = bool(self.attribution and self.attribution["drift"])
        return bool(self.dataset_drift) or bool(self.prediction and self.prediction.drifted) or attribution

    @property
    def quality_alarm(self) -> bool:
        estimated = bool(self.estimated_quality and self.estimated_quality.degraded)
        return bool(self.quality and self.quality.degraded) or estimated

    @property
    def verdict(self) -> str:
        if self.dataset_drift is None:  # no comparison was run
            return VERDICT_NOT_ENOUGH
        if self.drift_alarm and self.quality_alarm:
            return VERDICT_DRIFT_AND_QUALITY
        if self.drift_alarm:
            return VERDICT_DRIFT
        return VERDICT_QUALITY if self.quality_alarm else VERDICT_OK

    @property
    def alarm(self) -> bool:
        return self.verdict in ALARM_VERDICTS

    def reasons(self) -> list[Reason]:
        """Each check with its outcome: what the report and the terminal show under the verdict."""
        if self.dataset_drift is None:
            return [Reason(DATA_DRIFT, None, self.message)]
        judgement = self.data_drift
        drifted = len(self.drifted_features)
        data_detail = (
            "; ".join(judgement.reasons)
            if judgement and judgement.reasons
            else (f"{drifted} of {len(self.features)} features drifted, none that the policy alarms on")
        )
        found = [Reason(DATA_DRIFT, bool(self.dataset_drift), data_detail)]
        if self.prediction is not None:
            column = self.prediction
            found.append(
                Reason(
                    PREDICTION_DRIFT,
                    column.drifted,
                    f"{column.method} {column.score:.4g} (threshold {column.threshold:.3g})",
                )
            )
        found.append(self._attribution_reason())
        found.append(self._quality_reason())
        found.append(self._estimated_quality_reason())
        return found

    def _attribution_reason(self) -> Reason:
        found = self.attribution
        if found is None:
            return Reason(
                ATTRIBUTION_DRIFT, None, "not measured (no attributions stored at training, or no shap)"
            )
        moved = max(found["columns"].items(), key=lambda item: abs(item[1]["change"]))
        return Reason(
            ATTRIBUTION_DRIFT,
            bool(found["drift"]),
            f"nDCG {found['ndcg']:.4f} of the columns' ranking by mean |attribution| on {found['rows']} rows"
            f" (threshold {found['threshold']:.3g}); most moved: {moved[0]}"
            f" {moved[1]['reference_share']:.1%} -> {moved[1]['window_share']:.1%} of the total",
        )

    def _estimated_quality_reason(self) -> Reason:
        estimate = self.estimated_quality
        if estimate is None:
            return Reason(ESTIMATED_QUALITY, None, "not estimated (a regressor, or no calibration stored)")
        return Reason(
            ESTIMATED_QUALITY,
            estimate.degraded,
            f"{estimate.metric} estimated {estimate.estimated:.4f} without labels on {estimate.rows} rows"
            f" against {estimate.reference:.4f} at training (valid under covariate shift only)",
        )

    def _quality_reason(self) -> Reason:
        scored = self.quality
        if scored is None or scored.current is None:
            labelled = scored.labelled if scored else 0
            return Reason(QUALITY, None, f"not judged: {labelled} labelled rows in the window")
        return Reason(
            QUALITY,
            bool(scored.degraded),
            f"{scored.metric} {scored.current:.4f} on {scored.labelled} labels"
            f" against {scored.reference:.4f} on the reference",
        )

    def to_dict(self) -> dict[str, Any]:
        derived = {
            "verdict": self.verdict,
            "drifted_features": self.drifted_features,
            "alarm": self.alarm,
            "reasons": [asdict(reason) for reason in self.reasons()],
        }
        return {**asdict(self), **derived}


def compare(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    schema: FeatureSchema,
    classifier: bool,
    settings: MonitoringSettings,
    importance: dict[str, float] | None = None,
    series: QualitySeries | None = None,
) -> tuple[DriftResult, Any]:
    """Returns the result and Evidently's snapshot (None when there was not enough data).

    `importance`: the model's mean permutation importance per feature (None: not recorded).
    `series`: quality columns whose means the snapshot stores for the dashboard (not compared).
    """
    if len(current) < settings.min_samples:
        return DriftResult(
            current_rows=len(current),
            reference_rows=len(reference),
            message=f"{len(current)} rows in the window, fewer than min_samples={settings.min_samples}",
        ), None
    # Dates and times are not compared: their values move forward by nature (every new date is
    # "unseen"); their numeric parts would fire on any window of another month.
    metrics = build_metrics(schema, classifier, settings, series.columns if series else ())
    quality_frames = (series.current, series.reference) if series else None
    snapshot = run_report(
        reference, current, schema, classifier, metrics, settings.drift_max_categories, quality_frames
    )
    drifts = read_column_drifts(snapshot, metrics)
    prediction = drifts.pop(PREDICTION_COLUMN, None)
    judgement = judge_data_drift(
        {name: column.drifted for name, column in drifts.items()}, importance, settings
    )
    scored = judge_quality(
        quality(reference, current, classifier, settings.min_labels), settings.quality_drop
    )
    result = DriftResult(
        current_rows=len(current),
        reference_rows=len(reference),
        drift_share=judgement.drift_share,
        dataset_drift=judgement.drifted,
        features=drifts,
        prediction=prediction,
        quality=scored,
        data_drift=judgement,
        importance=importance_weights(importance) if importance else None,
    )
    return result, snapshot
