"""Train the configured pipeline on a dataset, evaluate it on a held-out split and save it."""

from __future__ import annotations

import hashlib
import logging
import platform
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from tabserve.datasets import clean_frame, load_dataset, split_features
from tabserve.errors import DataError
from tabserve.evaluation import classification_metrics, regression_metrics
from tabserve.model_store import save_model
from tabserve.pipeline import build_pipeline, make_estimator
from tabserve.predictor import PREDICTION_COLUMN, Predictor, native
from tabserve.schema import coerce_frame, infer_schema
from tabserve.settings import Settings

logger = logging.getLogger(__name__)

TARGET_COLUMN = "target"  # the target's name inside the reference sample
# An integer target with at most this many distinct values is a classification target.
MAX_CLASSES_FOR_AUTO = 20
LIBRARIES = ("bentoml", "scikit-learn", "numpy", "pandas", "evidently")


@dataclass(frozen=True)
class TrainingResult:
    tag: str
    task: str
    metrics: dict[str, float]
    rows: int


def detect_task(target: pd.Series, configured: str) -> Literal["classification", "regression"]:
    if configured in ("classification", "regression"):
        return configured  # type: ignore[return-value]
    if not pd.api.types.is_numeric_dtype(target) or pd.api.types.is_bool_dtype(target):
        return "classification"
    integral = bool(np.all(np.mod(target.to_numpy(dtype=float), 1) == 0))
    return "classification" if integral and target.nunique() <= MAX_CLASSES_FOR_AUTO else "regression"


def fingerprint(frame: pd.DataFrame) -> dict[str, Any]:
    digest = hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    digest.update("\x1f".join(map(str, frame.columns)).encode())
    return {"sha256": digest.hexdigest(), "rows": len(frame), "columns": int(frame.shape[1])}


def _check_classes(target: pd.Series) -> None:
    counts = target.value_counts()
    if len(counts) < 2:
        raise DataError(
            f"target column {target.name!r} has a single class ({counts.index[0]!r}); "
            "a classifier needs at least two"
        )
    rare = counts[counts < 2]
    if len(rare):
        raise DataError(f"classes with fewer than 2 rows cannot be split: {rare.index.tolist()}")


def library_versions() -> dict[str, str]:
    return {"python": platform.python_version(), **{name: version(name) for name in LIBRARIES}}


def train(settings: Settings) -> TrainingResult:
    data, training = settings.data, settings.training
    cleaned = clean_frame(load_dataset(data.source), data)
    features, target = split_features(cleaned, data)
    task = detect_task(target, training.task)
    if task == "classification":
        target = target.astype(str) if target.dtype == object else target
        _check_classes(target)
    else:
        try:
            target = pd.to_numeric(target).astype(float)
        except (ValueError, TypeError):
            raise DataError(f"target column {data.target!r} is not numeric; cannot regress it") from None
    schema = infer_schema(features, data.numeric, data.categorical)
    features = coerce_frame(features, schema)
    x_train, x_test, y_train, y_test = train_test_split(
        features,
        target,
        test_size=training.test_size,
        random_state=training.random_state,
        stratify=target if task == "classification" else None,
    )
    spec = training.classifier if task == "classification" else training.regressor
    pipeline = build_pipeline(schema, make_estimator(spec, task), training.max_categories)
    logger.info("fitting %s on %d rows x %d features", spec.estimator, len(x_train), features.shape[1])
    pipeline.fit(x_train, y_train)

    classes = [native(c) for c in pipeline.classes_] if task == "classification" else None
    predictor = Predictor(pipeline, schema, tag="", classes=tuple(classes) if classes else None)
    scored = predictor.predict_frame(x_test)
    if classes is not None:
        proba = scored[predictor.output_columns[1:]].to_numpy()
        metrics = classification_metrics(y_test, scored[PREDICTION_COLUMN].to_numpy(), proba, classes)
    else:
        metrics = regression_metrics(y_test, scored[PREDICTION_COLUMN].to_numpy())

    reference = pd.concat([x_test.reset_index(drop=True), scored.reset_index(drop=True)], axis=1).assign(
        **{TARGET_COLUMN: y_test.to_numpy()}
    )
    if len(reference) > training.reference_rows:
        reference = reference.sample(training.reference_rows, random_state=training.random_state)
    metadata: dict[str, Any] = {
        "task": task,
        "target": data.target,
        "metrics": metrics,
        "feature_schema": schema.to_metadata(),
        "training_data": {**fingerprint(cleaned), "source": data.source},
        "estimator": spec.estimator,
        "libraries": library_versions(),
    }
    if classes is not None:  # BentoML metadata cannot hold None
        metadata["classes"] = classes
    tag = save_model(settings.model.name, pipeline, metadata, reference, {"stage": settings.model.stage})
    return TrainingResult(tag=tag, task=task, metrics=metrics, rows=len(cleaned))
