"""BentoML's `tracing` configuration from `serving.tracing`: requests are traced only with an exporter.

BentoML 1.4.40 puts its OpenTelemetry middleware in front of every request, exporter or not,
with a sampling rate of 0 by default: it built spans and attributes for nothing, ~20% of a
worker's busy samples at c=32 (bench/profile.py). Without an `exporter_type`, every URL is
excluded from tracing, and the middleware hands each request straight on.
"""

from __future__ import annotations

from typing import Any

from tabserve.settings import TracingSettings

EVERY_URL = ["."]  # an excluded-URL pattern (a regular expression searched in the URL) that always matches


def bentoml_tracing(settings: TracingSettings) -> dict[str, Any]:
    """Pure: the `tracing` argument of `@bentoml.service` for these settings."""
    config = settings.model_dump(exclude_none=True, exclude_defaults=True)
    if settings.exporter_type is None:
        config["excluded_urls"] = EVERY_URL
    return config
