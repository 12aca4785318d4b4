"""Latency histograms: percentiles within a bucket's width, merging across workers."""

from __future__ import annotations

import numpy as np
import pytest

from tabserve.deployment.variant_stats import BUCKET_RATIO, StatsCollector, merge, percentile_ms


def test_percentiles_are_within_one_bucket() -> None:
    collector = StatsCollector()
    latencies = np.random.default_rng(0).lognormal(1.5, 0.8, 20_000)
    for value in latencies:
        collector.record("a", "m:1", value / 1000)
    (row,) = collector.drain()
    histogram = merge([row["latency"]])
    for quantile in (0.5, 0.99):
        exact = float(np.quantile(latencies, quantile))
        assert exact <= percentile_ms(histogram, quantile) <= exact * BUCKET_RATIO**1.01  # type: ignore[operator]


def test_counts_errors_and_drains_to_zero() -> None:
    collector = StatsCollector()
    collector.record("a", "m:1", 0.002, count=10)
    collector.record("a", "m:1", 0.5, error=True)
    collector.record("b", "m:2", 0.001)
    rows = {row["variant"]: row for row in collector.drain()}
    assert (rows["a"]["requests"], rows["a"]["errors"], rows["b"]["requests"]) == (11, 1, 1)
    assert collector.drain() == []


def test_merged_histograms_add_up() -> None:
    merged = merge([{"3": 2, "5": 1}, {3: 1}])
    assert merged == {3: 3, 5: 1}
    assert percentile_ms({}, 0.99) is None
    assert percentile_ms(merged, 1.0) == pytest.approx(0.05 * BUCKET_RATIO**5)
