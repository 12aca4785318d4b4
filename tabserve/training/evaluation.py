"""Held-out metrics: accuracy, F1, ROC AUC and log loss for classifiers; MAE, RMSE, R² for regressors.

Every metric is reported beside a baseline that needs no model (the majority class with the
training class shares as probabilities, or the training mean), so a number can be judged.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics


def classification_metrics(
    y_true: pd.Series, y_pred: np.ndarray, proba: np.ndarray, classes: list[Any]
) -> dict[str, float]:
    """Binary F1 is the F1 of the last class (`positive_class`); multiclass F1 is macro-averaged."""
    binary = len(classes) == 2
    result = {
        "accuracy": metrics.accuracy_score(y_true, y_pred),
        "f1": (
            metrics.f1_score(y_true, y_pred, average="binary", pos_label=classes[-1])
            if binary
            else metrics.f1_score(y_true, y_pred, average="macro", labels=classes)
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


def per_class_metrics(
    y_true: pd.Series, y_pred: np.ndarray, classes: list[Any]
) -> dict[str, dict[str, float]]:
    """str(class) -> precision, recall, F1 and support on the held-out split."""
    precision, recall, f1, support = metrics.precision_recall_fscore_support(
        y_true, y_pred, labels=classes, zero_division=0
    )
    return {
        str(label): {
            "precision": round(float(p), 6),
            "recall": round(float(r), 6),
            "f1": round(float(f), 6),
            "support": int(n),
        }
        for label, p, r, f, n in zip(classes, precision, recall, f1, support, strict=True)
    }


def classification_baseline(y_train: pd.Series, y_true: pd.Series, classes: list[Any]) -> dict[str, float]:
    """The metrics of always answering the training majority class, with the class shares as probabilities."""
    shares = y_train.value_counts(normalize=True).reindex(classes, fill_value=0.0).to_numpy(dtype=float)
    majority = classes[int(shares.argmax())]
    y_pred = np.full(len(y_true), majority, dtype=np.asarray(classes).dtype)
    proba = np.tile(shares, (len(y_true), 1))
    return classification_metrics(y_true, y_pred, proba, classes)


def regression_metrics(y_true: pd.Series, y_pred: np.ndarray) -> dict[str, float]:
    result = {
        "mae": metrics.mean_absolute_error(y_true, y_pred),
        "rmse": metrics.root_mean_squared_error(y_true, y_pred),
        "r2": metrics.r2_score(y_true, y_pred),
    }
    return {name: round(float(value), 6) for name, value in result.items()}


def regression_baseline(y_train: pd.Series, y_true: pd.Series) -> dict[str, float]:
    """The metrics of always answering the training mean."""
    return regression_metrics(y_true, np.full(len(y_true), float(y_train.mean())))
