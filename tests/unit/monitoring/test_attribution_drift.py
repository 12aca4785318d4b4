"""Attribution drift in `tabserve monitor` on a real SQLite log (the census-like model: the label
depends on x0 and city, the twelve other columns are noise)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tabserve.model_store import StoredModel
from tabserve.monitoring.drift import ATTRIBUTION_DRIFT
from tabserve.monitoring.job import Window, run_job
from tabserve.predictions.store import make_engine
from tests.census import ROWS, census_like, log_scored, settings_in


def log_frame(model: StoredModel, url: str, frame: pd.DataFrame) -> None:
    engine = make_engine(url)
    log_scored(model, engine, frame)
    engine.dispose()


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_a_window_like_the_reference_keeps_the_ranking(
    census_model: StoredModel, tmp_path: Path, seed: int
) -> None:
    settings = settings_in(tmp_path, min_samples=100)
    log_frame(census_model, settings.url, census_like(ROWS, seed).drop(columns="label"))
    found = run_job(census_model.tag, Window(last=ROWS), settings, progress=False).summary["attribution"]
    assert found["drift"] is False and found["ndcg"] >= 0.95 and found["method"] == "tree_shap"
    assert set(found["columns"]) == set(census_model.schema.names)


def test_a_feature_that_stops_moving_the_output_flips_the_ranking_and_alarms(
    census_model: StoredModel, tmp_path: Path
) -> None:
    settings = settings_in(tmp_path, min_samples=100)
    frame = census_like(ROWS, seed=11).drop(columns="label").assign(x0=0.0)  # x0 no longer varies
    log_frame(census_model, settings.url, frame)
    output = run_job(census_model.tag, Window(last=ROWS), settings, progress=False)
    found = output.summary["attribution"]
    assert found["ndcg"] < settings.attribution_ndcg_threshold and found["drift"] is True
    x0, city = found["columns"]["x0"], found["columns"]["city"]
    assert x0["change"] < -0.2 and city["change"] > 0.1  # x0's share fell, city's rose
    reason = next(r for r in output.summary["reasons"] if r["kind"] == ATTRIBUTION_DRIFT)
    assert reason["fired"] is True and "x0" in reason["detail"]
    assert output.result.drift_alarm and output.summary["verdict"] in ("drift", "drift_and_quality")
    assert (
        output.html is not None
        and f'<tr class="reason"><th>{ATTRIBUTION_DRIFT}</th>' in output.html.read_text()
    )
