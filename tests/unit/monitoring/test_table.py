"""The drift job's terminal table: every method name Evidently reports, and every feature name,
whole (they were cut at 26 and 28 characters: "Wasserstein distance (norm")."""

from __future__ import annotations

from pathlib import Path

from evidently.legacy.calculations.stattests.registry import _registered_stat_tests

from tabserve.monitoring.drift import DriftResult
from tabserve.monitoring.drift_metrics import ColumnDrift
from tabserve.monitoring.job import RunOutput
from tabserve.monitoring.table import format_table


def evidently_method_names() -> list[str]:
    """The display name of every drift method registered in Evidently (what a result reports)."""
    return sorted({test.display_name for tests in _registered_stat_tests.values() for test in tests.values()})


def test_method_and_feature_names_are_never_cut() -> None:
    methods = evidently_method_names()
    assert "Wasserstein distance (normed)" in methods and len(methods) > 15
    features = {
        f"{'a rather long feature name, as exported by a warehouse' if i == 0 else 'f'}{i}": ColumnDrift(
            score=0.1234, method=method, threshold=0.1, drifted=i % 2 == 0
        )
        for i, method in enumerate(methods)
    }
    result = DriftResult(
        current_rows=500, reference_rows=500, drift_share=0.5, dataset_drift=True, features=features
    )
    summary = {
        "model": "m:1",
        "variant": None,
        "window": "last 500 rows",
        "window_rows": 500,
        "sampled_rows": 500,
    }
    table = format_table(RunOutput(result, summary, Path("r.html"), Path("r.json")))
    lines = table.splitlines()
    rows = {line.split("  ")[0].strip(): line for line in lines[2:] if line.startswith(("a rather", "f"))}
    for name, column in features.items():
        assert name in rows, table
        assert f" {column.method} " in rows[name], rows[name]
    header = lines[1]
    # the columns line up: each row's method starts where the header's "method" does
    start = header.index("method")
    for name, column in features.items():
        assert rows[name][start:].startswith(column.method), (header, rows[name])
