"""The model-agnostic fallback: shap's permutation explainer on the raw columns.

It permutes the columns the user sends (not the one-hot outputs), so a column's categories,
pooled group and date parts move together and nothing needs folding. Bounded: `background_rows`
rows of the model's reference sample stand for "absent", and at most `max_evals` model calls
(each on `background_rows` rows) per explained row. Each permutation's steps telescope from the
background's mean to the row's output, so the values add up to the output exactly (to float
error); they are an estimate of the Shapley values, whose error shrinks with `max_evals`.

shap's maskers compare values numerically, so text columns travel as integer codes into a
codebook and are decoded back before the pipeline sees them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

METHOD = "permutation"
SEED = 0  # the same row gets the same explanation every time


class Codebook:
    """Text columns <-> float codes (NaN stays NaN, the pipeline's missing value)."""

    def __init__(self, frames: list[pd.DataFrame], text_columns: list[str]) -> None:
        self.values: dict[str, list[Any]] = {}
        for name in text_columns:
            seen = pd.concat([frame[name] for frame in frames]).dropna().unique()
            self.values[name] = list(seen)

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        out = frame.copy()
        for name, values in self.values.items():
            index = {value: float(code) for code, value in enumerate(values)}
            out[name] = [np.nan if pd.isna(value) else index[value] for value in frame[name]]
        return out.to_numpy(dtype=float)

    def decode(self, matrix: np.ndarray, columns: list[str]) -> pd.DataFrame:
        frame = pd.DataFrame(matrix, columns=columns)
        for name, values in self.values.items():
            table = np.array([*values, np.nan], dtype=object)
            codes = frame[name].to_numpy()
            frame[name] = table[np.where(np.isnan(codes), len(values), codes).astype(int)]
        return frame


def permutation_values(
    predict: Callable[[pd.DataFrame], np.ndarray],
    rows: pd.DataFrame,
    background: pd.DataFrame,
    text_columns: list[str],
    max_evals: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw rows -> values (rows, columns, outputs), base (outputs,), outputs (rows, outputs).

    `predict`: raw frame -> (rows, outputs) in the explained output space.
    """
    import shap  # the optional extra

    columns = list(rows.columns)
    codebook = Codebook([rows, background], text_columns)

    def model(matrix: np.ndarray) -> np.ndarray:
        return predict(codebook.decode(matrix, columns))

    masker = shap.maskers.Independent(codebook.encode(background), max_samples=len(background))
    explainer = shap.PermutationExplainer(model, masker, seed=SEED)
    # A permutation needs 2 * columns + 1 calls: never fewer than one full permutation.
    evals = max(max_evals, 2 * len(columns) + 1)
    # One model call per row: the Pipeline's per-call cost, not the rows, dominates.
    explained = explainer(codebook.encode(rows), max_evals=evals, batch_size=evals, silent=True)
    values = np.asarray(explained.values, dtype=float)
    if values.ndim == 2:
        values = values[:, :, np.newaxis]
    base = np.asarray(explained.base_values, dtype=float).reshape(len(rows), -1)[0]
    outputs = np.asarray(predict(rows), dtype=float).reshape(len(rows), -1)
    return values, base, outputs
