"""The BentoML model store: save a pipeline with its metadata and drift reference; load it back."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bentoml
import joblib
import pandas as pd
from bentoml.exceptions import NotFound

from tabserve.cleaning import DEFAULT_MISSING_MARKERS
from tabserve.errors import ModelNotFoundError
from tabserve.predictor import Predictor
from tabserve.schema import FeatureSchema

PIPELINE_FILE = "pipeline.joblib"
REFERENCE_FILE = "reference.parquet"
TRAIN_HINT = "train one with `make train` (or `python -m train`)"


@dataclass(frozen=True)
class StoredModel:
    tag: str
    metadata: dict[str, Any]
    labels: dict[str, str]
    path: Path

    @property
    def schema(self) -> FeatureSchema:
        return FeatureSchema.from_metadata(self.metadata["feature_schema"])

    @property
    def markers(self) -> tuple[str, ...]:
        """The missing markers the model was trained with: serving cleans raw values with them."""
        return tuple(self.metadata.get("missing_markers", DEFAULT_MISSING_MARKERS))

    @property
    def unused_columns(self) -> dict[str, str]:
        """Columns training left out, with the reason (ID-like, constant, all missing, configured)."""
        return dict(self.metadata.get("dropped_columns", {}))

    @property
    def classes(self) -> tuple[Any, ...] | None:
        classes = self.metadata.get("classes")
        return tuple(classes) if classes is not None else None

    @property
    def reference_path(self) -> Path:
        return self.path / REFERENCE_FILE

    def load_reference(self) -> pd.DataFrame:
        return pd.read_parquet(self.reference_path)

    def load_predictor(self) -> Predictor:
        return Predictor(
            pipeline=joblib.load(self.path / PIPELINE_FILE),
            schema=self.schema,
            tag=self.tag,
            classes=self.classes,
        )

    def info(self) -> dict[str, Any]:
        """What the model-information endpoint shows."""
        return {"tag": self.tag, "labels": self.labels, **self.metadata}


def save_model(
    name: str,
    pipeline: Any,
    metadata: dict[str, Any],
    reference: pd.DataFrame,
    labels: dict[str, str],
) -> str:
    """Write pipeline and reference sample into a new model version; return its tag."""
    with bentoml.models.create(name, labels=labels, metadata=metadata) as model:
        joblib.dump(pipeline, model.path_of(PIPELINE_FILE))
        reference.to_parquet(model.path_of(REFERENCE_FILE), index=False)
    return str(model.tag)


def get_model(tag: str) -> StoredModel:
    """Look a model up in the store, with a message that says how to get one if it is missing."""
    try:
        model = bentoml.models.get(tag)
    except NotFound:
        raise ModelNotFoundError(f"model {tag!r} is not in the BentoML model store; {TRAIN_HINT}") from None
    return StoredModel(
        tag=str(model.tag),
        metadata=dict(model.info.metadata),
        labels=dict(model.info.labels),
        path=Path(model.path),
    )


def model_exists(tag: str) -> bool:
    try:
        get_model(tag)
    except ModelNotFoundError:
        return False
    return True
