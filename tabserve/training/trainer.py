"""Train the configured pipeline on a dataset, evaluate it on a held-out split and save it."""

from __future__ import annotations

import hashlib
import logging
import platform
from dataclasses import dataclass, field
from importlib.metadata import version
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from tabserve.datasets import clean_frame, load_dataset, split_features
from tabserve.errors import DataError, ModelNotFoundError
from tabserve.model_store import StoredModel, get_model, save_model
from tabserve.monitoring.estimated_quality import CALIBRATION_KEY, fit_calibration
from tabserve.pipeline import build_pipeline, make_estimator
from tabserve.predictor import PREDICTION_COLUMN, TARGET_COLUMN, Predictor, native
from tabserve.schema import FeatureSchema, coerce_frame, infer_roles
from tabserve.settings import Settings
from tabserve.training.attribution import ATTRIBUTION_KEY, attribution_importance
from tabserve.training.evaluation import (
    classification_baseline,
    classification_metrics,
    per_class_metrics,
    regression_baseline,
    regression_metrics,
)
from tabserve.training.importance import measure_importance

logger = logging.getLogger(__name__)

# An integer target with at most this many distinct values is a classification target.
MAX_CLASSES_FOR_AUTO = 20
LIBRARIES = ("bentoml", "scikit-learn", "numpy", "pandas")  # what the pickled model depends on


@dataclass(frozen=True)
class TrainingResult:
    tag: str
    task: str
    metrics: dict[str, float]
    rows: int
    baseline: dict[str, float] = field(default_factory=dict)
    per_class: dict[str, dict[str, float]] = field(default_factory=dict)
    positive_class: Any = None  # binary classifiers: the class F1 refers to
    classes: list[Any] | None = None
    schema: FeatureSchema | None = None
    dropped: dict[str, str] = field(default_factory=dict)
    previous: tuple[str, dict[str, float]] | None = None  # the previous version's tag and metrics
    importance: dict[str, float] = field(default_factory=dict)  # permutation importance per column
    attribution: dict[str, float] | None = None  # mean |attribution| per column (None: no shap)


def detect_task(target: pd.Series, configured: str) -> Literal["classification", "regression"]:
    """Text or boolean targets are classes; numbers are classes when all integral and at most
    MAX_CLASSES_FOR_AUTO distinct, else a regression target. `training.task` overrides."""
    if configured in ("classification", "regression"):
        return configured  # type: ignore[return-value]
    if not pd.api.types.is_numeric_dtype(target) or pd.api.types.is_bool_dtype(target):
        return "classification"
    integral = bool(np.all(np.mod(target.to_numpy(dtype=float), 1) == 0))
    return "classification" if integral and target.nunique() <= MAX_CLASSES_FOR_AUTO else "regression"


def class_labels(target: pd.Series) -> pd.Series:
    """Pure: class labels in their natural type: bool, int (0/1 and float-coded 1.0/2.0) or text.

    Non-integral numbers (a forced classification of 0.5/1.5) become their text: scikit-learn
    refuses continuous values as classes.
    """
    present = target.dropna()
    if pd.api.types.is_bool_dtype(target) or all(isinstance(v, bool | np.bool_) for v in present):
        return target.astype(bool)
    if pd.api.types.is_numeric_dtype(target):
        values = target.astype(float)
        if bool(np.all(np.mod(values, 1) == 0)):
            return values.astype("int64")
        return values.map(repr)
    return target.map(str)


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


def _prepare_target(target: pd.Series, task: str, name: str) -> pd.Series:
    if task == "classification":
        target = class_labels(target)
        _check_classes(target)
        return target
    try:
        return pd.to_numeric(target).astype(float)
    except (ValueError, TypeError):
        raise DataError(f"target column {name!r} is not numeric; cannot regress it") from None


def _signature(task: str, classes: list[Any] | None, schema: FeatureSchema) -> dict[str, Any]:
    return {
        "task": task,
        "classes": [str(c) for c in classes] if classes is not None else None,
        "features": [(f.name, f.kind) for f in schema.features],
    }


def check_compatible(
    previous: StoredModel, task: str, classes: list[Any] | None, schema: FeatureSchema
) -> None:
    """A new version must keep the task, classes and features of the name's latest version."""
    old_classes = previous.classes
    old = _signature(
        previous.metadata.get("task", ""), list(old_classes) if old_classes else None, previous.schema
    )
    new = _signature(task, classes, schema)
    differences = [
        f"{key}: {old[key]} -> {new[key]}" if key != "features" else "features differ"
        for key in ("task", "classes", "features")
        if old[key] != new[key]
    ]
    if differences:
        raise DataError(
            f"{previous.tag} has another {', '.join(d.split(':')[0] for d in differences)} "
            f"({'; '.join(differences)}): save under another name with --name, or add this "
            "version anyway with --force"
        )


def _previous(name: str) -> StoredModel | None:
    try:
        return get_model(f"{name}:latest")
    except ModelNotFoundError:
        return None


