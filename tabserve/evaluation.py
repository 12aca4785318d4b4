"""Held-out metrics: accuracy, F1, ROC AUC and log loss for classifiers; MAE, RMSE, R² for regressors."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn import metrics


def classification_metrics(
    y_true: pd.Series, y_pred: np.ndarray, proba: np.ndarray, classes: list[object]
) -> dict[str, float]:
    binary = len(classes) == 2
    result = {
        "accuracy": metrics.accuracy_score(y_true, y_pred),
        "f1": metrics.f1_score(
            y_true, y_pred, average="binary" if binary else "macro", pos_label=classes[-1]
        ),
        "log_loss": metrics.log_loss(y_true, proba, labels=classes),
    }
    present = set(pd.unique(y_true))
    if present == set(classes):
        result["roc_auc"] = (
            metrics.roc_auc_score(y_true == classes[-1], proba[:, -1])
            if binary
            else metrics.roc_auc_score(y_true, proba, multi_class="ovr", labels=classes)
        )
    return {name: round(float(value), 6) for name, value in result.items()}


def regression_metrics(y_true: pd.Series, y_pred: np.ndarray) -> dict[str, float]:
    result = {
        "mae": metrics.mean_absolute_error(y_true, y_pred),
        "rmse": metrics.root_mean_squared_error(y_true, y_pred),
        "r2": metrics.r2_score(y_true, y_pred),
    }
    return {name: round(float(value), 6) for name, value in result.items()}
