"""Ground truth: who may send it, validate labels, and store them against logged predictions.

Labels decide the quality guard's rollbacks, so they are guarded:
- with `TABSERVE_FEEDBACK_TOKEN` set, every call needs `Authorization: Bearer <token>`;
- a label, once set, changes only by an explicit correction (`correct: true`), and every change
  (a first label included) is kept in `label_changes` with its time, actor and reason;
- sending the same label again changes nothing (safe to retry).
"""

from __future__ import annotations

import hmac
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from tabserve.cleaning import label_text
from tabserve.errors import TabserveError
from tabserve.predictions.store import logged_rows, write_label_changes

logger = logging.getLogger(__name__)

FEEDBACK_TOKEN_ENV = "TABSERVE_FEEDBACK_TOKEN"


class FeedbackError(TabserveError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class LabelUpdate:
    request_id: str
    label: Any
    correct: bool = False
    actor: str | None = None
    reason: str | None = None


def authorize(expected: str | None, authorization: str | None, what: str = "feedback") -> None:
    """Nothing to check without a configured token; otherwise 401 (none given) or 403 (wrong).

    Outcomes (`what="outcomes"`) need the same token: both decide rollbacks."""
    if expected is None:
        return
    if not authorization:
        raise FeedbackError(
            HTTPStatus.UNAUTHORIZED, f"{what} needs 'Authorization: Bearer <token>' ({FEEDBACK_TOKEN_ENV})"
        )
    scheme, _, given = authorization.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected.encode()):
        raise FeedbackError(HTTPStatus.FORBIDDEN, "wrong feedback token")


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
    engine: Engine, items: Sequence[LabelUpdate], classes_of: Callable[[str], tuple[Any, ...] | None]
) -> int:
    """All or nothing: every request id logged, every label valid, no silent change of a label.

    Returns the number of request ids labelled. A database failure is a 503 (retry), not a 500.
    """
    try:
        with engine.begin() as connection:
            logged = logged_rows(connection, [item.request_id for item in items])
            changes = label_changes(items, logged, classes_of)
            write_label_changes(connection, changes)
    except SQLAlchemyError as error:
        logger.warning("feedback not stored: the prediction log database failed (%s)", error)
        raise FeedbackError(
            HTTPStatus.SERVICE_UNAVAILABLE, "the prediction log database is unavailable; retry shortly"
        ) from None
    return len({item.request_id for item in items})


def label_changes(
    items: Sequence[LabelUpdate],
    logged: dict[str, list[Any]],
    classes_of: Callable[[str], tuple[Any, ...] | None],
) -> list[dict[str, Any]]:
    """The label changes these updates make to these logged rows (pure; raises 404/400/409)."""
    missing = [item.request_id for item in items if item.request_id not in logged]
    if missing:
        raise FeedbackError(404, f"no logged prediction with request_id {', '.join(missing[:10])}")
    current = {row.log_id: row.label for rows in logged.values() for row in rows}
    changes: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        for row in logged[item.request_id]:
            label = validate_label(item.label, classes_of(row.model), f"items[{index}]")
            old = current[row.log_id]
            if old is not None and old == label:
                continue
            if old is not None and not item.correct:
                raise FeedbackError(
                    HTTPStatus.CONFLICT,
                    f"items[{index}]: request_id {item.request_id} already has label {old!r}; "
                    "send correct: true to change it (the change is audited)",
                )
            current[row.log_id] = label
            changes.append(
                {
                    "request_id": item.request_id,
                    "log_id": row.log_id,
                    "old_label": old,
                    "new_label": label,
                    "actor": item.actor,
                    "reason": item.reason,
                }
            )
    return changes
