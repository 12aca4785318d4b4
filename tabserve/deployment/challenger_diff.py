"""The challenger against the primary: agreement, prediction PSI, probability and latency deltas.

Pure functions. On shadow traffic both variants scored the same requests, so the rows are paired
by request id (`pair_frame` has one row per request: `primary`, `challenger` and their
probabilities) and every statistic compares answers to the same input. On split traffic (canary,
A/B) each request was answered by one variant only: agreement and probability deltas do not
exist, and only distributions (PSI) and latency percentiles can be compared.

Latency is not logged per request; it comes from the per-variant histograms (`variant_stats`),
so its delta is a difference of percentiles, never a per-request difference. A shadow's latency
is the time of the micro-batch its record was scored in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from tabserve.deployment.rollout import psi
from tabserve.deployment.variant_stats import percentile_ms

LATENCY_QUANTILES = {"p50": 0.5, "p95": 0.95}
DELTA_BINS = 20
DISTRIBUTION_BINS = 10
DEFAULT_TOLERANCE_OF_STD = 0.01  # regressors agree when within 1% of the primary's spread
PAIRED, UNPAIRED = "paired", "unpaired"


@dataclass(frozen=True)
class Deltas:
    """Absolute differences of one number between two variants, on the same requests."""

    mean: float
    p95: float


@dataclass(frozen=True)
class Histogram:
    edges: list[float]
    counts: list[int]


@dataclass(frozen=True)
class ChallengerDiff:
    mode: str  # PAIRED: the same requests; UNPAIRED: distributions only
    pairs: int  # requests scored by both variants
    agreement: float | None  # classifiers: identical labels; regressors: within `tolerance`
    tolerance: float | None  # regressors only
    mean_abs_difference: float | None  # regressors only: mean |challenger - primary|
    psi: float | None  # challenger's predictions against the primary's
    probability_class: str | None  # whose probability the deltas compare
    probability_delta: Deltas | None
    delta_histogram: Histogram | None  # signed challenger - primary probabilities
    latency_delta_ms: dict[str, float | None] = field(default_factory=dict)


def agreement(primary: Sequence[Any], challenger: Sequence[Any]) -> float | None:
    """Share of requests both variants gave the same label (None: no pairs)."""
    if len(primary) == 0:
        return None
    same = [str(a) == str(b) for a, b in zip(primary, challenger, strict=True)]
    return float(np.mean(same))


def regression_agreement(
    primary: np.ndarray, challenger: np.ndarray, tolerance: float
) -> tuple[float | None, float | None]:
    """(share within `tolerance`, mean absolute difference) of two regressors' values."""
    if len(primary) == 0:
        return None, None
    difference = np.abs(challenger.astype(float) - primary.astype(float))
    return float(np.mean(difference <= tolerance)), float(difference.mean())


def default_tolerance(primary: np.ndarray) -> float:
    return float(DEFAULT_TOLERANCE_OF_STD * np.std(primary.astype(float))) if len(primary) else 0.0


def compared_class(probabilities: Mapping[str, float], prediction: Any) -> str:
    """Binary: the positive (last) class; multiclass: the class the primary predicted."""
    keys = list(probabilities)
    return keys[-1] if len(keys) == 2 else str(prediction)


def probability_pairs(pairs: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, str | None]:
    """The compared class's probability under each variant, for rows where both have probabilities."""
    rows = pairs.dropna(subset=["primary_probabilities", "challenger_probabilities"])
    if rows.empty:
        return np.array([]), np.array([]), None
    classes = [
        compared_class(probs, prediction)
        for probs, prediction in zip(rows["primary_probabilities"], rows["primary"], strict=True)
    ]
    primary = [probs.get(c, np.nan) for probs, c in zip(rows["primary_probabilities"], classes, strict=True)]
    challenger = [
        probs.get(c, np.nan) for probs, c in zip(rows["challenger_probabilities"], classes, strict=True)
    ]
    label = classes[0] if len(set(classes)) == 1 else "predicted class"
    return np.asarray(primary, dtype=float), np.asarray(challenger, dtype=float), label


def absolute_deltas(primary: np.ndarray, challenger: np.ndarray) -> Deltas | None:
    if len(primary) == 0:
        return None
    difference = np.abs(challenger - primary)
    return Deltas(float(difference.mean()), float(np.quantile(difference, 0.95)))


