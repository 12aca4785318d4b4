"""High-cardinality categoricals, compared on the reference's most frequent values plus "(other)".

A product id or a city with thousands of values cannot be compared value by value on a sample:
with 5,000 values and a reference of a few thousand rows, most values are seen once or never,
and the drift distance between two samples of the *same* distribution is mostly sampling noise.
Measured (bench/wide_drift.py): four unshifted columns of 5,000 Zipf-distributed values, 4,000
reference rows against 20,000 live rows, all "drifted" under Jensen-Shannon (score ~0.2 against a
threshold of 0.1). Evidently also draws a bar per value in the report and stores them in the
workspace, for every column.

So a categorical with more than `monitoring.drift_max_categories` (30) distinct reference values
is compared on its `k` most frequent reference values, and every other value (a rare one, or one
the reference never saw) counts as one value, `(other)`. Why 30: the Jensen-Shannon distance of
two samples of the same distribution over k values is about sqrt(k / (8 n)), n the samples'
effective size n_ref * n_cur / (n_ref + n_cur) (2,222 for 4,000 reference and 5,000 live rows).
At k = 100 that is ~0.075, and measured 0.083-0.10 on the benchmark's unshifted columns: one of
four crossed Evidently's threshold of 0.1 on one run. At k = 30 it is ~0.04, well under it.

What is still seen: mass moving between the common values, and mass moving to rare or new
values (the `(other)` share grows: new products, a new source of traffic). What is not: a shift
among rare values only (one rare value replaced by another, both outside the top k), which also
carries little of the column's mass.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

OTHER = "(other)"


def top_categories(reference: pd.Series, k: int) -> list[object]:
    """Pure: the k most frequent values of `reference` (missing values excluded), ties by first seen."""
    return reference.value_counts(dropna=True, sort=True).index[:k].tolist()


def cap_column(column: pd.Series, kept: Iterable[object]) -> pd.Series:
    """Pure: values outside `kept` become OTHER; missing values stay missing."""
    keep = column.isin(list(kept)) | column.isna()
    return column.where(keep, OTHER)


def cap_categories(
    reference: pd.DataFrame, current: pd.DataFrame, columns: Iterable[str], k: int
) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Pure: both frames with each listed column of more than k reference values capped.

    Returns (reference, current, the columns capped). Columns with at most k distinct reference
    values are left as they are (an unseen value there is Evidently's to judge, as before).
    """
    reference, current = reference.copy(), current.copy()
    capped = []
    for name in columns:
        if reference[name].nunique(dropna=True) <= k:
            continue
        kept = top_categories(reference[name], k)
        reference[name] = cap_column(reference[name], kept)
        current[name] = cap_column(current[name], kept)
        capped.append(name)
    return reference, current, capped
