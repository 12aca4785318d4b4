"""The HTML report opens with our verdict; Evidently's sections follow.

Before, the report showed only Evidently's own judgement ("Dataset Drift is NOT detected", by
its share rule) on runs that exited 1 for another reason, with no model tag, window, sample
size or thresholds (issue 15). The section is rendered from the run's JSON summary, the same
dict the terminal table and the exit code come from, so they cannot disagree: model tag,
variant, window, rows and sample size, the verdict and exit code, each check with its outcome
and why, the features (most important first) and every threshold used.
"""

from __future__ import annotations

import html
import re
from typing import Any

BODY_TAG = re.compile(r"<body[^>]*>", re.IGNORECASE)
FEATURE_COLUMNS = ("feature", "importance", "method", "score", "threshold", "drift")
STATUS = {True: ("ALARM", "#c62828"), False: ("ok", "#2e7d32"), None: ("not judged", "#757575")}
STYLE = """
<style>
#tabserve-verdict {font-family: system-ui, sans-serif; margin: 16px; padding: 16px;
  border: 2px solid VERDICT_COLOR; border-radius: 6px; max-width: 1100px}
#tabserve-verdict h1 {margin: 0 0 8px 0; font-size: 22px; color: VERDICT_COLOR}
#tabserve-verdict table {border-collapse: collapse; margin: 8px 0}
#tabserve-verdict td, #tabserve-verdict th {padding: 2px 10px; text-align: left;
  border-bottom: 1px solid #ddd}
</style>
"""


def _text(value: Any) -> str:
    return html.escape("-" if value is None else str(value))


def _rows(pairs: list[tuple[str, Any]]) -> str:
    return "".join(f"<tr><th>{_text(key)}</th><td>{_text(value)}</td></tr>" for key, value in pairs)


def _reasons(summary: dict[str, Any]) -> str:
    rows = []
    for reason in summary.get("reasons", []):
        word, color = STATUS[reason["fired"]]
        rows.append(
            f'<tr class="reason"><th>{_text(reason["kind"])}</th>'
            f'<td style="color:{color}" data-fired="{_text(reason["fired"])}">{word}</td>'
            f"<td>{_text(reason['detail'])}</td></tr>"
        )
    return f'<table id="tabserve-reasons">{"".join(rows)}</table>'


def _features(summary: dict[str, Any]) -> str:
    weights = summary.get("importance") or {}
    features = summary.get("features") or {}
    ordered = sorted(features, key=lambda name: -weights.get(name, 0.0))
    head = "".join(f"<th>{name}</th>" for name in FEATURE_COLUMNS)
    rows = []
    for name in ordered:
        column = features[name]
        share = f"{weights[name]:.1%}" if name in weights else "-"
        rows.append(
            f"<tr><td>{_text(name)}</td><td>{share}</td><td>{_text(column['method'])}</td>"
            f"<td>{column['score']:.4g}</td><td>{column['threshold']:.3g}</td>"
            f"<td>{'DRIFT' if column['drifted'] else '-'}</td></tr>"
        )
    return f'<table id="tabserve-features"><tr>{head}</tr>{"".join(rows)}</table>'


def verdict_section(summary: dict[str, Any], exit_code: int) -> str:
    """Pure: the section's HTML, from the run's summary and the job's exit code."""
    verdict = str(summary["verdict"]).upper()
    color = STATUS[bool(summary["alarm"])][1]
    judgement = summary.get("data_drift") or {}
    run = [
        ("model", summary["model"]),
        ("variant", summary.get("variant")),
        ("window", summary["window"]),
        ("rows in the window", summary["window_rows"]),
        ("rows compared (sample size)", f"{summary['sampled_rows']} (at most {summary['sample_size']})"),
        ("reference rows", summary["reference_rows"]),
        ("drifted features", f"{len(summary['drifted_features'])} of {len(summary.get('features') or {})}"),
        ("drift share", summary.get("drift_share")),
        ("importance-weighted drift share", judgement.get("weighted_drift_share")),
        ("time", summary["time"]),
    ]
    thresholds = list((summary.get("policy") or {}).items())
    return (
        STYLE.replace("VERDICT_COLOR", color)
        + '<section id="tabserve-verdict">'
        + f'<h1>tabserve verdict: <span id="tabserve-verdict-word">{_text(verdict)}</span>'
        + f' (exit code <span id="tabserve-exit-code">{exit_code}</span>)</h1>'
        + f"<table>{_rows(run)}</table><h2>Checks</h2>{_reasons(summary)}"
        + f"<h2>Features, most important first</h2>{_features(summary)}"
        + f"<h2>Thresholds and policy</h2><table>{_rows(thresholds)}</table>"
        + "<p>Evidently's report follows: its per-column drift sections use the same tests.</p>"
        + "</section>"
    )


def with_verdict(evidently_html: str, section: str) -> str:
    """Evidently's page with our section first in its body."""
    match = BODY_TAG.search(evidently_html)
    if match is None:  # not a full page: our section leads all the same
        return section + evidently_html
    return evidently_html[: match.end()] + section + evidently_html[match.end() :]
