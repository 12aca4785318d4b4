"""Live drift: the population stability index (PSI) of each feature, on bins fixed from the reference.

Cheap enough to run inside the service every few minutes (no Evidently): the bins are made once
per model from its reference sample, then each window is a histogram and a sum.

- numeric: NUMERIC_BINS bins at the reference's deciles (fewer when values repeat), plus one bin
  for missing values;
- categorical: the reference's TOP_CATEGORIES most frequent values, one bin for any other value
  (unseen ones included) and one for missing values;
- the prediction: as a categorical (classifiers) or a numeric (regressors) column.

PSI = sum over bins of (window share - reference share) * ln(window share / reference share),
shares floored at PSI_FLOOR so an empty bin does not make it infinite. The usual reading: below
0.1 stable, 0.1 to 0.25 a moderate shift, above 0.25 a large one (a feature moved by one standard
deviation scores ~1, by 0.2 sd ~0.05). Dates and times are not compared (see `drift`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from tabserve.predictor import PREDICTION_COLUMN
from tabserve.schema import FeatureSchema

NUMERIC_BINS = 10
TOP_CATEGORIES = 20
PSI_FLOOR = 1e-4
OTHER, MISSING = "(other)", "(missing)"


@dataclass(frozen=True)
class Bins:
    kind: Literal["numeric", "categorical"]
    edges: tuple[float, ...]  # numeric: inner edges, ascending
    categories: tuple[str, ...]  # categorical: the reference's top values
    reference: tuple[float, ...]  # the reference's share in each bin (missing last)

    def shares(self, values: pd.Series) -> np.ndarray:
        counts = self._counts(values)
        return counts / max(counts.sum(), 1)

    def _counts(self, values: pd.Series) -> np.ndarray:
        if self.kind == "numeric":
            numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
            missing = np.isnan(numbers)
            index = np.searchsorted(np.asarray(self.edges), numbers[~missing], side="right")
            counts = np.bincount(index, minlength=len(self.edges) + 1).astype(float)
            return np.r_[counts, missing.sum()]
        present = values.notna()
        text = values[present].astype(str)
        known = text.value_counts().reindex(list(self.categories), fill_value=0).to_numpy(dtype=float)
        return np.r_[known, len(text) - known.sum(), (~present).sum()]


def numeric_bins(values: pd.Series) -> Bins:
    numbers = pd.to_numeric(values, errors="coerce").dropna().to_numpy(dtype=float)
    quantiles = np.linspace(0, 1, NUMERIC_BINS + 1)[1:-1]
    edges = tuple(float(e) for e in np.unique(np.quantile(numbers, quantiles))) if len(numbers) else ()
    bins = Bins("numeric", edges, (), ())
    return Bins("numeric", edges, (), tuple(bins.shares(values)))


def categorical_bins(values: pd.Series) -> Bins:
    top = values.dropna().astype(str).value_counts().head(TOP_CATEGORIES)
    bins = Bins("categorical", (), tuple(top.index), ())
    return Bins("categorical", (), bins.categories, tuple(bins.shares(values)))


def psi(reference: np.ndarray, current: np.ndarray) -> float:
    expected = np.maximum(np.asarray(reference, dtype=float), PSI_FLOOR)
    actual = np.maximum(np.asarray(current, dtype=float), PSI_FLOOR)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


@dataclass(frozen=True)
class Baseline:
    features: dict[str, Bins]
    prediction: Bins | None


def baseline_of(reference: pd.DataFrame, schema: FeatureSchema, classifier: bool) -> Baseline:
    """The bins of every compared feature and of the prediction, from a model's reference sample."""
    features = {name: numeric_bins(reference[name]) for name in schema.numeric}
    features |= {name: categorical_bins(reference[name]) for name in schema.categorical}
    prediction = None
    if PREDICTION_COLUMN in reference:
        column = reference[PREDICTION_COLUMN]
        prediction = categorical_bins(column) if classifier else numeric_bins(column)
    return Baseline(features, prediction)


@dataclass(frozen=True)
class LiveDrift:
    features: dict[str, float]  # feature -> PSI
    prediction: float | None
    rows: int


def live_drift(baseline: Baseline, window: pd.DataFrame) -> LiveDrift:
    """PSI of each feature (and of the prediction) of a window against the baseline."""
    features = {
        name: psi(np.asarray(bins.reference), bins.shares(window[name]))
        for name, bins in baseline.features.items()
        if name in window
    }
    prediction = None
    if baseline.prediction is not None and PREDICTION_COLUMN in window:
        prediction = psi(
            np.asarray(baseline.prediction.reference), baseline.prediction.shares(window[PREDICTION_COLUMN])
        )
    return LiveDrift(features, prediction, len(window))
