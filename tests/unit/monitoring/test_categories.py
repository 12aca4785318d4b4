"""High-cardinality categoricals are compared on the reference's top values plus "(other)".

The pure capping on three-row frames, then Evidently for real on a column of 2,000 Zipf-like
values: the same distribution is not drift once capped (it was, value by value), and mass moving
to values the reference never saw is drift.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tabserve.monitoring.categories import OTHER, cap_categories, cap_column, top_categories
from tabserve.monitoring.drift_metrics import build_metrics, read_column_drifts, run_report
from tabserve.schema import infer_schema
from tabserve.settings import MonitoringSettings

VALUES = 2_000


def test_top_categories_are_the_most_frequent_reference_values() -> None:
    reference = pd.Series(["a", "b", "b", "c", "c", "c", None, None, None, None])
    assert top_categories(reference, 2) == ["c", "b"]  # missing values are no category


def test_values_outside_the_kept_ones_become_other_and_missing_stays_missing() -> None:
    capped = cap_column(pd.Series(["a", "new", None, "b"], dtype=object), ["a", "b"])
    values = capped.tolist()
    assert [values[0], values[1], values[3]] == ["a", OTHER, "b"]
    assert pd.isna(values[2])


def test_only_columns_with_more_values_than_k_are_capped() -> None:
    reference = pd.DataFrame({"wide": ["a", "a", "b", "c"], "narrow": ["x", "y", "x", "y"]})
    current = pd.DataFrame({"wide": ["a", "d", "c", "b"], "narrow": ["x", "z", "x", "y"]})
    ref, cur, capped = cap_categories(reference, current, ["wide", "narrow"], k=2)
    assert capped == ["wide"]
    assert ref["wide"].tolist() == ["a", "a", "b", OTHER]  # ties: the first seen is kept
    assert cur["wide"].tolist() == ["a", OTHER, OTHER, "b"]
    assert cur["narrow"].tolist() == ["x", "z", "x", "y"]  # an unseen value: Evidently's to judge
    assert reference["wide"].tolist() == ["a", "a", "b", "c"]  # inputs untouched


def zipf_frame(rows: int, seed: int, unseen_share: float = 0.0) -> pd.DataFrame:
    """A numeric feature, a 2,000-value categorical `city`, and a prediction; some rows' city new."""
    rng = np.random.default_rng(seed)
    weights = 1 / np.arange(1, VALUES + 1) ** 1.1
    city = np.char.add("city_", rng.choice(VALUES, rows, p=weights / weights.sum()).astype(str))
    unseen = rng.random(rows) < unseen_share
    city[unseen] = np.char.add("new_", rng.integers(0, 500, unseen.sum()).astype(str))
    frame = pd.DataFrame({"x": rng.normal(0, 1, rows), "city": city.astype(object)})
    frame["prediction"] = np.where(frame["x"] > 0, "hi", "lo")
    return frame


SCHEMA = infer_schema(zipf_frame(50, seed=0)[["x", "city"]])


def city_drifts(current: pd.DataFrame, max_categories: int) -> bool:
    settings = MonitoringSettings(drift_max_categories=max_categories)
    metrics = build_metrics(SCHEMA, True, settings)
    snapshot = run_report(zipf_frame(2_000, seed=1), current, SCHEMA, True, metrics, max_categories)
    return read_column_drifts(snapshot, metrics)["city"].drifted


@pytest.mark.parametrize("max_categories", [MonitoringSettings().drift_max_categories, 10])
def test_the_same_high_cardinality_distribution_is_not_drift_once_capped(max_categories: int) -> None:
    assert city_drifts(zipf_frame(10_000, seed=2), max_categories) is False


def test_value_by_value_the_same_distribution_looked_like_drift() -> None:
    """Why the cap exists: uncapped, sampling noise over 2,000 values passes the threshold."""
    assert city_drifts(zipf_frame(10_000, seed=2), max_categories=VALUES * 2) is True


@pytest.mark.parametrize("max_categories", [MonitoringSettings().drift_max_categories, 10])
def test_mass_moving_to_new_values_is_drift(max_categories: int) -> None:
    assert city_drifts(zipf_frame(10_000, seed=2, unseen_share=0.3), max_categories) is True
