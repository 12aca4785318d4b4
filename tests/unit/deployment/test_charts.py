"""The report's inline SVG: well-formed XML, one bar per class and variant, heights to scale."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from tabserve.deployment.charts import SVG_NS, grouped_bars, histogram

RECT = f"{{{SVG_NS}}}rect"


def bars(svg: str) -> list[ET.Element]:
    root = ET.fromstring(svg)  # raises on anything that is not well-formed XML
    assert root.tag == f"{{{SVG_NS}}}svg"
    return [rect for rect in root.iter(RECT) if rect.get("class") == "bar"]


def test_grouped_bars_have_one_bar_per_class_and_variant() -> None:
    svg = grouped_bars(
        "shares <per> variant & class",
        ["benign", "malignant", "x<y"],
        {"champion": [0.6, 0.4, 0.0], "candidate & co": [0.3, 0.7, 0.0]},
    )
    found = bars(svg)
    assert len(found) == 6
    assert {(rect.get("data-series"), rect.get("data-category")) for rect in found} == {
        (series, category)
        for series in ("champion", "candidate & co")
        for category in ("benign", "malignant", "x<y")
    }
    heights = {(r.get("data-series"), r.get("data-category")): float(r.get("height", "")) for r in found}
    tallest = heights[("candidate & co", "malignant")]
    assert tallest == max(heights.values())
    assert heights[("champion", "benign")] == pytest.approx(tallest * 0.6 / 0.7, abs=0.1)
    assert heights[("champion", "x<y")] == 0.0


def test_histogram_has_one_bar_per_bin() -> None:
    svg = histogram("P(1) deltas", [-0.2, -0.1, 0.0, 0.1, 0.2], [0, 5, 20, 1])
    found = bars(svg)
    assert [rect.get("data-category") for rect in found] == ["-0.2..-0.1", "-0.1..0", "0..0.1", "0.1..0.2"]
    assert [float(rect.get("height", "")) > 0 for rect in found] == [False, True, True, True]


def test_empty_series_draw_no_bars_and_no_errors() -> None:
    assert bars(grouped_bars("nothing", [], {})) == []
    assert all(float(r.get("height", "")) == 0 for r in bars(histogram("zeros", [0.0, 1.0], [0])))
