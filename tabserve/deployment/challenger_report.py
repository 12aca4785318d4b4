"""The challenger section of the A/B report in words and in HTML (with inline SVG charts).

On split traffic the text says plainly that no request was scored by both variants, so agreement
and probability deltas cannot exist, and shows what can be compared instead.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

from tabserve.deployment.challenger_diff import PAIRED, ChallengerDiff
from tabserve.deployment.charts import grouped_bars, histogram

UNPAIRED_NOTE = (
    "no request was scored by both variants (split traffic such as canary or A/B: each request is "
    "answered by one variant), so agreement and probability deltas cannot be measured; the "
    "prediction distributions and latency are compared instead (a shadow policy compares the "
    "same requests)"
)


def _number(value: float | None, digits: int = 3, sign: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def _agreement(diff: ChallengerDiff) -> str:
    if diff.agreement is None:
        return "-"
    if diff.tolerance is None:
        return f"{diff.agreement:.3f} of {diff.pairs} requests with the same label"
    return (
        f"{diff.agreement:.3f} of {diff.pairs} requests within {diff.tolerance:.4g}; "
        f"mean |difference| {_number(diff.mean_abs_difference, 4)}"
    )


def _probability(diff: ChallengerDiff) -> str:
    delta = diff.probability_delta
    if delta is None:
        return "-"
    return f"mean {delta.mean:.4f}, p95 {delta.p95:.4f} (|difference| of P({diff.probability_class}))"


def _latency(diff: ChallengerDiff) -> str:
    parts = [f"{label} {_number(value, 1, sign=True)} ms" for label, value in diff.latency_delta_ms.items()]
    return ", ".join(parts) + " (challenger percentile - primary percentile)"


def challenger_rows(diff: ChallengerDiff) -> list[tuple[str, str]]:
    rows = [("prediction PSI", f"{_number(diff.psi)} (challenger's predictions against the primary's)")]
    if diff.mode == PAIRED:
        rows = [("agreement", _agreement(diff)), *rows, ("probability delta", _probability(diff))]
    return [*rows, ("latency delta", _latency(diff))]


def heading(diff: ChallengerDiff, primary: str, challenger: str) -> str:
    if diff.mode == PAIRED:
        return (
            f"challenger {challenger} against primary {primary} on the same {diff.pairs} requests (shadow):"
        )
    return f"challenger {challenger} against primary {primary}: {UNPAIRED_NOTE}:"


def challenger_lines(diff: ChallengerDiff, primary: str, challenger: str) -> list[str]:
    rows = challenger_rows(diff)
    width = max(len(name) for name, _ in rows)
    return [heading(diff, primary, challenger), *[f"  {name.ljust(width)}  {value}" for name, value in rows]]


def challenger_html(diff: ChallengerDiff, primary: str, challenger: str) -> str:
    rows = "".join(
        f"<tr><th>{html.escape(name)}</th><td>{html.escape(value)}</td></tr>"
        for name, value in challenger_rows(diff)
    )
    chart = ""
    if diff.delta_histogram is not None:
        title = f"P({diff.probability_class}): {challenger} - {primary}, per request"
        chart = histogram(title, diff.delta_histogram.edges, diff.delta_histogram.counts, "requests")
    return (
        f"<h2>Challenger diff</h2><p>{html.escape(heading(diff, primary, challenger))}</p>"
        f"<table>{rows}</table>{chart}"
    )


def distribution_html(categories: Sequence[str], shares: Mapping[str, Sequence[float]]) -> str:
    if not categories:
        return "<h2>Prediction distributions</h2><p>no logged predictions in the window</p>"
    chart = grouped_bars("Share of predictions per variant", categories, shares)
    return f"<h2>Prediction distributions</h2>{chart}"
