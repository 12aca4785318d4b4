"""Exact TreeSHAP (shap's TreeExplainer, tree-path-dependent) on the model's own input columns.

Explained output: the model's raw output, so the sum is exact: log-odds for gradient boosting
classifiers (multiclass: each class's raw score, the softmax's input), probability for forests
(their raw output is the mean of the leaves' class fractions), the target for regressors.

Limits, checked here rather than answered wrongly (docs/explanations.md):
- HistGradientBoosting with native categorical splits (`categorical_features`): shap reads
  the split threshold and ignores the category bitset, so its values do not add up (measured
  off by whole log-odds units); such a model gets the permutation method.
- GradientBoostingClassifier with more than two classes: shap does not support it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from tabserve.explanations.attributions import OutputSpace

METHOD = "tree_shap"
BOOSTING = (HistGradientBoostingClassifier, GradientBoostingClassifier)
TREES = (
    *BOOSTING,
    HistGradientBoostingRegressor,
    GradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    DecisionTreeClassifier,
    DecisionTreeRegressor,
)


def unsupported(model: Any) -> str | None:
    """Why exact TreeSHAP cannot explain `model`, or None when it can."""
    if not isinstance(model, TREES):
        return f"{type(model).__name__} is not a tree ensemble"
    categorical = getattr(model, "is_categorical_", None)
    if categorical is not None and np.any(categorical):
        return "HistGradientBoosting with native categorical splits (shap ignores their categories)"
    if isinstance(model, GradientBoostingClassifier) and len(model.classes_) > 2:
        return "shap supports GradientBoostingClassifier with two classes only"
    return None


def output_space(model: Any) -> OutputSpace:
    if not hasattr(model, "classes_"):
        return "target"
    return "log_odds" if isinstance(model, BOOSTING) else "probability"


def raw_output(model: Any, matrix: np.ndarray) -> np.ndarray:
    """The model's own output in its output space, (rows, outputs): what the values must add up to."""
    space = output_space(model)
    if space == "target":
        raw = model.predict(matrix)
    elif space == "log_odds":
        raw = model.decision_function(matrix)
    else:
        raw = model.predict_proba(matrix)
    raw = np.asarray(raw, dtype=float)
    return raw.reshape(len(matrix), -1)


class TreeShap:
    """shap's TreeExplainer for one fitted tree model, built once (it copies the trees)."""

    def __init__(self, model: Any) -> None:
        import shap  # the optional extra: imported only when a model is explained

        self.model = model
        self.explainer = shap.TreeExplainer(model, feature_perturbation="tree_path_dependent")

    def __call__(self, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(rows, outputs) matrix of the model's input -> values (rows, inputs, outputs), base (outputs,)."""
        values = np.asarray(self.explainer.shap_values(matrix, check_additivity=False), dtype=float)
        if values.ndim == 2:
            values = values[:, :, np.newaxis]
        base = np.atleast_1d(np.asarray(self.explainer.expected_value, dtype=float))
        return values, base
