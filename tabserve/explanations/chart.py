"""One prediction's explanation as a page a person reads: a waterfall of bars from the base value
to the output, one bar per column, largest first (inline SVG, no plotting library; pure).

Each bar is a `<rect class="bar">` with its column in `data-column` and its contribution in
`data-value`, so tests and readers can find them. Multiclass: one chart per class label.
"""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape, quoteattr

WIDTH, ROW, LABEL_WIDTH, TOP, VALUE_WIDTH = 720, 22, 220, 40, 70
UP, DOWN = "#d62728", "#1f77b4"  # pushes the output up / down
MAX_BARS = 15  # the rest is summed in one "other columns" bar


def _bars(contributions: dict[str, float]) -> list[tuple[str, float]]:
    ranked = sorted(contributions.items(), key=lambda item: -abs(item[1]))
    if len(ranked) <= MAX_BARS:
        return ranked
    rest = ranked[MAX_BARS - 1 :]
    return [*ranked[: MAX_BARS - 1], (f"{len(rest)} other columns", sum(value for _, value in rest))]


def contributions_svg(base: float, output: float, contributions: dict[str, float], title: str) -> str:
    bars = _bars(contributions)
    running, extent = [base], [base, output]
    for _, value in bars:
        running.append(running[-1] + value)
        extent.append(running[-1])
    low, high = min(extent), max(extent)
    span = (high - low) or 1.0
    plot = WIDTH - LABEL_WIDTH - VALUE_WIDTH

    def x(value: float) -> float:
        return LABEL_WIDTH + (value - low) / span * plot

    height = TOP + ROW * (len(bars) + 2)
    font = 'font-family="sans-serif" font-size="12"'
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" role="img">',
        f"<title>{escape(title)}</title>",
        f'<text x="8" y="18" {font} font-weight="bold">{escape(title)}</text>',
        f'<text x="8" y="{TOP - 6}" {font}>base value {base:.4g}</text>',
        f'<line x1="{x(base):.1f}" y1="{TOP - 16}" x2="{x(base):.1f}" y2="{height - 8}"'
        ' stroke="#999" stroke-dasharray="3,3"/>',
    ]
    for index, (column, value) in enumerate(bars):
        y = TOP + ROW * index
        start, end = running[index], running[index + 1]
        left, width = x(min(start, end)), max(abs(x(end) - x(start)), 1.0)
        colour = UP if value >= 0 else DOWN
        parts += [
            f'<text x="{LABEL_WIDTH - 6}" y="{y + 15}" {font} text-anchor="end">{escape(column)}</text>',
            f'<rect class="bar" data-column={quoteattr(column)} data-value="{value:.6g}"'
            f' x="{left:.1f}" y="{y + 3}" width="{width:.1f}" height="{ROW - 6}" fill="{colour}"/>',
            f'<text x="{WIDTH - VALUE_WIDTH + 6}" y="{y + 15}" {font}>{value:+.4g}</text>',
        ]
    y = TOP + ROW * len(bars)
    parts += [
        f'<line x1="{x(output):.1f}" y1="{TOP - 4}" x2="{x(output):.1f}" y2="{y + 6}" stroke="#333"/>',
        f'<text x="{LABEL_WIDTH - 6}" y="{y + 18}" {font} text-anchor="end" font-weight="bold">output</text>',
        f'<text x="{WIDTH - VALUE_WIDTH + 6}" y="{y + 18}" {font} font-weight="bold">{output:.4g}</text>',
        "</svg>",
    ]
    return "\n".join(parts)


def explanation_page(answer: dict[str, Any]) -> str:
    """An `/explain` answer (prediction fields and `explanation`) as a small HTML page."""
    found = answer["explanation"]
    head = (
        f"prediction {answer['prediction']!s} by {answer['model']} (variant {answer['variant']}),"
        f" request {answer['request_id']}; {found['method']}, in {found['output_space'].replace('_', '-')}"
    )
    if isinstance(found["output"], dict):  # multiclass: one chart per class label
        charts = [
            contributions_svg(
                found["base_value"][label],
                found["output"][label],
                found["contributions"][label],
                f"class {label}",
            )
            for label in found["output"]
        ]
    else:
        charts = [
            contributions_svg(
                found["base_value"], found["output"], found["contributions"], "why this prediction"
            )
        ]
    legend = (
        f'<p><span style="color:{UP}">&#9632;</span> raises the output,'
        f' <span style="color:{DOWN}">&#9632;</span> lowers it</p>'
    )
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Why this prediction</title></head>"
        f"<body style='font-family:sans-serif'><h1>Why this prediction</h1><p>{escape(head)}</p>{legend}"
        + "".join(f"<figure>{chart}</figure>" for chart in charts)
        + "</body></html>"
    )
