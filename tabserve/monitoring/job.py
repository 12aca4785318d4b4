"""The drift and quality job: window -> comparison -> report, summary, workspace, metrics store.

Exit codes: 0 all clear, 1 drift or degradation detected, 2 error (see README).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tqdm import tqdm

from tabserve.model_store import get_model
from tabserve.monitoring.drift import VERDICT_DRIFT, VERDICT_NOT_ENOUGH, DriftResult, compare
from tabserve.predictions.migration import ensure_schema
from tabserve.predictions.store import load_window, make_engine, prepare_local_database, save_run
from tabserve.settings import MonitoringSettings

logger = logging.getLogger(__name__)

EXIT_OK, EXIT_ALARM, EXIT_ERROR = 0, 1, 2


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


def _project_id(workspace: Any, name: str) -> Any:
    found = workspace.search_project(name)
    return found[0].id if found else workspace.create_project(name).id


def run_job(tag: str, window: Window, settings: MonitoringSettings, progress: bool = True) -> RunOutput:
    steps = tqdm(total=5, desc="monitor", disable=not progress, leave=False)
    stored = get_model(tag)
    classifier = stored.metadata["task"] == "classification"
    prepare_local_database(settings)
    engine = make_engine(settings.url)
    ensure_schema(engine)
    steps.set_postfix_str("reading window")
    current, window_rows = load_window(
        engine,
        stored.tag,
        last=window.last,
        since=window.since,
        until=window.until,
        sample=settings.sample_size,
    )
    steps.update()
    steps.set_postfix_str("comparing with reference")
    result, snapshot = compare(stored.load_reference(), current, stored.schema, classifier, settings)
    steps.update()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    base = Path(settings.reports_dir) / f"{stamp}_{stored.tag.replace(':', '_')}"
    base.parent.mkdir(parents=True, exist_ok=True)
    summary = {
        "model": stored.tag,
        "time": datetime.now(UTC).isoformat(),
        "window": window.describe(),
        "window_rows": window_rows,
        "sampled_rows": len(current),
        "sample_size": settings.sample_size,
        **result.to_dict(),
    }
    html = None
    if snapshot is not None:
        steps.set_postfix_str("writing report")
        html = base.with_suffix(".html")
        snapshot.save_html(str(html))
        from evidently.ui.workspace import Workspace

        workspace = Workspace(settings.workspace)
        workspace.add_run(_project_id(workspace, stored.tag.split(":")[0]), snapshot, name=stored.tag)
    steps.update()
    summary_path = base.with_suffix(".json")
    summary_path.write_text(json.dumps(summary, indent=2, default=str))
    steps.update()
    save_run(engine, stored.tag, json.loads(json.dumps(summary, default=str)))
    steps.update()
    steps.close()
    engine.dispose()
    return RunOutput(result, summary, html, summary_path)


def exit_code(result: DriftResult) -> int:
    return EXIT_ALARM if result.verdict == VERDICT_DRIFT else EXIT_OK


def format_table(output: RunOutput) -> str:
    result, summary = output.result, output.summary
    lines = [
        f"model {summary['model']}  window {summary['window']}  rows {summary['window_rows']}"
        f" (sampled {summary['sampled_rows']})  reference {result.reference_rows}",
    ]
    if result.verdict == VERDICT_NOT_ENOUGH:
        return "\n".join([*lines, f"NOT ENOUGH DATA: {result.message}  summary: {output.summary_path}"])
    lines.append(f"{'feature':<28} {'method':<26} {'score':>10} {'threshold':>9}  drift")
    columns = dict(result.features)
    if result.prediction is not None:
        columns["(prediction)"] = result.prediction
    for name, column in columns.items():
        flag = "DRIFT" if column.drifted else "-"
        lines.append(
            f"{name[:28]:<28} {column.method[:26]:<26} {column.score:>10.4g} {column.threshold:>9.3g}  {flag}"
        )
    drifted = len(result.drifted_features)
    lines.append(f"drifted features: {drifted}/{len(result.features)} (share {result.drift_share:.2f})")
    quality = result.quality
    if quality is not None:
        current = "n/a" if quality.current is None else f"{quality.current:.4f}"
        verdict = {None: "not enough labels", True: "DEGRADED", False: "ok"}[quality.degraded]
        lines.append(
            f"quality {quality.metric}: reference {quality.reference:.4f}, current {current}"
            f" on {quality.labelled} labels -> {verdict}"
        )
    lines.append(f"verdict: {result.verdict.upper()}  report: {output.html}  summary: {output.summary_path}")
    return "\n".join(lines)
