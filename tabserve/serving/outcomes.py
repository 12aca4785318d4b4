"""Business outcomes sent by the caller (`/outcome`): validate them and record each one once.

Guarded like feedback (the same token, the same error shapes), since outcomes can roll a
candidate back. Idempotent, first value wins: an outcome already recorded for a request id is
left as it is; the answer counts it as `unchanged` and lists a different value it ignored.
An unknown request id is a 404, as for feedback.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from tabserve.predictions.outcomes import OutcomeEvent, insert_outcomes, logged_request_ids, stored_outcomes
from tabserve.serving.feedback import FeedbackError

logger = logging.getLogger(__name__)


def validate_outcome(event: OutcomeEvent, kinds: Mapping[str, str], where: str) -> OutcomeEvent:
    """The event with its value as a float: a configured name, 0/1 for a rate, a finite number otherwise."""
    if event.name not in kinds:
        configured = ", ".join(kinds) or "none: set deployment.outcomes"
        raise FeedbackError(
            HTTPStatus.BAD_REQUEST, f"{where}.name: {event.name!r} is not a configured outcome ({configured})"
        )
    value: Any = event.value
    if kinds[event.name] == "rate":
        if not isinstance(value, bool | int | float) or value not in (0, 1):
            raise FeedbackError(
                HTTPStatus.BAD_REQUEST,
                f"{where}.value: {event.name!r} is a rate: send 1 (it happened) or 0, got {value!r}",
            )
    elif isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise FeedbackError(
            HTTPStatus.BAD_REQUEST, f"{where}.value: {event.name!r} needs a finite number, got {value!r}"
        )
    return OutcomeEvent(event.request_id, event.name, float(value), event.actor)


def record_outcomes(
    engine: Engine, events: Sequence[OutcomeEvent], kinds: Mapping[str, str]
) -> dict[str, Any]:
    """All or nothing: every event valid and its request id logged, else nothing is stored.

    Returns {"stored": new events, "unchanged": events already recorded, "ignored": those sent
    with a value different from the recorded one (first value wins)}. A database failure is a
    503 (retry), not a 500.
    """
    checked = [validate_outcome(event, kinds, f"items[{index}]") for index, event in enumerate(events)]
    try:
        with engine.begin() as connection:
            logged = logged_request_ids(connection, [event.request_id for event in checked])
            missing = sorted({event.request_id for event in checked} - logged)
            if missing:
                raise FeedbackError(
                    HTTPStatus.NOT_FOUND, f"no logged prediction with request_id {', '.join(missing[:10])}"
                )
            stored = stored_outcomes(connection, [(event.request_id, event.name) for event in checked])
            new, ignored = first_values(checked, stored)
            inserted = insert_outcomes(connection, new)
    except SQLAlchemyError as error:
        logger.warning("outcomes not stored: the prediction log database failed (%s)", error)
        raise FeedbackError(
            HTTPStatus.SERVICE_UNAVAILABLE, "the prediction log database is unavailable; retry shortly"
        ) from None
    return {"stored": inserted, "unchanged": len(checked) - inserted, "ignored": ignored}


def first_values(
    events: Sequence[OutcomeEvent], stored: Mapping[tuple[str, str], float]
) -> tuple[list[OutcomeEvent], list[dict[str, Any]]]:
    """(events to insert, events whose different value is ignored): the first value of a pair wins,
    whether it was stored before or came earlier in the same batch (pure)."""
    kept = dict(stored)
    new: list[OutcomeEvent] = []
    ignored: list[dict[str, Any]] = []
    for event in events:
        key = (event.request_id, event.name)
        if key not in kept:
            kept[key] = event.value
            new.append(event)
        elif kept[key] != event.value:
            ignored.append(
                {"request_id": event.request_id, "name": event.name, "sent": event.value, "kept": kept[key]}
            )
    return new, ignored
