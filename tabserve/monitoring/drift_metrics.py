"""Evidently 0.7 at its public API: one `ValueDrift` metric per column, results read by metric id.

Each column's metric is built here, so its id (`metric.metric_id`, a fingerprint of its
configuration) is known before the run; the score is `snapshot.metric_results[id].value` and the
verdict is the status of the drift test Evidently attaches to that same result. Nothing is read
from display text (test names, titles): a renamed label in a new Evidently release cannot turn
"drift" into "no drift". A result without its drift test is an error, never a silent "no drift".

The count of drifted columns is a metric of its own over the features only: the prediction
column is measured (prediction drift) but is not a feature, so the report and the terminal
count the same columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.core.metric_types import TestStatus
from evidently.metrics import DriftedColumnsCount, MeanValue, ValueDrift

from tabserve.errors import TabserveError
from tabserve.monitoring.categories import cap_categories
from tabserve.predictor import PREDICTION_COLUMN
from tabserve.schema import FeatureSchema
from tabserve.settings import MonitoringSettings

METHOD_PARAM, THRESHOLD_PARAM = "method", "threshold"


class DriftReadError(TabserveError):
    """Evidently's results did not have the shape this module reads (an incompatible release)."""


@dataclass
class ColumnDrift:
    score: float
    method: str
    threshold: float
    drifted: bool


@dataclass(frozen=True)
class DriftMetrics:
    """The metrics of one comparison, by column: the keys to their results."""

    columns: dict[str, ValueDrift]
    count: DriftedColumnsCount
    quality: dict[str, MeanValue] = field(default_factory=dict)  # quality_series.py: not compared

    @property
    def all(self) -> list[Any]:
        return [*self.columns.values(), self.count, *self.quality.values()]


def build_metrics(
    schema: FeatureSchema, classifier: bool, settings: MonitoringSettings, quality: Sequence[str] = ()
) -> DriftMetrics:
    """A `ValueDrift` per compared feature and for the prediction, the features' drift count, and
    the mean of each `quality` column (the window's quality, for the dashboard)."""

    def drift(column: str, numeric: bool) -> ValueDrift:
        if numeric:
            return ValueDrift(column=column, method=settings.num_method, threshold=settings.num_threshold)
        return ValueDrift(column=column, method=settings.cat_method, threshold=settings.cat_threshold)

    columns = {name: drift(name, True) for name in schema.numeric}
    columns |= {name: drift(name, False) for name in schema.categorical}
    columns[PREDICTION_COLUMN] = drift(PREDICTION_COLUMN, not classifier)
    count = DriftedColumnsCount(
        columns=[*schema.numeric, *schema.categorical],
        drift_share=settings.drift_share,
        num_method=settings.num_method,
        num_threshold=settings.num_threshold,
        cat_method=settings.cat_method,
        cat_threshold=settings.cat_threshold,
        tests=[],  # its share test would judge by the share alone; our alarm policy judges (alarm.py)
    )
    return DriftMetrics(columns, count, {name: MeanValue(column=name, tests=[]) for name in quality})


def data_definition(schema: FeatureSchema, classifier: bool, quality: Sequence[str] = ()) -> DataDefinition:
    numeric, categorical = [*schema.numeric, *quality], list(schema.categorical)
    (categorical if classifier else numeric).append(PREDICTION_COLUMN)
    return DataDefinition(numerical_columns=numeric, categorical_columns=categorical)


def prepare(frame: pd.DataFrame, schema: FeatureSchema, classifier: bool) -> pd.DataFrame:
    """Pure: the compared columns with the types Evidently expects (numbers as float, text as object)."""
    prepared = frame[[*schema.numeric, *schema.categorical, PREDICTION_COLUMN]].copy()
    if classifier:
        prepared[PREDICTION_COLUMN] = prepared[PREDICTION_COLUMN].astype(str)
    for name in schema.numeric:
        prepared[name] = pd.to_numeric(prepared[name], errors="coerce").astype(float)
    for name in schema.categorical:
        prepared[name] = prepared[name].astype(object).where(prepared[name].notna(), np.nan)
    return prepared


def run_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    schema: FeatureSchema,
    classifier: bool,
    metrics: DriftMetrics,
    max_categories: int,
    quality: tuple[pd.DataFrame, pd.DataFrame] | None = None,
) -> Any:
    """Evidently's snapshot of the metrics (its tests included: they carry each column's verdict).

    Categoricals with more than `max_categories` reference values are compared on the most
    frequent ones and "(other)" (categories.py). `quality`: the quality columns of (current,
    reference), joined to each (quality_series.py).
    """
    then, now, _ = cap_categories(
        prepare(reference, schema, classifier),
        prepare(current, schema, classifier),
        schema.categorical,
        max_categories,
    )
    if quality is not None:
        now, then = now.join(quality[0]), then.join(quality[1])
    definition = data_definition(schema, classifier, list(metrics.quality))
    report = Report(metrics.all, include_tests=True)
    return report.run(
        Dataset.from_pandas(now, data_definition=definition),
        Dataset.from_pandas(then, data_definition=definition),
    )


def _column_drift(snapshot: Any, column: str, metric: ValueDrift) -> ColumnDrift:
    result = snapshot.metric_results.get(metric.metric_id)
    if result is None:
        raise DriftReadError(f"Evidently returned no drift result for column {column!r}")
    tests = [test for test in result.tests if test.metric_config.metric_id == metric.metric_id]
    if len(tests) != 1 or tests[0].status not in (TestStatus.FAIL, TestStatus.SUCCESS):
        raise DriftReadError(
            f"Evidently's drift result for column {column!r} has no drift test verdict "
            f"({[str(test.status) for test in tests]}); refusing to report it as no drift"
        )
    params = result.metric_value_location.metric.params  # the method and threshold it resolved
    return ColumnDrift(
        score=float(result.value),
        method=str(params[METHOD_PARAM]),
        threshold=float(params[THRESHOLD_PARAM]),
        drifted=tests[0].status == TestStatus.FAIL,
    )


def read_column_drifts(snapshot: Any, metrics: DriftMetrics) -> dict[str, ColumnDrift]:
    """Each column's score, method, threshold and verdict, found by its metric's id."""
    return {column: _column_drift(snapshot, column, metric) for column, metric in metrics.columns.items()}
