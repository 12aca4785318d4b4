"""The BentoML model store: save a pipeline with its metadata and drift reference; load it back.

Integrity: `save_model` records the sha256 of every file it writes in the model's metadata
(`artifact_sha256`); `get_model` checks them all, and each file is checked again right before it
is read (`joblib.load` runs code from the file). A mismatch or a missing file raises
`ModelIntegrityError` naming the file: the server does not start, the CLIs exit 2. This catches
a file replaced or corrupted on its own; it does not stop someone who can rewrite the model's
`model.yaml` as well (the hashes live there): protect the store's directory for that.

A model saved before hashes were recorded loads with one WARNING (refusing it would stop every
existing deployment at upgrade); re-save or retrain it to get the check.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bentoml
import joblib
import pandas as pd
from bentoml.exceptions import NotFound

from tabserve.cleaning import DEFAULT_MISSING_MARKERS
from tabserve.errors import ModelIntegrityError, ModelNotFoundError
from tabserve.predictor import Predictor
from tabserve.schema import FeatureSchema

PIPELINE_FILE = "pipeline.joblib"
REFERENCE_FILE = "reference.parquet"
TRAIN_HINT = "train one with `make train` (or `tabserve train`)"
HASHES_KEY = "artifact_sha256"
# Label of every model the retraining loop saves (`tabserve retrain`): never `NAME:latest`.
ORIGIN_LABEL, RETRAINED = "origin", "retrain"
HASH_CHUNK_BYTES = 1 << 20

logger = logging.getLogger(__name__)
_warned_unverifiable: set[str] = set()  # one WARNING per model and process, not per file read


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def verify_artifact(tag: str, folder: Path, name: str, expected: str) -> None:
    """Raise ModelIntegrityError naming the file unless it is there with the recorded sha256."""
    path = folder / name
    if not path.is_file():
        raise ModelIntegrityError(f"model {tag}: {name} is missing ({path}); retrain or restore the model")
    if file_sha256(path) != expected:
        raise ModelIntegrityError(
            f"model {tag}: {name} does not match the sha256 recorded when it was saved ({path}): "
            "it was changed or corrupted; retrain or restore the model, do not load it"
        )


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

    @property
    def hashes(self) -> Mapping[str, str] | None:
        """sha256 per file, recorded at save; None for a model saved before they were."""
        return self.metadata.get(HASHES_KEY)

    def verify(self, names: list[str] | None = None) -> None:
        """Check the named files (default: every recorded one) against their recorded sha256."""
        if self.hashes is None:
            if self.tag in _warned_unverifiable:
                return
            _warned_unverifiable.add(self.tag)
            logger.warning(
                "model %s was saved without artifact hashes: its files cannot be verified; "
                "retrain it to get the integrity check",
                self.tag,
            )
            return
        for name in names if names is not None else sorted(self.hashes):
            expected = self.hashes.get(name)
            if expected is None:
                raise ModelIntegrityError(f"model {self.tag}: no sha256 recorded for {name}")
            verify_artifact(self.tag, self.path, name, expected)

    def load_reference(self) -> pd.DataFrame:
        self.verify([REFERENCE_FILE])
        return pd.read_parquet(self.reference_path)

    def load_predictor(self) -> Predictor:
        self.verify([PIPELINE_FILE])  # joblib.load runs code from the file: never an unchecked one
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
    """Write pipeline and reference sample into a new model version; return its tag.

    The files are written first, in a scratch folder, so their sha256 go into the metadata the
    store writes (any `artifact_sha256` in `metadata`, e.g. copied from another model, is replaced).
    """
    with tempfile.TemporaryDirectory(prefix="tabserve-model-") as scratch:
        folder = Path(scratch)
        joblib.dump(pipeline, folder / PIPELINE_FILE)
        reference.to_parquet(folder / REFERENCE_FILE, index=False)
        hashes = {path.name: file_sha256(path) for path in sorted(folder.iterdir())}
        with bentoml.models.create(name, labels=labels, metadata={**metadata, HASHES_KEY: hashes}) as model:
            for file_name in hashes:
                shutil.move(folder / file_name, model.path_of(file_name))
    return str(model.tag)


def _resolve_latest(tag: str) -> str:
    """`NAME` or `NAME:latest` -> the newest version NOT made by the retraining loop.

    A retrained challenger is saved under the served model's name, but it is served only through
    the deployment state, after its evaluation and rollout: were it `latest`, a restart serving
    `NAME:latest` would put a rejected (or not yet promoted) challenger in front of every user.
    """
    name, _, version = tag.partition(":")
    if version not in ("", "latest"):
        return tag
    try:
        versions = bentoml.models.list(name)
    except NotFound:
        return tag  # not found below, with the usual message
    trained = [model for model in versions if model.info.labels.get(ORIGIN_LABEL) != RETRAINED]
    if not trained:
        return tag  # only retrained versions: BentoML's own `latest`
    return str(max(trained, key=lambda model: model.info.creation_time).tag)


def get_model(tag: str) -> StoredModel:
    """Look a model up in the store, with a message that says how to get one if it is missing.

    `NAME:latest` is the newest version `tabserve train` made (`_resolve_latest`).
    """
    try:
        model = bentoml.models.get(_resolve_latest(tag))
    except NotFound:
        raise ModelNotFoundError(f"model {tag!r} is not in the BentoML model store; {TRAIN_HINT}") from None
    stored = StoredModel(
        tag=str(model.tag),
        metadata=dict(model.info.metadata),
        labels=dict(model.info.labels),
        path=Path(model.path),
    )
    stored.verify()  # every entry point looks its model up here: a changed file stops it at once
    return stored


def model_exists(tag: str) -> bool:
    try:
        get_model(tag)
    except ModelNotFoundError:
        return False
    return True