@dataclass(frozen=True)
class Evaluated:
    """A fitted pipeline measured on held-out rows: what the model store keeps beside it."""

    metrics: dict[str, float]
    baseline: dict[str, float]
    per_class: dict[str, dict[str, float]]
    classes: list[Any] | None
    metadata: dict[str, Any]  # task, metrics, schema, importance, calibration, ...: no data lineage
    reference: pd.DataFrame  # held-out rows with their predictions and target: the drift baseline


def evaluate_fitted(
    pipeline: Any,
    schema: FeatureSchema,
    task: str,
    y_train: pd.Series,
    x_test: pd.DataFrame,
    y_test: pd.Series,
    settings: Settings,
) -> Evaluated:
    """Metrics against baselines, permutation importance, calibration and the reference sample.

    Shared by `train` and the retraining loop, so a retrained model carries everything a trained
    one does (the drift alarm's weights, attribution importance, estimated quality's calibration,
    the reference).
    """
    training = settings.training
    classes = [native(c) for c in pipeline.classes_] if task == "classification" else None
    predictor = Predictor(pipeline, schema, tag="", classes=tuple(classes) if classes else None)
    scored = predictor.predict_frame(x_test)
    predicted = scored[PREDICTION_COLUMN].to_numpy()
    per_class: dict[str, dict[str, float]] = {}
    if classes is not None:
        proba = scored[predictor.output_columns[1:]].to_numpy()
        metrics = classification_metrics(y_test, predicted, proba, classes)
        baseline = classification_baseline(y_train, y_test, classes)
        per_class = per_class_metrics(y_test, predicted, classes)
    else:
        metrics = regression_metrics(y_test, predicted)
        baseline = regression_baseline(y_train, y_test)

    importance = measure_importance(
        pipeline,
        x_test,
        y_test,
        classes is not None,
        training.importance_rows,
        training.importance_repeats,
        training.random_state,
    )
    logger.info(
        "permutation importance: %d features x %d repeats on %d held-out rows in %.1f s",
        len(importance["mean"]),
        importance["repeats"],
        importance["rows"],
        importance["seconds"],
    )
    reference = pd.concat([x_test.reset_index(drop=True), scored.reset_index(drop=True)], axis=1).assign(
        **{TARGET_COLUMN: y_test.to_numpy()}
    )
    if len(reference) > training.reference_rows:
        reference = reference.sample(training.reference_rows, random_state=training.random_state)
    metadata: dict[str, Any] = {
        "task": task,
        "metrics": metrics,
        "baseline_metrics": baseline,
        "feature_schema": schema.to_metadata(),
        "feature_importance": importance,
        "libraries": library_versions(),
    }
    attribution = attribution_importance(predictor, reference, settings, training.random_state)
    if attribution is not None:
        metadata[ATTRIBUTION_KEY] = attribution
    if classes is not None:  # BentoML metadata cannot hold None
        metadata["classes"] = classes
        metadata["per_class"] = per_class
        # Quality without labels on live windows (monitoring/estimated_quality.py).
        metadata[CALIBRATION_KEY] = fit_calibration(proba, y_test.to_numpy(), classes)
        if len(classes) == 2:
            metadata["positive_class"] = classes[-1]
    return Evaluated(metrics, baseline, per_class, classes, metadata, reference)


def train(settings: Settings, force: bool = False) -> TrainingResult:
    data, training = settings.data, settings.training
    cleaned = clean_frame(load_dataset(data.source, data.sep), data)
    features, target = split_features(cleaned, data)
    task = detect_task(target, training.task)
    target = _prepare_target(target, task, data.target)
    schema, dropped = infer_roles(features, data.numeric, data.categorical, data.datetime, data.drop)
    for column, reason in dropped.items():
        logger.warning("column %r is not used: %s", column, reason)
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
    classes = sorted(native(c) for c in pd.unique(target)) if task == "classification" else None
    previous = _previous(settings.model.name)
    if previous is not None and not force:
        check_compatible(previous, task, classes, schema)
    logger.info("fitting %s on %d rows x %d features", spec.estimator, len(x_train), features.shape[1])
    pipeline.fit(x_train, y_train)
    evaluated = evaluate_fitted(pipeline, schema, task, y_train, x_test, y_test, settings)
    metadata: dict[str, Any] = {
        **evaluated.metadata,
        "target": data.target,
        "dropped_columns": dropped,
        "missing_markers": list(data.missing_markers),
        "training_data": {**fingerprint(cleaned), "source": data.source},
        "estimator": spec.estimator,
    }
    classes = evaluated.classes
    tag = save_model(
        settings.model.name, pipeline, metadata, evaluated.reference, {"stage": settings.model.stage}
    )
    return TrainingResult(
        tag=tag,
        task=task,
        metrics=evaluated.metrics,
        rows=len(cleaned),
        baseline=evaluated.baseline,
        per_class=evaluated.per_class,
        positive_class=classes[-1] if classes is not None and len(classes) == 2 else None,
        classes=classes,
        schema=schema,
        dropped=dropped,
        previous=(previous.tag, dict(previous.metadata.get("metrics", {}))) if previous is not None else None,
        importance=dict(evaluated.metadata["feature_importance"]["mean"]),
        attribution=evaluated.metadata.get(ATTRIBUTION_KEY, {}).get("mean_abs"),
    )
