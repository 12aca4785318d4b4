"""Deliberately bad variants for deployment tests and benchmarks: slow, stalled, failing, or wrong.

The wrappers are saved into the model store like any pipeline; the server unpickles them by
import path (`tests.faults`), which resolves because `bentoml serve` runs from the repository.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tabserve.datasets import builtin_breast_cancer
from tabserve.model_store import StoredModel, get_model, save_model


class SlowPipeline:
    """Answers like the wrapped pipeline, `delay_s` later per call."""

    def __init__(self, pipeline: Any, delay_s: float) -> None:
        self.pipeline, self.delay_s = pipeline, delay_s

    def predict(self, features: pd.DataFrame) -> Any:
        time.sleep(self.delay_s)
        return self.pipeline.predict(features)

    def predict_proba(self, features: pd.DataFrame) -> Any:
        time.sleep(self.delay_s)
        return self.pipeline.predict_proba(features)


class GatedPipeline:
    """Answers like the wrapped pipeline once `gate` exists; until then every call waits (a stalled model)."""

    def __init__(self, pipeline: Any, gate: Path, max_wait_s: float = 120) -> None:
        self.pipeline, self.gate, self.max_wait_s = pipeline, gate, max_wait_s

    def _wait(self) -> None:
        deadline = time.monotonic() + self.max_wait_s  # bounded: a forgotten gate cannot hang a server
        while not self.gate.exists() and time.monotonic() < deadline:
            time.sleep(0.01)

    def predict(self, features: pd.DataFrame) -> Any:
        self._wait()
        return self.pipeline.predict(features)

    def predict_proba(self, features: pd.DataFrame) -> Any:
        self._wait()
        return self.pipeline.predict_proba(features)


class FailingPipeline:
    """Raises on every call."""

    def predict(self, features: pd.DataFrame) -> Any:
        raise RuntimeError("injected failure")

    def predict_proba(self, features: pd.DataFrame) -> Any:
        raise RuntimeError("injected failure")


def save_variant(base: StoredModel, name: str, pipeline: Any) -> StoredModel:
    """A new model in the store: `pipeline` with the base model's metadata and reference."""
    tag = save_model(name, pipeline, base.metadata, base.load_reference(), base.labels)
    return get_model(tag)


def slow_variant(base: StoredModel, delay_s: float) -> StoredModel:
    return save_variant(base, "slow", SlowPipeline(base.load_predictor().pipeline, delay_s))


def gated_variant(base: StoredModel, gate: Path) -> StoredModel:
    return save_variant(base, "gated", GatedPipeline(base.load_predictor().pipeline, gate))


def failing_variant(base: StoredModel) -> StoredModel:
    return save_variant(base, "failing", FailingPipeline())


def shuffled_label_data(path: Path, target: str, seed: int = 0) -> Path:
    """The bundled data with its labels shuffled: a model trained on it has learned nothing."""
    frame = builtin_breast_cancer()
    frame[target] = np.random.default_rng(seed).permutation(frame[target].to_numpy())
    frame.to_csv(path, index=False)
    return path
