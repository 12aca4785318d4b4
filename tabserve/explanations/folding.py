"""Fold attributions on the preprocessing's output columns back into the columns the user sent.

The fitted preprocessing says which output comes from which input: each ColumnTransformer
branch's `output_indices_`, and inside a branch the steps that change the width (one-hot
encoding, with its pooled "infrequent" column; date parts). Every other step maps one column to
one column. The result is checked against `get_feature_names_out`, so a transformer this module
does not know stops here instead of folding wrongly.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from tabserve.pipeline import DatetimeParts


class FoldingError(ValueError):
    """The preprocessing has a step whose output columns cannot be traced to its inputs."""


def _one_hot_owners(encoder: OneHotEncoder, owners: list[str]) -> list[str]:
    """One output per kept category, one per pooled (infrequent) group, none for a dropped one."""
    infrequent = getattr(encoder, "infrequent_categories_", [None] * len(owners))
    dropped = getattr(encoder, "drop_idx_", None)
    out: list[str] = []
    for index, (owner, categories) in enumerate(zip(owners, encoder.categories_, strict=True)):
        pooled = infrequent[index]
        count = len(categories) if pooled is None else len(categories) - len(pooled) + 1
        if dropped is not None and dropped[index] is not None:
            count -= 1
        out.extend([owner] * count)
    names = encoder.get_feature_names_out()
    if len(names) != len(out):
        raise FoldingError(f"one-hot encoder: {len(names)} outputs, {len(out)} traced")
    return out


def _branch_owners(transformer: ColumnTransformer) -> list[str]:
    traced: list[str | None] = [None] * len(transformer.get_feature_names_out())
    for name, step, columns in transformer.transformers_:
        if isinstance(step, str) and step == "drop":
            continue
        span = transformer.output_indices_[name]
        branch = list(columns) if isinstance(step, str) else _step_owners(step, list(columns))
        if len(branch) != span.stop - span.start:
            raise FoldingError(f"branch {name}: {span.stop - span.start} outputs, {len(branch)} traced")
        traced[span] = branch
    if any(owner is None for owner in traced):
        raise FoldingError("some output columns come from no known branch")
    return [str(owner) for owner in traced]


def _step_owners(step: Any, owners: list[str]) -> list[str]:
    if isinstance(step, Pipeline):
        for _, inner in step.steps:
            owners = _step_owners(inner, owners)
        return owners
    if isinstance(step, ColumnTransformer):
        return _branch_owners(step)
    if isinstance(step, OneHotEncoder):
        return _one_hot_owners(step, owners)
    if isinstance(step, DatetimeParts):
        return [name for name, (_, parts) in step.columns.items() for _ in parts]
    width = len(step.get_feature_names_out())  # the width only: names inside a branch are its own
    if width != len(owners):
        raise FoldingError(f"{type(step).__name__} maps {len(owners)} columns to {width}")
    return owners


def output_owners(preprocess: Any, columns: list[str]) -> list[str]:
    """The input column behind each output column of the fitted `preprocess`, in output order."""
    owners = _step_owners(preprocess, list(columns))
    names = preprocess.get_feature_names_out()
    if len(owners) != len(names):
        raise FoldingError(f"the preprocessing has {len(names)} outputs, {len(owners)} traced")
    return owners


def folding_matrix(owners: list[str], columns: list[str]) -> np.ndarray:
    """(outputs x columns) 0/1 matrix: attributions @ matrix sums each column's outputs.

    Columns the model does not use (a date without a varying part) get a zero column.
    """
    index = {name: position for position, name in enumerate(columns)}
    matrix = np.zeros((len(owners), len(columns)))
    for row, owner in enumerate(owners):
        matrix[row, index[owner]] = 1.0
    return matrix


def fold(values: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """(rows, outputs[, classes]) attributions -> (rows, columns[, classes]); sums are unchanged."""
    if values.ndim == 2:
        return values @ matrix
    return np.einsum("rok,oc->rck", values, matrix)
