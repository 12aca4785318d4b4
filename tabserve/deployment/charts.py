"""Inline SVG charts for the HTML reports, written by hand: no plotting library in the serving image.

Two shapes: grouped bars (one group per category, one bar per series: prediction distributions
per variant) and a histogram (counts on bins: probability deltas). Every bar is a
`<rect class="bar">` carrying its series and category, so tests and readers can find them; the
output is well-formed XML that a browser renders inline.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from xml.sax.saxutils import escape, quoteattr

WIDTH, HEIGHT = 640, 240
MARGIN_LEFT, MARGIN_BOTTOM, MARGIN_TOP = 48, 56, 28
COLOURS = ("#4c78a8", "#f58518", "#54a24b", "#e45756")
SVG_NS = "http://www.w3.org/2000/svg"


def _open(title: str) -> list[str]:
    return [
        f'<svg xmlns="{SVG_NS}" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img">',
        f"<title>{escape(title)}</title>",
        f'<text x="{MARGIN_LEFT}" y="16" font-size="13" font-family="sans-serif">{escape(title)}</text>',
        f'<line x1="{MARGIN_LEFT}" y1="{HEIGHT - MARGIN_BOTTOM}" x2="{WIDTH - 8}" '
        f'y2="{HEIGHT - MARGIN_BOTTOM}" stroke="#888"/>',
    ]


def _axis(top: float) -> list[str]:
    """The scale: the top value at the top of the plot, 0 at the bottom."""
    font = 'font-size="10" font-family="sans-serif" text-anchor="end"'
    return [
        f'<text x="{MARGIN_LEFT - 4}" y="{MARGIN_TOP + 4}" {font}>{top:.3g}</text>',
        f'<text x="{MARGIN_LEFT - 4}" y="{HEIGHT - MARGIN_BOTTOM}" {font}>0</text>',
    ]


def _bar(x: float, width: float, value: float, top: float, colour: str, series: str, category: str) -> str:
    plot_height = HEIGHT - MARGIN_BOTTOM - MARGIN_TOP
    height = 0.0 if top <= 0 else plot_height * value / top
    y = HEIGHT - MARGIN_BOTTOM - height
    return (
        f'<rect class="bar" data-series={quoteattr(series)} data-category={quoteattr(category)} '
        f'x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{height:.1f}" fill="{colour}">'
        f"<title>{escape(f'{series} {category}: {value:.4g}')}</title></rect>"
    )


def _label(x: float, text: str, anchor: str = "middle") -> str:
    return (
        f'<text x="{x:.1f}" y="{HEIGHT - MARGIN_BOTTOM + 14}" font-size="10" font-family="sans-serif" '
        f'text-anchor="{anchor}">{escape(text)}</text>'
    )


def _legend(series: Sequence[str]) -> list[str]:
    items = []
    for index, name in enumerate(series):
        x = MARGIN_LEFT + 150 * index
        colour = COLOURS[index % len(COLOURS)]
        items.append(f'<rect x="{x}" y="{HEIGHT - 22}" width="10" height="10" fill="{colour}"/>')
        font = 'font-size="11" font-family="sans-serif"'
        items.append(f'<text x="{x + 14}" y="{HEIGHT - 13}" {font}>{escape(name)}</text>')
    return items


def grouped_bars(title: str, categories: Sequence[str], series: Mapping[str, Sequence[float]]) -> str:
    """One group of bars per category, one bar per series (e.g. class shares per variant)."""
    parts = _open(title)
    top = max((value for values in series.values() for value in values), default=0.0)
    parts += _axis(top)
    group = (WIDTH - MARGIN_LEFT - 8) / max(len(categories), 1)
    bar = group * 0.8 / max(len(series), 1)
    for c, category in enumerate(categories):
        left = MARGIN_LEFT + c * group + group * 0.1
        for s, (name, values) in enumerate(series.items()):
            parts.append(_bar(left + s * bar, bar, values[c], top, COLOURS[s % len(COLOURS)], name, category))
        parts.append(_label(left + group * 0.4, category))
    return "".join([*parts, *_legend(list(series)), "</svg>"])


def histogram(title: str, edges: Sequence[float], counts: Sequence[int], series: str = "count") -> str:
    """Counts on bins (`edges` one longer than `counts`), bars side by side."""
    parts = _open(title)
    top = float(max(counts, default=0))
    parts += _axis(top)
    width = (WIDTH - MARGIN_LEFT - 8) / max(len(counts), 1)
    for index, count in enumerate(counts):
        category = f"{edges[index]:.3g}..{edges[index + 1]:.3g}"
        parts.append(
            _bar(MARGIN_LEFT + index * width, width * 0.95, count, top, COLOURS[0], series, category)
        )
    for index, anchor in ((0, "start"), (len(counts) // 2, "middle"), (len(counts), "end")):
        parts.append(_label(MARGIN_LEFT + index * width, f"{edges[index]:.3g}", anchor))
    return "".join([*parts, "</svg>"])
