"""Prometheus metrics on the service's own `/metrics`: predictions per model and class, and drift.

Drift results are written by the monitoring job into the prediction-log database; a thread in
each worker reloads the newest ones every `monitoring.metrics_refresh_s` seconds.

`prometheus_client` is imported inside the worker only: BentoML sets PROMETHEUS_MULTIPROC_DIR
after the service module is imported, and the client picks its storage mode at import.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from tabserve.prediction_store import latest_runs

logger = logging.getLogger(__name__)
GAUGE_MODE: Final = "livemostrecent"


class ServiceMetrics:
    def __init__(self) -> None:
        from prometheus_client import Counter, Gauge

        def gauge(name: str, doc: str, labels: Sequence[str]) -> Any:
            return Gauge(name, doc, labels, multiprocess_mode=GAUGE_MODE)

        self.predictions = Counter(
            "tabserve_predictions", "Scored records", ["model", "variant", "predicted_class"]
        )
        self.drift_share = gauge("tabserve_drift_share", "Share of drifted features", ["model"])
        self.drift_alarm = gauge(
            "tabserve_drift_alarm", "1 if the last check found drift or degradation", ["model"]
        )
        self.feature_score = gauge(
            "tabserve_feature_drift_score",
            "Drift score per feature (see method)",
            ["model", "feature", "method"],
        )
        self.feature_drifted = gauge(
            "tabserve_feature_drifted", "1 if the feature drifted", ["model", "feature"]
        )
        self.prediction_drift = gauge(
            "tabserve_prediction_drift_score", "Drift score of the predictions", ["model", "method"]
        )
        self.quality = gauge(
            "tabserve_quality", "Quality on feedback labels vs reference", ["model", "metric", "window"]
        )
        self.last_run = gauge(
            "tabserve_monitor_last_run_timestamp_seconds", "Time of the last check", ["model"]
        )

    def count(self, model: str, variant: str, results: Sequence[dict[str, Any]], classifier: bool) -> None:
        if not classifier:
            self.predictions.labels(model, variant, "").inc(len(results))
            return
        counts: dict[str, int] = {}
        for result in results:
            key = str(result["prediction"])
            counts[key] = counts.get(key, 0) + 1
        for predicted, count in counts.items():
            self.predictions.labels(model, variant, predicted).inc(count)

    def show_run(self, model: str, summary: dict[str, Any]) -> None:
        self.last_run.labels(model).set(datetime.fromisoformat(summary["time"]).timestamp())
        if summary.get("drift_share") is None:  # not enough data: no verdict to show
            return
        self.drift_share.labels(model).set(summary["drift_share"])
        self.drift_alarm.labels(model).set(1.0 if summary["alarm"] else 0.0)
        for feature, column in summary["features"].items():
            self.feature_score.labels(model, feature, column["method"]).set(column["score"])
            self.feature_drifted.labels(model, feature).set(1.0 if column["drifted"] else 0.0)
        if summary.get("prediction"):
            self.prediction_drift.labels(model, summary["prediction"]["method"]).set(
                summary["prediction"]["score"]
            )
        quality = summary.get("quality")
        if quality:
            self.quality.labels(model, quality["metric"], "reference").set(quality["reference"])
            if quality["current"] is not None:
                self.quality.labels(model, quality["metric"], "current").set(quality["current"])


@functools.cache
def service_metrics() -> ServiceMetrics:
    """One set of metric objects per process (registering twice is an error)."""
    return ServiceMetrics()


class DriftMetricsRefresher:
    """Reloads the newest monitoring results into the gauges, in the background."""

    def __init__(self, engine: Engine, metrics: ServiceMetrics, interval_s: float) -> None:
        self.engine, self.metrics, self.interval_s = engine, metrics, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="drift-metrics", daemon=True)
        self._thread.start()

    def refresh(self) -> None:
        try:
            runs = latest_runs(self.engine)
        except SQLAlchemyError as error:
            logger.debug("drift metrics not refreshed: %s", error)
            return
        for model, summary in runs.items():
            self.metrics.show_run(model, summary)

    def _run(self) -> None:
        self.refresh()
        while not self._stop.wait(self.interval_s):
            self.refresh()

    def close(self) -> None:
        self._stop.set()