def delta_histogram(primary: np.ndarray, challenger: np.ndarray, bins: int = DELTA_BINS) -> Histogram | None:
    """Signed challenger - primary deltas on bins symmetric around 0 (identical: one bar at 0)."""
    if len(primary) == 0:
        return None
    delta = challenger - primary
    reach = max(float(np.abs(delta).max()), 1e-6)
    counts, edges = np.histogram(delta, bins=bins, range=(-reach, reach))
    return Histogram([float(edge) for edge in edges], [int(count) for count in counts])


def latency_delta(primary: Mapping[int, int], challenger: Mapping[int, int]) -> dict[str, float | None]:
    """Challenger's latency percentile minus the primary's, in ms (None: a side has no data)."""
    delta: dict[str, float | None] = {}
    for label, quantile in LATENCY_QUANTILES.items():
        a, b = percentile_ms(primary, quantile), percentile_ms(challenger, quantile)
        delta[label] = None if a is None or b is None else b - a
    return delta


def prediction_psi(primary: pd.Series, challenger: pd.Series, classifier: bool) -> float | None:
    """PSI of the challenger's predictions against the primary's (None: a side has none)."""
    if primary.empty or challenger.empty:
        return None
    # A constant primary leaves the decile bins one bin wide open, blind to any challenger:
    # its values are compared as categories instead.
    return psi(primary, challenger, classifier or primary.nunique() < 2)


def paired_diff(
    pairs: pd.DataFrame,
    classifier: bool,
    latency: tuple[Mapping[int, int], Mapping[int, int]],
    tolerance: float | None = None,
) -> ChallengerDiff:
    """Everything on the same requests: `pairs` has primary, challenger and their probabilities."""
    primary, challenger = pairs["primary"], pairs["challenger"]
    share = mean_abs = None
    if classifier:
        share = agreement(list(primary), list(challenger))
    else:
        values = primary.to_numpy(dtype=float)
        tolerance = default_tolerance(values) if tolerance is None else tolerance
        share, mean_abs = regression_agreement(values, challenger.to_numpy(dtype=float), tolerance)
    probability_class, deltas, histogram = None, None, None
    if classifier:
        probs_a, probs_b, probability_class = probability_pairs(pairs)
        deltas, histogram = absolute_deltas(probs_a, probs_b), delta_histogram(probs_a, probs_b)
    return ChallengerDiff(
        mode=PAIRED,
        pairs=len(pairs),
        agreement=share,
        tolerance=None if classifier else tolerance,
        mean_abs_difference=mean_abs,
        psi=prediction_psi(primary, challenger, classifier),
        probability_class=probability_class,
        probability_delta=deltas,
        delta_histogram=histogram,
        latency_delta_ms=latency_delta(*latency),
    )


def unpaired_diff(
    primary: pd.Series,
    challenger: pd.Series,
    classifier: bool,
    latency: tuple[Mapping[int, int], Mapping[int, int]],
) -> ChallengerDiff:
    """Split traffic: each request went to one variant, so only distributions and latency compare."""
    return ChallengerDiff(
        mode=UNPAIRED,
        pairs=0,
        agreement=None,
        tolerance=None,
        mean_abs_difference=None,
        psi=prediction_psi(primary, challenger, classifier),
        probability_class=None,
        probability_delta=None,
        delta_histogram=None,
        latency_delta_ms=latency_delta(*latency),
    )


def distribution_shares(
    predictions: Mapping[str, pd.Series], classifier: bool, bins: int = DISTRIBUTION_BINS
) -> tuple[list[str], dict[str, list[float]]]:
    """Categories and each variant's share per category: classes, or equal-width bins shared by all."""
    present = {name: values for name, values in predictions.items() if not values.empty}
    if not present:
        return [], {}
    if classifier:
        categories = sorted({str(v) for values in present.values() for v in values})
        return categories, {
            name: [
                float(share)
                for share in values.astype(str).value_counts(normalize=True).reindex(categories, fill_value=0)
            ]
            for name, values in present.items()
        }
    numbers = {name: values.to_numpy(dtype=float) for name, values in present.items()}
    low = min(float(v.min()) for v in numbers.values())
    high = max(float(v.max()) for v in numbers.values())
    edges = np.linspace(low, high if high > low else low + 1, bins + 1)
    categories = [f"{edges[i]:.3g}..{edges[i + 1]:.3g}" for i in range(bins)]
    return categories, {
        name: [float(count) / len(v) for count in np.histogram(v, edges)[0]] for name, v in numbers.items()
    }
