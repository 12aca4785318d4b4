"""The Evidently workspace: one project per model name, a dashboard with panels, tagged runs.

Before, every project's dashboard said "This dashboard is currently empty" and every run had the
same name and no tags, so an alarm could not be told from a clean run without opening each
(issue 15). Now a project gets its panels when it has none (created, or left empty by an older
version): the share of drifted features over time and its last value, drift scores of the most
important features, prediction drift, and quality: realized (from feedback labels) and
estimated without labels (CBPE), against the reference's (quality_series.py). Each run is
named `<model> <variant> <VERDICT>` and carries tags (the verdict, `variant:<name>`, `alarm` on
an alarm) and metadata (model, variant, verdict, window, exit code), which the UI filters on.

Panels read the metric results stored with each run (`ValueDrift` per column,
`DriftedColumnsCount`; drift_metrics.py), so they have data from the first run on.
"""

from __future__ import annotations

from typing import Any

from evidently.core.report import Snapshot
from evidently.sdk.models import DashboardPanelPlot, PanelMetric
from evidently.sdk.panels import counter_panel, line_plot_panel
from evidently.ui.workspace import Workspace

from tabserve.monitoring.quality_series import ESTIMATED_COLUMN, REALIZED_COLUMN, REFERENCE_COLUMN
from tabserve.predictor import PREDICTION_COLUMN

DRIFT_COUNT_METRIC = "evidently:metric_v2:DriftedColumnsCount"
VALUE_DRIFT_METRIC = "evidently:metric_v2:ValueDrift"
MEAN_METRIC = "evidently:metric_v2:MeanValue"
FEATURE_PANEL_SIZE = 8  # features on the per-feature panel: the most important (legible lines)
ALARM_TAG = "alarm"


def quality_panel(metric: str) -> DashboardPanelPlot:
    """Pure: realized and estimated `metric` per run, and the reference's, as three lines."""
    lines = {
        f"{metric} (realized, labelled rows)": REALIZED_COLUMN,
        f"{metric} (estimated without labels)": ESTIMATED_COLUMN,
        f"{metric} (reference)": REFERENCE_COLUMN,
    }
    return line_plot_panel(
        title=f"Quality: {metric}, realized and estimated",
        description="Realized: once min_labels rows have feedback. Estimated: calibrated classifiers only.",
        values=[
            PanelMetric(legend=legend, metric=MEAN_METRIC, metric_labels={"column": column})
            for legend, column in lines.items()
        ],
        size="half",
    )


def panels(features: list[str], quality_metric: str) -> list[DashboardPanelPlot]:
    """Pure: the dashboard of a model whose features are listed most important first."""
    share = PanelMetric(legend="share", metric=DRIFT_COUNT_METRIC, metric_labels={"value_type": "share"})
    return [
        counter_panel(title="Share of drifted features (last run)", values=[share], size="half"),
        line_plot_panel(title="Share of drifted features over time", values=[share], size="half"),
        line_plot_panel(
            title="Drift score of the most important features",
            description="Evidently's score per feature (p-value or distance: see each run's thresholds)",
            values=[
                PanelMetric(legend=name, metric=VALUE_DRIFT_METRIC, metric_labels={"column": name})
                for name in features[:FEATURE_PANEL_SIZE]
            ],
            size="full",
        ),
        line_plot_panel(
            title="Prediction drift",
            values=[
                PanelMetric(
                    legend="prediction",
                    metric=VALUE_DRIFT_METRIC,
                    metric_labels={"column": PREDICTION_COLUMN},
                )
            ],
            size="half",
        ),
        quality_panel(quality_metric),
    ]


def run_labels(summary: dict[str, Any]) -> tuple[str, list[str], dict[str, str]]:
    """Pure: a run's name, tags and metadata, from its summary."""
    variant = summary.get("variant") or "-"
    verdict = str(summary["verdict"])
    tags = [verdict, f"variant:{variant}", *([ALARM_TAG] if summary.get("alarm") else [])]
    metadata = {
        "model": str(summary["model"]),
        "variant": variant,
        "verdict": verdict,
        "window": str(summary["window"]),
        "exit_code": str(summary.get("exit_code", "")),
    }
    return f"{summary['model']} {variant} {verdict.upper()}", tags, metadata


def _project(workspace: Workspace, name: str) -> Any:
    found = workspace.search_project(name)
    return found[0] if found else workspace.create_project(name)


def add_run(folder: str, snapshot: Snapshot, summary: dict[str, Any], features: list[str]) -> None:
    """Store the run in the workspace, tagged, in its model's project (given panels if it has none)."""
    workspace = Workspace(folder)
    project = _project(workspace, str(summary["model"]).split(":")[0])
    if not project.dashboard.model().panels:
        for panel in panels(features, (summary.get("quality") or {}).get("metric", "quality")):
            project.dashboard.add_panel(panel)
    name, tags, metadata = run_labels(summary)
    model = snapshot.to_snapshot_model()
    tagged = model.copy(update={"tags": [*model.tags, *tags], "metadata": {**model.metadata, **metadata}})
    workspace.add_run(project.id, Snapshot.load_model(tagged), name=name)
