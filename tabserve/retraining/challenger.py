"""The challenger: the champion's own recipe fitted on new data, and saved with its lineage.

The recipe is the champion's Pipeline itself, cloned unfitted (`sklearn.base.clone`): the same
estimator and parameters, the same column roles and encoders; the same cleaning rules come with
its schema and missing markers. Nothing is re-derived from today's configuration, which may have
changed since the champion was trained.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
from sklearn.base import clone

from tabserve.model_store import ORIGIN_LABEL, RETRAINED, StoredModel, save_model
from tabserve.predictor import Predictor
from tabserve.settings import Settings
from tabserve.training.trainer import evaluate_fitted, fingerprint, library_versions

STAGE_LABEL = "stage"


def without_none(value: Any) -> Any:
    """Pure: a JSON-like value with its None entries left out (BentoML metadata refuses None)."""
    if isinstance(value, dict):
        return {key: without_none(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [without_none(item) for item in value if item is not None]
    return value


@dataclass(frozen=True)
class Fitted:
    pipeline: Any
    predictor: Predictor  # untagged until saved


def fit_challenger(champion: StoredModel, features: pd.DataFrame, targets: pd.Series) -> Fitted:
    pipeline = clone(champion.load_predictor().pipeline)
    pipeline.fit(features, targets)
    return Fitted(pipeline, Predictor(pipeline, champion.schema, tag="", classes=champion.classes))


def save_challenger(
    champion: StoredModel,
    fitted: Fitted,
    training_rows: pd.DataFrame,
    holdout: tuple[pd.DataFrame, pd.Series],
    y_train: pd.Series,
    lineage: dict[str, Any],
    settings: Settings,
    accepted: bool,
) -> str:
    """Save under the champion's name, labelled as retrained (never `NAME:latest`); return the tag."""
    evaluated = evaluate_fitted(
        fitted.pipeline, champion.schema, str(champion.metadata["task"]), y_train, *holdout, settings
    )
    metadata: dict[str, Any] = {
        **evaluated.metadata,
        "target": champion.metadata.get("target"),
        "dropped_columns": champion.unused_columns,
        "missing_markers": list(champion.markers),
        "training_data": {**fingerprint(training_rows), "source": "prediction log"},
        "estimator": champion.metadata.get("estimator"),
        "libraries": library_versions(),
        "lineage": without_none(lineage),
    }
    name = champion.tag.split(":")[0]
    labels = {STAGE_LABEL: "challenger" if accepted else "rejected", ORIGIN_LABEL: RETRAINED}
    return save_model(name, fitted.pipeline, metadata, evaluated.reference, labels)
