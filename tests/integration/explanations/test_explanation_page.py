"""A logged prediction's explanation as a person sees it: the page of `GET /explain/{id}?view=html`
rendered by headless chromium (scripts/install-chromium.sh), bars read from the rendered DOM."""

from __future__ import annotations

import re

import httpx
import pytest

from tabserve.explanations.chart import MAX_BARS
from tabserve.model_store import StoredModel
from tests.browser import rendered_dom
from tests.factories import reference_records

BAR = re.compile(r'<rect class="bar" data-column="([^"]+)" data-value="([^"]+)"')


def test_the_explanation_page_draws_the_contributions_in_a_browser(
    service_url: str, default_model: StoredModel
) -> None:
    record = reference_records(default_model, 1)[0]
    answer = httpx.post(f"{service_url}/explain", json={"record": record}, timeout=60).json()
    explanation = answer["explanation"]
    dom = rendered_dom(f"{service_url}/explain/{answer['request_id']}?view=html")
    assert "Why this prediction" in dom and answer["request_id"] in dom and "log-odds" in dom
    bars = BAR.findall(dom)
    assert len(bars) == MAX_BARS  # 30 columns: the 14 largest and one bar for the rest
    largest = max(explanation["contributions"], key=lambda c: abs(explanation["contributions"][c]))
    assert bars[0][0] == largest
    drawn = sum(float(value) for _, value in bars)
    assert explanation["base_value"] + drawn == pytest.approx(explanation["output"], abs=1e-4)
