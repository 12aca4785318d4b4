"""Business outcomes in the prediction-log database: record them once, sum them per variant.

An outcome is a named number recorded against a request id: `click: 1`, `revenue: 42.5`.
Recording is idempotent, first value wins: the table's unique (request_id, name) makes a retried
or replayed event a no-op, and a later, different value for the same pair is ignored and
reported back (an event stream delivered at least once, or out of order, cannot change a count).

Per variant, an outcome is summed over the requests the variant answered in a window: a request
without the event counts 0 (no click, no revenue), so a rate is "events per request served" and
a value is "value per request served". The sums (count, total, total of squares) are all the
tests need, so the database does the work and nothing is sampled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite

from tabserve.predictions.tables import SHADOW_SUFFIX, outcomes, predictions


@dataclass(frozen=True)
class OutcomeEvent:
    request_id: str
    name: str
    value: float
    actor: str | None = None


@dataclass(frozen=True)
class OutcomeSums:
    """One variant's outcome over the requests it answered: what the tests are computed from."""

    requests: int  # requests the variant answered in the window (the denominator)
    events: int  # of those, requests with this outcome recorded
    total: float  # sum of the values (a missing event counts 0)
    total_sq: float  # sum of the squared values


def logged_request_ids(connection: Connection, request_ids: Sequence[str]) -> set[str]:
    query = select(predictions.c.request_id).where(predictions.c.request_id.in_(set(request_ids))).distinct()
    return set(connection.execute(query).scalars())


def stored_outcomes(connection: Connection, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], float]:
    """(request_id, name) -> the value already recorded, for these pairs."""
    if not keys:
        return {}
    query = select(outcomes.c.request_id, outcomes.c.name, outcomes.c.value).where(
        tuple_(outcomes.c.request_id, outcomes.c.name).in_(list(set(keys)))
    )
    return {(row.request_id, row.name): row.value for row in connection.execute(query)}


def insert_outcomes(connection: Connection, events: Sequence[OutcomeEvent]) -> int:
    """Insert; a pair recorded meanwhile by another request is skipped (first value wins).

    Returns how many were inserted: two senders of one event at once both find it new, and only
    the database knows which of them stored it."""
    if not events:
        return 0
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(outcomes).on_conflict_do_nothing(index_elements=["request_id", "name"])
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = [
        {"ts": now, "request_id": e.request_id, "name": e.name, "value": e.value, "actor": e.actor}
        for e in events
    ]
    return len(connection.execute(statement.returning(outcomes.c.id), rows).all())


def outcome_sums(
    engine: Engine, variant: str, names: Sequence[str], since: datetime, until: datetime | None = None
) -> dict[str, OutcomeSums]:
    """Each outcome's sums over the requests `variant` answered in [since, until) (not as a shadow)."""
    conditions = [
        predictions.c.variant == variant,
        predictions.c.ts >= since,
        ~predictions.c.request_id.endswith(SHADOW_SUFFIX),  # a shadow's answer reached nobody
    ]
    if until is not None:
        conditions.append(predictions.c.ts < until)
    served = select(predictions.c.request_id).where(*conditions).distinct().subquery()
    per_name = (
        select(
            outcomes.c.name,
            func.count().label("events"),
            func.sum(outcomes.c.value).label("total"),
            func.sum(outcomes.c.value * outcomes.c.value).label("total_sq"),
        )
        .join(served, outcomes.c.request_id == served.c.request_id)
        .where(outcomes.c.name.in_(list(names)))
        .group_by(outcomes.c.name)
    )
    with engine.connect() as connection:
        requests = int(connection.execute(select(func.count()).select_from(served)).scalar_one())
        found = {row.name: row for row in connection.execute(per_name)}
    return {
        name: OutcomeSums(
            requests=requests,
            events=int(found[name].events) if name in found else 0,
            total=float(found[name].total) if name in found else 0.0,
            total_sq=float(found[name].total_sq) if name in found else 0.0,
        )
        for name in names
    }
