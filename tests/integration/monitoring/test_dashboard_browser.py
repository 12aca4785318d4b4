"""The Evidently UI, loaded in a real headless browser, shows our dashboard with data (issue 15).

Before, each project said "This dashboard is currently empty". Two runs of the drift job (a clean
window, then one with the most important feature shifted) go into a workspace; the UI serves it;
chromium renders the project's page; every panel must be there and have drawn its data: the
counter shows the last run's drift share, each line panel a line through both runs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tabserve.model_store import StoredModel
from tabserve.monitoring.job import Window, run_job
from tabserve.monitoring.table import ordered_features
from tabserve.monitoring.workspace import panels as dashboard_panels
from tests.browser import evidently_ui, panels, rendered_dom
from tests.census import ROWS, log_window, settings_in

EMPTY = "This dashboard is currently empty"
Runs = tuple[str, float, list[str]]  # the workspace, the last run's drift share, the panel titles


@pytest.fixture(scope="module")
def workspace(
    census_model: StoredModel, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, float, list[str]]:
    """The workspace after a clean run then a drift run; the last drift share; the panel titles."""
    settings = settings_in(tmp_path_factory.mktemp("dashboard"), min_samples=100)
    log_window(census_model, settings.url, {}, "true")
    run_job(census_model.tag, Window(last=ROWS), settings, progress=False, variant="blue")
    log_window(census_model, settings.url, {"x0": 1.5}, None)
    last = run_job(census_model.tag, Window(last=ROWS), settings, progress=False, variant="blue")
    assert last.result.drift_share is not None
    assert last.result.quality is not None
    titles = [
        panel.title for panel in dashboard_panels(ordered_features(last.result), last.result.quality.metric)
    ]
    return settings.workspace, last.result.drift_share, titles


def test_the_ui_shows_every_panel_with_its_data(workspace: Runs, logs: Path) -> None:
    from evidently.ui.workspace import Workspace

    folder, drift_share, titles = workspace
    (project,) = Workspace(folder).search_project("unit_census")
    with evidently_ui(folder, logs) as url:
        dom = rendered_dom(f"{url}/projects/{project.id}")
    assert EMPTY not in dom
    shown = {panel.title: panel for panel in panels(dom)}
    assert set(titles) <= set(shown), f"panels missing from the page: {set(titles) - set(shown)}"
    for title in titles:
        panel = shown[title]
        if "(last run)" in title:
            assert [float(value) for value in panel.counters] == [pytest.approx(drift_share, abs=0.005)]
        else:
            assert panel.lines >= 1, f"{title!r} drew no line through the two runs"
