"""Live drift (PSI on fixed reference bins) on frames with known answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tabserve.errors import ConfigurationError
from tabserve.monitoring.live_drift import (
    NUMERIC_BINS,
    TOP_CATEGORIES,
    Baseline,
    baseline_of,
    categorical_bins,
    live_drift,
    numeric_bins,
    psi,
)
from tabserve.schema import infer_schema
from tabserve.settings import DEFAULT_CONFIG_PATH, LiveDriftSettings, load_settings

LARGE, STABLE = 0.25, 0.1  # the usual reading of PSI


def draw(rows: int, seed: int, shift_a: float = 0.0, city: str | None = None) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "a": rng.normal(0, 1, rows) + shift_a,
            "b": rng.normal(5, 2, rows),
            "city": city or rng.choice(["paris", "lyon", "nice"], rows, p=[0.5, 0.3, 0.2]),
        }
    )
    return frame.assign(prediction=np.where(frame["b"] > 5, "hi", "lo"))


SCHEMA = infer_schema(draw(10, 0)[["a", "b", "city"]])


@pytest.fixture(scope="module")
def baseline() -> Baseline:
    return baseline_of(draw(5_000, 1), SCHEMA, classifier=True)


def test_same_distribution_is_stable(baseline: Baseline) -> None:
    result = live_drift(baseline, draw(5_000, 2))
    assert set(result.features) == {"a", "b", "city"} and result.rows == 5_000
    assert max(result.features.values()) < 0.02 and result.prediction is not None and result.prediction < 0.02


def test_a_shifted_numeric_feature_scores_alone(baseline: Baseline) -> None:
    result = live_drift(baseline, draw(5_000, 3, shift_a=1.0))
    assert result.features["a"] > LARGE
    assert result.features["b"] < STABLE and result.features["city"] < STABLE


def test_a_categorical_forced_to_one_value_scores(baseline: Baseline) -> None:
    result = live_drift(baseline, draw(5_000, 4, city="lyon"))
    assert result.features["city"] > LARGE and result.features["a"] < STABLE


def test_unseen_categories_and_missing_values_have_bins_of_their_own() -> None:
    bins = categorical_bins(pd.Series(["x", "y", "y", None]))
    assert bins.categories == ("y", "x") and bins.reference == (0.5, 0.25, 0.0, 0.25)
    assert bins.shares(pd.Series(["z", "z", "x", None])).tolist() == [0.0, 0.25, 0.5, 0.25]
    many = categorical_bins(pd.Series([f"v{i}" for i in range(100)]))
    assert len(many.categories) == TOP_CATEGORIES


def test_numeric_bins_are_reference_deciles_plus_missing() -> None:
    bins = numeric_bins(pd.Series(np.arange(1_000, dtype=float)))
    assert len(bins.edges) == NUMERIC_BINS - 1 and len(bins.reference) == NUMERIC_BINS + 1
    assert bins.reference[:-1] == pytest.approx([0.1] * NUMERIC_BINS) and bins.reference[-1] == 0
    assert bins.shares(pd.Series([np.nan, "not a number", -5.0, 5_000.0])).tolist() == [
        0.25,
        *[0.0] * (NUMERIC_BINS - 2),
        0.25,
        0.5,
    ]
    constant = numeric_bins(pd.Series([3.0] * 50))
    assert (
        constant.edges == (3.0,)
        and psi(np.asarray(constant.reference), constant.shares(pd.Series([3.0]))) == 0
    )


def test_psi_is_finite_for_an_empty_bin_and_grows_with_the_shift() -> None:
    assert psi(np.array([0.5, 0.5, 0.0]), np.array([0.5, 0.5, 0.0])) == 0
    assert np.isfinite(psi(np.array([1.0, 0.0]), np.array([0.0, 1.0])))
    baseline = baseline_of(draw(5_000, 1), SCHEMA, classifier=True)
    scores = [live_drift(baseline, draw(5_000, 5, shift_a=shift)).features["a"] for shift in (0.1, 0.5, 1.0)]
    assert scores == sorted(scores)


def test_a_regressor_prediction_is_binned_as_a_number() -> None:
    reference = draw(1_000, 1).assign(prediction=lambda f: f["b"] * 2)
    baseline = baseline_of(reference, SCHEMA, classifier=False)
    assert baseline.prediction is not None and baseline.prediction.kind == "numeric"
    moved = live_drift(baseline, draw(1_000, 2).assign(prediction=lambda f: f["b"] * 2 + 10))
    assert moved.prediction is not None and moved.prediction > LARGE


def test_the_committed_configuration_documents_the_defaults(tmp_path: Path) -> None:
    monitoring = load_settings(DEFAULT_CONFIG_PATH, environ={}).monitoring
    assert monitoring.live_drift == LiveDriftSettings() and monitoring.estimated_metric == "accuracy"
    config = tmp_path / "c.yaml"
    config.write_text("monitoring:\n  estimated_metric: precision\n  live_drift: {interval_s: 0}\n")
    with pytest.raises(ConfigurationError, match=r"monitoring\.estimated_metric") as raised:
        load_settings(config, environ={})
    assert "monitoring.live_drift.interval_s" in str(raised.value)
