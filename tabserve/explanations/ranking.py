"""The global view: mean |attribution| per column over many rows, and how a window's differs
from the reference's (pure).

A column's importance is the mean over rows (and, for multiclass, over classes) of the absolute
contribution. Drift of that ranking is measured as SageMaker Clarify does: the nDCG of the
window's order, with the reference's importances as relevance; 1 when the window ranks the
columns as the reference does, lower when the columns the model leaned on fall down the list.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from tabserve.explanations.attributions import Attributions
from tabserve.explanations.explainer import Explainer

ATTRIBUTION_KEY = "attribution_importance"  # in the model's metadata
DEFAULT_NDCG_THRESHOLD = 0.9  # SageMaker Clarify's default alarm


def mean_absolute(found: Attributions) -> dict[str, float]:
    means = np.abs(found.values).mean(axis=(0, 2)) if len(found.values) else np.zeros(len(found.columns))
    return {column: float(value) for column, value in zip(found.columns, means, strict=True)}


def global_attribution(explainer: Explainer, frame: pd.DataFrame, seed: int) -> dict[str, Any]:
    """What goes into the model's metadata: mean |attribution| per column on a sample of `frame`
    (`global_rows` rows; `global_rows_permutation` for the costlier permutation method)."""
    settings = explainer.settings
    rows = settings.global_rows if explainer.method == "tree_shap" else settings.global_rows_permutation
    sample = frame.sample(n=rows, random_state=seed) if len(frame) > rows else frame
    found = explainer.explain_frame(sample.reset_index(drop=True))
    return {
        "method": found.method,
        "output_space": found.output_space,
        "rows": len(sample),
        "mean_abs": mean_absolute(found),
    }


def ndcg(reference: dict[str, float], window: dict[str, float]) -> float:
    """nDCG of the window's ranking against the reference's (relevance: reference importance)."""
    columns = [column for column in reference if column in window]
    ideal = sorted((reference[c] for c in columns), reverse=True)
    ranked = sorted(columns, key=lambda c: (-window[c], c))
    ideal_gain = sum(value / math.log2(position + 2) for position, value in enumerate(ideal))
    if ideal_gain <= 0:
        return 1.0  # nothing to rank: no column mattered in the reference
    gain = sum(reference[c] / math.log2(position + 2) for position, c in enumerate(ranked))
    return gain / ideal_gain


def shares(importance: dict[str, float]) -> dict[str, float]:
    total = sum(importance.values())
    return {column: (value / total if total > 0 else 0.0) for column, value in importance.items()}


def attribution_drift(
    reference: dict[str, float], window: dict[str, float], threshold: float
) -> dict[str, Any]:
    """The verdict's block: nDCG, the alarm, each column's share before, after and its change."""
    score = ndcg(reference, window)
    before, after = shares(reference), shares(window)
    return {
        "ndcg": score,
        "threshold": threshold,
        "drift": score < threshold,
        "columns": {
            column: {
                "reference_share": before[column],
                "window_share": after.get(column, 0.0),
                "change": after.get(column, 0.0) - before[column],
            }
            for column in sorted(before, key=lambda c: -before[c])
        },
    }
