"""Ground truth: validate labels and store them against logged predictions."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Engine

from tabserve.errors import TabserveError
from tabserve.prediction_store import models_of, set_labels


class FeedbackError(TabserveError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def validate_label(label: Any, classes: tuple[Any, ...] | None, where: str) -> Any:
    """The label as the model's own class value (classifiers) or a finite float (regressors)."""
    if classes is None:
        if isinstance(label, bool) or not isinstance(label, int | float) or not math.isfinite(label):
            raise FeedbackError(400, f"{where}: label must be a finite number for a regressor, got {label!r}")
        return float(label)
    by_text = {str(value): value for value in classes}
    if str(label) not in by_text:
        raise FeedbackError(
            400, f"{where}: label {label!r} is not one of the model's classes {list(by_text)}"
        )
    return by_text[str(label)]


def record_feedback(
    engine: Engine, items: Sequence[tuple[str, Any]], classes_of: Callable[[str], tuple[Any, ...] | None]
) -> int:
    """All or nothing: every request id must be logged and every label valid. Returns the count."""
    ids = [request_id for request_id, _ in items]
    models = models_of(engine, ids)
    missing = [request_id for request_id in ids if request_id not in models]
    if missing:
        raise FeedbackError(404, f"no logged prediction with request_id {', '.join(missing[:10])}")
    labels = {
        request_id: validate_label(label, classes_of(models[request_id]), f"items[{index}]")
        for index, (request_id, label) in enumerate(items)
    }
    set_labels(engine, labels)
    return len(labels)
