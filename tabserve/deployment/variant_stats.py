"""Requests, errors and latency per variant, aggregated in each worker and flushed to the database.

Latency is kept as a histogram with buckets 10% wide, so a flush is a few dozen numbers
whatever the traffic, workers' histograms add up, and percentiles are read back within 10%.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

BUCKET_RATIO = 1.1
SMALLEST_MS = 0.05


def bucket_of(milliseconds: float) -> int:
    if milliseconds <= SMALLEST_MS:
        return 0
    return math.ceil(math.log(milliseconds / SMALLEST_MS) / math.log(BUCKET_RATIO))


def bucket_upper_ms(bucket: int) -> float:
    return float(SMALLEST_MS * BUCKET_RATIO**bucket)


def merge(histograms: Iterable[Mapping[Any, int]]) -> dict[int, int]:
    merged: dict[int, int] = {}
    for histogram in histograms:
        for bucket, count in histogram.items():
            merged[int(bucket)] = merged.get(int(bucket), 0) + int(count)
    return merged


def percentile_ms(histogram: Mapping[int, int], quantile: float) -> float | None:
    """The upper edge of the bucket holding the quantile (None for an empty histogram)."""
    total = sum(histogram.values())
    if total == 0:
        return None
    rank, seen = quantile * total, 0
    for bucket in sorted(histogram):
        seen += histogram[bucket]
        if seen >= rank:
            return bucket_upper_ms(bucket)
    return bucket_upper_ms(max(histogram))


@dataclass
class VariantTotals:
    model: str
    requests: int = 0
    errors: int = 0
    latency: dict[int, int] = field(default_factory=dict)

    def add(self, milliseconds: float, count: int, error: bool) -> None:
        self.requests += count
        if error:
            self.errors += count
        bucket = bucket_of(milliseconds)
        self.latency[bucket] = self.latency.get(bucket, 0) + count


class StatsCollector:
    """Thread-safe per-variant totals since the last `drain`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._totals: dict[str, VariantTotals] = {}

    def record(self, variant: str, model: str, seconds: float, count: int = 1, error: bool = False) -> None:
        with self._lock:
            totals = self._totals.get(variant)
            if totals is None:
                totals = self._totals[variant] = VariantTotals(model)
            totals.add(seconds * 1000, count, error)

    def drain(self) -> list[dict[str, Any]]:
        """Rows for the `variant_stats` table; the totals start again from zero."""
        with self._lock:
            totals, self._totals = self._totals, {}
        now = datetime.now(UTC)
        return [
            {
                "ts": now,
                "variant": variant,
                "model": item.model,
                "requests": item.requests,
                "errors": item.errors,
                "latency": {str(bucket): count for bucket, count in item.latency.items()},
            }
            for variant, item in totals.items()
        ]
