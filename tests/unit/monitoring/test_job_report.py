"""The drift job on a real SQLite log: the HTML report opens with our verdict, which agrees with
the exit code and the terminal; the verdict names its cause; old reports are pruned.

The census-like model of conftest.py; windows logged as the service logs them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tabserve.model_store import StoredModel
from tabserve.monitoring.job import EXIT_ALARM, EXIT_OK, Window, exit_code, run_job
from tabserve.monitoring.quality_series import ESTIMATED_COLUMN, REALIZED_COLUMN, REFERENCE_COLUMN
from tabserve.monitoring.table import format_table
from tabserve.monitoring.workspace import MEAN_METRIC
from tests.census import ROWS, log_window, settings_in


def verdict_of(html: str) -> tuple[str, int, int]:
    """Our section's verdict word and exit code, and where the section starts in the page."""
    word = re.search(r'id="tabserve-verdict-word">([^<]+)<', html)
    code = re.search(r'id="tabserve-exit-code">(\d)<', html)
    assert word and code, "no verdict section in the report"
    return word.group(1), int(code.group(1)), html.index('id="tabserve-verdict"')


@pytest.mark.parametrize(
    ("shift", "labels", "verdict", "code"),
    [
        ({}, "true", "OK", EXIT_OK),
        ({}, "flipped", "QUALITY", EXIT_ALARM),  # the cause is quality, not drift
        ({"x0": 1.5}, None, "DRIFT", EXIT_ALARM),  # one important feature shifted, no labels yet
    ],
    ids=["clean", "labels flipped", "important feature shifted"],
)
def test_the_report_opens_with_the_verdict_the_exit_code_gives(
    census_model: StoredModel,
    tmp_path: Path,
    shift: dict[str, float],
    labels: str | None,
    verdict: str,
    code: int,
) -> None:
    settings = settings_in(tmp_path, min_samples=100)
    log_window(census_model, settings.url, shift, labels)
    output = run_job(census_model.tag, Window(last=ROWS), settings, progress=False, variant="blue")
    assert exit_code(output.result) == code and output.summary["exit_code"] == code
    assert output.html is not None
    page = output.html.read_text()
    word, page_code, start = verdict_of(page)
    assert (word, page_code) == (verdict, code)
    assert start < page.index('id="root_metric_'), "our section comes before Evidently's"
    for shown in (census_model.tag, "blue", f"last {ROWS} rows", f"{ROWS} (at most 20000)", "alarm_top_k"):
        assert shown in page, shown
    for reason in ("data drift", "prediction drift", "quality", "estimated quality"):
        assert f'<tr class="reason"><th>{reason}</th>' in page
    table = format_table(output)
    assert f"verdict: {verdict}" in table
    drifted = len(output.summary["drifted_features"])
    assert f"drifted features: {drifted}/14 " in table and f"{drifted} of 14" in page  # same count
    summary = json.loads(output.summary_path.read_text())
    assert summary["verdict"].upper() == verdict and summary["policy"]["importance_drift_share"] == 0.3


def test_each_run_prunes_reports_past_the_last_n(census_model: StoredModel, tmp_path: Path) -> None:
    settings = settings_in(tmp_path, min_samples=100, keep_reports=2)
    log_window(census_model, settings.url, {}, None)
    summaries = [run_job(census_model.tag, Window(last=ROWS), settings, progress=False) for _ in range(3)]
    kept = sorted(path.name for path in Path(settings.reports_dir).iterdir() if path.is_file())
    assert kept == sorted(
        name
        for output in summaries[1:]
        for name in (f"{output.summary_path.stem}.html", output.summary_path.name)
    )


def quality_means(run: Any) -> dict[str, float]:
    """The quality columns' means stored in a run, by column."""
    return {
        params["column"]: float(result.value)
        for result in run.metric_results.values()
        if (params := result.metric_value_location.metric.params).get("type") == MEAN_METRIC
    }


def test_the_workspace_dashboard_has_panels_with_data_and_runs_are_tagged(
    census_model: StoredModel, tmp_path: Path
) -> None:
    from evidently.ui.workspace import Workspace

    settings = settings_in(tmp_path, min_samples=100)
    log_window(census_model, settings.url, {}, "true")
    outputs = [run_job(census_model.tag, Window(last=ROWS), settings, progress=False, variant="blue")]
    log_window(census_model, settings.url, {"x0": 1.5}, None)
    outputs.append(run_job(census_model.tag, Window(last=ROWS), settings, progress=False, variant="blue"))

    workspace = Workspace(settings.workspace)
    (project,) = workspace.search_project("unit_census")
    panels = project.dashboard.model().panels
    assert len(panels) == 5 and panels[2].values[0].metric_labels == {"column": "x0"}  # most important first
    runs = [workspace.get_run(project.id, run_id) for run_id in workspace.list_runs(project.id)]
    assert all(run is not None for run in runs)
    labels = sorted(
        (run.metadata["verdict"], run.metadata["variant"], tuple(run.tags)) for run in runs if run
    )
    assert labels == [
        ("drift", "blue", ("drift", "variant:blue", "alarm")),
        ("ok", "blue", ("ok", "variant:blue")),
    ]
    assert all(run.name.startswith(f"{census_model.tag} blue ") for run in runs if run)
    # every line of every panel finds its metric (type, and column if it names one) in every run,
    # but realized quality: only the labelled window has it
    for run in runs:
        assert run is not None
        stored = {
            (params.get("type"), params.get("column"))
            for params in (
                result.metric_value_location.metric.params for result in run.metric_results.values()
            )
        }
        for panel in panels:
            for value in panel.values:
                wanted = (value.metric, value.metric_labels.get("column"))
                assert (wanted in stored) is (
                    wanted[1] != REALIZED_COLUMN or run.metadata["verdict"] == "ok"
                ), (
                    panel.title,
                    value.legend,
                )
    quality = {run.metadata["verdict"]: quality_means(run) for run in runs if run}
    summaries = {output.summary["verdict"]: output.summary for output in outputs}
    for verdict, means in quality.items():  # the panel's points are the job's own figures
        assert means[REFERENCE_COLUMN] == pytest.approx(summaries[verdict]["quality"]["reference"])
        assert means[ESTIMATED_COLUMN] == pytest.approx(
            summaries[verdict]["estimated_quality"]["values"]["accuracy"], abs=1e-5
        )
    assert quality["ok"][REALIZED_COLUMN] == pytest.approx(summaries["ok"]["quality"]["current"])
