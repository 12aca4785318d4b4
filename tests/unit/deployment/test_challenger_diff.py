"""Challenger statistics with known answers: agreement, PSI, probability and latency deltas."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tabserve.deployment.challenger_diff import (
    PAIRED,
    UNPAIRED,
    agreement,
    compared_class,
    distribution_shares,
    latency_delta,
    paired_diff,
    prediction_psi,
    regression_agreement,
    unpaired_diff,
)
from tabserve.deployment.rollout import PSI_FLOOR
from tabserve.deployment.variant_stats import bucket_of, bucket_upper_ms

ONE_MS, THREE_MS = {bucket_of(1.0): 100}, {bucket_of(3.0): 100}


def pairs(
    primary: list[Any], challenger: list[Any], probs: tuple[list[float], list[float]] | None = None
) -> pd.DataFrame:
    def probabilities(values: list[float] | None) -> list[dict[str, float] | None]:
        return [None] * len(primary) if values is None else [{"0": 1 - p, "1": p} for p in values]

    return pd.DataFrame(
        {
            "request_id": [str(i) for i in range(len(primary))],
            "primary": primary,
            "challenger": challenger,
            "primary_probabilities": probabilities(None if probs is None else probs[0]),
            "challenger_probabilities": probabilities(None if probs is None else probs[1]),
        }
    )


def test_identical_predictions_agree_fully_with_no_shift_and_no_delta() -> None:
    labels = ["0", "1", "1", "0"] * 50
    p = list(np.linspace(0.05, 0.95, len(labels)))
    diff = paired_diff(pairs(labels, labels, (p, p)), True, (ONE_MS, ONE_MS))
    assert diff.mode == PAIRED and diff.pairs == 200
    assert diff.agreement == 1.0 and diff.psi == 0.0
    assert diff.probability_class == "1"
    assert (
        diff.probability_delta is not None
        and diff.probability_delta.mean == 0.0
        and diff.probability_delta.p95 == 0.0
    )
    assert diff.delta_histogram is not None and sum(diff.delta_histogram.counts) == 200
    assert max(diff.delta_histogram.counts) == 200  # every delta in the bin around 0
    assert diff.latency_delta_ms == {"p50": 0.0, "p95": 0.0}


def test_a_flipped_half_agrees_on_half_and_keeps_the_distribution() -> None:
    primary = ["a", "b"] * 50
    flipped = {"a": "b", "b": "a"}
    challenger = [flipped[label] if i < 50 else label for i, label in enumerate(primary)]
    diff = paired_diff(pairs(primary, challenger), True, (ONE_MS, ONE_MS))
    assert diff.agreement == 0.5
    assert diff.psi == pytest.approx(0.0)  # still half a, half b: PSI cannot see disagreement
    assert diff.probability_delta is None and diff.delta_histogram is None  # no probabilities logged


def test_psi_of_a_shifted_distribution_matches_the_formula() -> None:
    primary, challenger = ["a"] * 100, ["a"] * 50 + ["b"] * 50
    diff = paired_diff(pairs(primary, challenger), True, (ONE_MS, ONE_MS))
    expected = (0.5 - 1) * math.log(0.5 / 1) + (0.5 - PSI_FLOOR) * math.log(0.5 / PSI_FLOOR)
    assert diff.psi == pytest.approx(expected) and diff.agreement == 0.5


def test_probability_deltas_are_the_mean_and_p95_of_absolute_differences() -> None:
    p = list(np.linspace(0.1, 0.8, 100))
    shifted = [value + (0.1 if i < 90 else 0.2) for i, value in enumerate(p)]
    diff = paired_diff(pairs(["1"] * 100, ["1"] * 100, (p, shifted)), True, (ONE_MS, ONE_MS))
    assert diff.probability_delta is not None
    assert diff.probability_delta.mean == pytest.approx(0.11)
    assert diff.probability_delta.p95 == pytest.approx(0.2)
    assert diff.delta_histogram is not None and sum(diff.delta_histogram.counts) == 100
    assert diff.delta_histogram.edges[-1] == pytest.approx(0.2)


def test_the_compared_class_is_the_positive_one_or_the_predicted_one() -> None:
    assert compared_class({"no": 0.3, "yes": 0.7}, "no") == "yes"
    assert compared_class({"a": 0.2, "b": 0.5, "c": 0.3}, "b") == "b"


def test_regressors_agree_within_the_tolerance() -> None:
    primary = np.arange(100, dtype=float)
    challenger = primary + np.where(np.arange(100) < 50, 0.5, 0.05)
    share, mean_abs = regression_agreement(primary, challenger, tolerance=0.1)
    assert share == 0.5 and mean_abs == pytest.approx(0.275)
    diff = paired_diff(pairs(list(primary), list(primary)), False, (ONE_MS, THREE_MS))
    assert diff.agreement == 1.0 and diff.mean_abs_difference == 0.0 and diff.psi == 0.0
    assert diff.tolerance == pytest.approx(0.01 * np.std(primary))


def test_latency_delta_is_challenger_minus_primary_percentiles() -> None:
    delta = latency_delta(ONE_MS, THREE_MS)
    expected = bucket_upper_ms(bucket_of(3.0)) - bucket_upper_ms(bucket_of(1.0))
    assert delta == {"p50": pytest.approx(expected), "p95": pytest.approx(expected)}
    assert expected == pytest.approx(2.0, rel=0.15)  # histogram buckets are 10% wide
    assert latency_delta({}, THREE_MS) == {"p50": None, "p95": None}


def test_split_traffic_compares_distributions_only() -> None:
    diff = unpaired_diff(pd.Series(["a"] * 10), pd.Series(["a"] * 10), True, (ONE_MS, THREE_MS))
    assert diff.mode == UNPAIRED and diff.pairs == 0 and diff.agreement is None and diff.psi == 0.0
    assert diff.probability_delta is None and diff.latency_delta_ms["p50"] is not None
    assert agreement([], []) is None


def test_distribution_shares_per_class_and_per_shared_bin() -> None:
    categories, shares = distribution_shares(
        {
            "A": pd.Series(["x", "x", "y", "y"]),
            "B": pd.Series(["x", "z", "z", "z"]),
            "C": pd.Series([], dtype=str),
        },
        True,
    )
    assert categories == ["x", "y", "z"] and shares == {"A": [0.5, 0.5, 0.0], "B": [0.25, 0.0, 0.75]}
    categories, shares = distribution_shares(
        {"A": pd.Series(np.arange(10.0)), "B": pd.Series(np.full(10, 9.0))}, False
    )
    assert len(categories) == 10 and shares["A"] == [0.1] * 10 and shares["B"][-1] == 1.0


def test_a_constant_regressor_still_sees_a_moved_challenger() -> None:
    same = prediction_psi(pd.Series([1.0] * 100), pd.Series([1.0] * 100), False)
    moved = prediction_psi(pd.Series([1.0] * 100), pd.Series([1.0] * 50 + [2.0] * 50), False)
    assert same == 0.0 and moved is not None and moved > 1.0
    assert prediction_psi(pd.Series([], dtype=float), pd.Series([1.0]), False) is None
