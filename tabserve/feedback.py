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


def label_text(label: Any) -> str:
    """A label's text, the same for its JSON type and its text: 1, 1.0 and "1" -> "1"; true -> "true"."""
    if isinstance(label, bool):
        return str(label).lower()
    if isinstance(label, float) and label.is_integer():
        return str(int(label))
    text = str(label).strip()
    return text.lower() if text.lower() in ("true", "false") else text


def validate_label(label: Any, classes: tuple[Any, ...] | None, where: str) -> Any:
    """The label as the model's own class value (classifiers) or a finite float (regressors).

    A label is accepted in its JSON type or as its text: for a 0/1 model `1`, `1.0` and `"1"`
    are the class 1; for a True/False model `true` and `"True"` are the class True.
    """
    if classes is None:
        number = label
        if isinstance(label, str):
            try:
                number = float(label.strip())
            except ValueError:
                number = None
        if isinstance(number, bool) or not isinstance(number, int | float) or not math.isfinite(number):
            raise FeedbackError(400, f"{where}: label must be a finite number for a regressor, got {label!r}")
        return float(number)
    by_text = {label_text(value): value for value in classes}
    if label_text(label) not in by_text:
        raise FeedbackError(
            400, f"{where}: label {label!r} is not one of the model's classes {[str(c) for c in classes]}"
        )
    return by_text[label_text(label)]


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
