import re
import xml.etree.ElementTree as ET

import pytest

from tabserve.explanations.chart import MAX_BARS, contributions_svg, explanation_page

BAR = re.compile(r'<rect class="bar" data-column="([^"]+)" data-value="([^"]+)"')


def test_one_bar_per_column_largest_first_and_the_rest_summed() -> None:
    contributions = {f"c{i}": (-1) ** i * float(i) for i in range(1, 21)}
    svg = contributions_svg(-1.0, -1.0 + sum(contributions.values()), contributions, "t")
    ET.fromstring(svg)  # well-formed: a browser renders it inline
    bars = BAR.findall(svg)
    assert len(bars) == MAX_BARS
    assert [name for name, _ in bars[:3]] == ["c20", "c19", "c18"]
    assert bars[-1][0] == f"{20 - MAX_BARS + 1} other columns"
    assert sum(float(value) for _, value in bars) == pytest.approx(sum(contributions.values()), rel=1e-5)


def test_a_multiclass_answer_gets_one_chart_per_class() -> None:
    answer = {
        "prediction": "b",
        "model": "m:1",
        "variant": "default",
        "request_id": "r1",
        "explanation": {
            "method": "tree_shap",
            "output_space": "log_odds",
            "base_value": {"a": 0.1, "b": 0.2},
            "output": {"a": -0.4, "b": 1.2},
            "contributions": {"a": {"x": -0.5, "y": 0.0}, "b": {"x": 0.6, "y": 0.4}},
        },
    }
    page = explanation_page(answer)
    assert page.count("<svg") == 2 and "class a" in page and "class b" in page and "m:1" in page
