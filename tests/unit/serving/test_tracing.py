"""Tracing only with an exporter: without one BentoML's middleware is told to skip every URL."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tabserve.errors import ConfigurationError
from tabserve.serving.tracing import EVERY_URL, bentoml_tracing
from tabserve.settings import TracingSettings, load_settings


def test_without_an_exporter_every_url_is_excluded() -> None:
    config = bentoml_tracing(TracingSettings())
    assert config == {"excluded_urls": EVERY_URL}
    pattern = re.compile("|".join(EVERY_URL))  # as OpenTelemetry's ExcludeList searches
    assert all(pattern.search(url) for url in ("http://127.0.0.1:3000/predict", "http://h/model/"))


def test_an_exporter_traces_as_configured() -> None:
    settings = TracingSettings(exporter_type="otlp", sample_rate=0.1, otlp={"endpoint": "http://c:4318"})
    assert bentoml_tracing(settings) == {
        "exporter_type": "otlp",
        "sample_rate": 0.1,
        "otlp": {"endpoint": "http://c:4318"},
    }


def test_a_wrong_exporter_is_named(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("serving:\n  tracing:\n    exporter_type: carrier-pigeon\n")
    with pytest.raises(ConfigurationError, match=r"serving\.tracing\.exporter_type"):
        load_settings(config, environ={})
