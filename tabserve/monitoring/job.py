"""The drift and quality job: window -> comparison -> report, summary, workspace, metrics store.

Exit codes: 0 all clear, 1 drift or degradation detected, 2 error (see README).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from tabserve.model_store import StoredModel, get_model
from tabserve.monitoring.alarm import policy_summary
from tabserve.monitoring.attribution_drift import measure_attribution_drift
from tabserve.monitoring.drift import DriftResult, compare
from tabserve.monitoring.estimated_quality import (
    CALIBRATION_KEY,
    estimate_for_window,
    expected_correct,
    window_probabilities,
)
from tabserve.monitoring.quality_series import QualitySeries, quality_series
from tabserve.monitoring.report_verdict import verdict_section, with_verdict
from tabserve.monitoring.retention import prune_reports, report_stamp
from tabserve.monitoring.sample import drift_sample_rows
from tabserve.monitoring.table import ordered_features
from tabserve.predictions.log_policy import log_policy
from tabserve.predictions.migration import ensure_schema
from tabserve.predictions.store import load_window, make_engine, prepare_local_database, save_run
from tabserve.settings import MonitoringSettings

logger = logging.getLogger(__name__)

EXIT_OK, EXIT_ALARM, EXIT_ERROR = 0, 1, 2
IMPORTANCE_KEY = "feature_importance"  # in the model's metadata (training/importance.py)


@dataclass(frozen=True)
class Window:
    last: int | None = None
    since: datetime | None = None
    until: datetime | None = None

    def describe(self) -> str:
        if self.since or self.until:
            return f"{self.since or '-inf'} .. {self.until or 'now'}"
        return f"last {self.last} rows"


@dataclass(frozen=True)
class RunOutput:
    result: DriftResult
    summary: dict[str, Any]
    html: Path | None
    summary_path: Path


def exit_code(result: DriftResult) -> int:
    return EXIT_ALARM if result.alarm else EXIT_OK


def _write_html(snapshot: Any, summary: dict[str, Any], code: int, path: Path) -> None:
    page = with_verdict(snapshot.get_html_str(as_iframe=False), verdict_section(summary, code))
    path.write_text(page, encoding="utf-8")


def _quality_series(
    stored: StoredModel,
    current: pd.DataFrame,
    reference: pd.DataFrame,
    classifier: bool,
    proba: np.ndarray | None,
    min_labels: int,
) -> QualitySeries:
    """The window's and the reference's quality columns (the estimate: for a calibrated classifier)."""
    expected = None
    if proba is not None:
        calibration = stored.metadata[CALIBRATION_KEY]
        on_reference = window_probabilities(stored, reference)
        assert on_reference is not None  # calibrated, and the reference is never empty
        expected = (expected_correct(proba, calibration), expected_correct(on_reference, calibration))
    return quality_series(current, reference, classifier, min_labels, expected)


def run_job(
    tag: str,
    window: Window,
    settings: MonitoringSettings,
    progress: bool = True,
    variant: str | None = None,
) -> RunOutput:
    """Monitor one model; `variant` names the deployment's variant serving it (None: named by --model)."""
    steps = tqdm(total=5, desc="monitor", disable=not progress, leave=False)
    stored = get_model(tag)
    classifier = stored.metadata["task"] == "classification"
    prepare_local_database(settings)
    engine = make_engine(settings.url)
    ensure_schema(engine)
    steps.set_postfix_str("reading window")
    compared = len(stored.schema.numeric) + len(stored.schema.categorical) + 1  # and the prediction
    sample = drift_sample_rows(settings.sample_size, compared, settings.max_sample_cells)
    current, window_rows = load_window(
        engine,
        stored.tag,
        last=window.last,
        since=window.since,
        until=window.until,
        sample=sample,
        features=stored.schema.names,
    )
    steps.update()
    steps.set_postfix_str("comparing with reference")
    importance = stored.metadata.get(IMPORTANCE_KEY, {}).get("mean")
    reference = stored.load_reference()
    # The log keeps what monitoring.log_policy lets it keep: the reference is compared in that form,
    # and the window cannot be re-scored (for estimated quality) once a feature was changed.
    policy = log_policy(settings)
    rescorable = not policy.changes(stored.schema.names)
    enough = len(current) >= settings.min_samples  # else no verdict: nothing is scored
    proba = window_probabilities(stored, current) if enough and rescorable else None
    series = _quality_series(stored, current, reference, classifier, proba, settings.min_labels)
    as_logged, schema = policy.apply_frame(reference), policy.compared_schema(stored.schema)
    result, snapshot = compare(as_logged, current, schema, classifier, settings, importance, series)
    if proba is not None:  # estimate quality without labels
        estimated = estimate_for_window(stored, proba, settings.estimated_metric, settings.quality_drop)
        result = replace(result, estimated_quality=estimated)
    if enough and rescorable:  # does the model still lean on the same columns (it re-scores the window)
        result = replace(result, attribution=measure_attribution_drift(stored, current, settings))
    steps.update()
    now = datetime.now(UTC)
    folder = Path(settings.reports_dir)
    base = "_".join([report_stamp(now), stored.tag.replace(":", "_"), *([variant] if variant else [])])
    folder.mkdir(parents=True, exist_ok=True)
    summary = {
        "model": stored.tag,
        "variant": variant,
        "time": now.isoformat(),
        "window": window.describe(),
        "window_rows": window_rows,
        "sampled_rows": len(current),
        "sample_size": sample,  # settings.sample_size, or fewer on a wide table (sample.py)
        "policy": policy_summary(settings, result.data_drift),
        **result.to_dict(),
        "exit_code": exit_code(result),
    }
    html = None
    if snapshot is not None:
        steps.set_postfix_str("writing report")
        html = folder / f"{base}.html"
        _write_html(snapshot, summary, exit_code(result), html)
        from tabserve.monitoring.workspace import add_run

        add_run(settings.workspace, snapshot, summary, ordered_features(result))
    steps.update()
    summary_path = folder / f"{base}.json"
    summary_path.write_text(json.dumps(summary, indent=2, default=str))
    prune_reports(folder, now, settings.keep_reports, settings.keep_report_days)
    steps.update()
    save_run(engine, stored.tag, json.loads(json.dumps(summary, default=str)))
    steps.update()
    steps.close()
    engine.dispose()
    return RunOutput(result, summary, html, summary_path)
