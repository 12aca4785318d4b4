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

from tabserve.deployment.policy import ROLLOUT_STATES, DeploymentState, GuardResult
from tabserve.predictions.store import latest_runs

logger = logging.getLogger(__name__)
GAUGE_MODE: Final = "livemostrecent"
LATENCY_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS: Final = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)  # records per /predict batch


class ServiceMetrics:
    def __init__(self) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        def gauge(name: str, doc: str, labels: Sequence[str]) -> Any:
            return Gauge(name, doc, labels, multiprocess_mode=GAUGE_MODE)

        self.predictions = Counter(
            "tabserve_predictions",
            "Scored records (answered or shadow-scored), per variant: the requests that succeeded",
            ["model", "variant", "predicted_class"],
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
        self.attribution_ndcg = gauge(
            "tabserve_attribution_ndcg",
            "nDCG of the window's column ranking by mean |attribution| against the training ranking",
            ["model"],
        )
        self.attribution_share_change = gauge(
            "tabserve_attribution_share_change",
            "Change of a column's share of the total attribution, window minus training",
            ["model", "feature"],
        )
        self.last_run = gauge(
            "tabserve_monitor_last_run_timestamp_seconds", "Time of the last check", ["model"]
        )
        self.variant_errors = Counter(
            "tabserve_variant_errors", "Records that failed per variant", ["variant", "model"]
        )
        self.variant_latency = Histogram(
            "tabserve_variant_latency_seconds", "Scoring time per call", ["variant"], buckets=LATENCY_BUCKETS
        )
        self.batch_size = Histogram(
            "tabserve_batch_size", "Records per batch of /predict calls", ["variant"], buckets=BATCH_BUCKETS
        )
        self.shadow_dropped = Counter("tabserve_shadow_dropped", "Shadow records dropped (queue full)")
        self.traffic_share = gauge("tabserve_traffic_share", "Share of traffic the policy sends", ["variant"])
        self.policy_version = gauge("tabserve_policy_version", "Version of the deployment state", [])
        self.rollout_step = gauge("tabserve_rollout_step", "Current rollout step (1-based; 0: none)", [])
        self.rollout_percent = gauge(
            "tabserve_rollout_percent", "Candidate traffic percent of the rollout", []
        )
        self.rollout_state = gauge("tabserve_rollout_state", "1 for the rollout's state", ["state"])
        self.guard_ok = gauge(
            "tabserve_rollout_guard_ok", "1 if the guard passed at the last check", ["guard"]
        )
        self.guard_value = gauge("tabserve_rollout_guard_value", "The guard's measured value", ["guard"])

    def observe_variant(self, variant: str, model: str, seconds: float, count: int, error: bool) -> None:
        if error:
            self.variant_errors.labels(variant, model).inc(count)
        self.variant_latency.labels(variant).observe(seconds)

    def observe_batch(self, variant: str, size: int) -> None:
        self.batch_size.labels(variant).observe(size)

    def show_deployment(self, version: int, shares: dict[str, float], state: DeploymentState) -> None:
        self.policy_version.set(version)
        for variant, share in shares.items():
            self.traffic_share.labels(variant).set(share)
        rollout, running = state.rollout, state.rollout_running
        self.rollout_step.set(rollout.step + 1 if rollout is not None and running else 0)
        self.rollout_percent.set(rollout.percent if rollout is not None and running else 0)
        for name in ROLLOUT_STATES:
            self.rollout_state.labels(name).set(1.0 if rollout is not None and rollout.state == name else 0.0)
        if rollout is not None:
            self.show_guards(rollout.guards)

    def show_guards(self, guards: dict[str, GuardResult]) -> None:
        for name, guard in guards.items():
            self.guard_ok.labels(name).set(1.0 if guard.ok else 0.0)
            if guard.value is not None:
                self.guard_value.labels(name).set(guard.value)

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
        attribution = summary.get("attribution")
        if attribution:
            self.attribution_ndcg.labels(model).set(attribution["ndcg"])
            for feature, column in attribution["columns"].items():
                self.attribution_share_change.labels(model, feature).set(column["change"])
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
