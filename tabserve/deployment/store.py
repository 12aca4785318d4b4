"""Where the deployment state lives: the prediction-log database, shared by workers and replicas.

Its tables (declared in `tabserve.predictions.tables`, made by the migrations):

- `deployment_state`: one row, the current state and its version. Writers compare and swap on
  the version, so two workers (or an operator and the rollout) can never overwrite each other.
- `deployment_events`: every change with time, actor, action and reason (the audit trail).
- `variant_stats`: requests, errors and a latency histogram per variant, flushed by each worker.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from tabserve.deployment.variant_stats import merge
from tabserve.predictions.tables import deployment_events, deployment_state, variant_stats

STATE_ROW = 1


@dataclass(frozen=True)
class Change:
    actor: str
    action: str
    reason: str


def read_version(engine: Engine) -> int | None:
    """The stored state's version: the cheap check every worker polls."""
    with engine.connect() as connection:
        found = connection.execute(
            select(deployment_state.c.version).where(deployment_state.c.id == STATE_ROW)
        ).scalar_one_or_none()
    return None if found is None else int(found)


def read_state(engine: Engine) -> tuple[int, dict[str, Any]] | None:
    with engine.connect() as connection:
        row = connection.execute(
            select(deployment_state.c.version, deployment_state.c.state).where(
                deployment_state.c.id == STATE_ROW
            )
        ).first()
    return None if row is None else (int(row.version), dict(row.state))


def write_state(engine: Engine, expected: int | None, state: dict[str, Any], change: Change) -> int | None:
    """Store `state` if the stored version is still `expected` (None: nothing stored yet).

    Returns the new version, or None when someone else changed it first. The audit event is
    written in the same transaction, so there is no change without its record.
    """
    now = datetime.now(UTC)
    version = 1 if expected is None else expected + 1
    try:
        with engine.begin() as connection:
            if expected is None:
                connection.execute(
                    insert(deployment_state).values(
                        id=STATE_ROW, version=version, state=state, updated_at=now
                    )
                )
            else:
                swapped = connection.execute(
                    update(deployment_state)
                    .where(deployment_state.c.id == STATE_ROW, deployment_state.c.version == expected)
                    .values(version=version, state=state, updated_at=now)
                )
                if swapped.rowcount != 1:
                    connection.rollback()
                    return None
            connection.execute(
                insert(deployment_events).values(
                    ts=now,
                    version=version,
                    actor=change.actor,
                    action=change.action,
                    reason=change.reason,
                    state=state,
                )
            )
    except IntegrityError:  # another writer created the first row at the same moment
        return None
    return version


def read_events(engine: Engine, limit: int = 50) -> list[dict[str, Any]]:
    """The newest changes first."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(deployment_events).order_by(deployment_events.c.id.desc()).limit(limit)
        ).mappings()
        return [{**row, "ts": _utc(row["ts"]).isoformat()} for row in rows]


def _utc(moment: datetime) -> datetime:
    """SQLite hands back naive times: they were stored in UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def insert_stats(engine: Engine, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        with engine.begin() as connection:
            connection.execute(insert(variant_stats), list(rows))


def prune_stats(engine: Engine, before: datetime) -> int:
    """Delete per-variant numbers older than `before`; returns how many rows went."""
    with engine.begin() as connection:
        return int(connection.execute(delete(variant_stats).where(variant_stats.c.ts < before)).rowcount)


@dataclass(frozen=True)
class VariantSummary:
    requests: int
    errors: int
    latency: dict[int, int]

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None


NO_TRAFFIC = VariantSummary(0, 0, {})


def summarize_stats(
    engine: Engine, since: datetime, until: datetime | None = None, models: Mapping[str, str] | None = None
) -> dict[str, VariantSummary]:
    """Totals per variant over a time range, all workers and replicas added up (one query).

    `models`: variant -> the only model tag whose numbers count for it (others are left out).
    """
    query = select(
        variant_stats.c.variant,
        variant_stats.c.model,
        variant_stats.c.requests,
        variant_stats.c.errors,
        variant_stats.c.latency,
    ).where(variant_stats.c.ts >= since)
    if until is not None:
        query = query.where(variant_stats.c.ts < until)
    wanted = models or {}
    rows: dict[str, list[Any]] = {}
    with engine.connect() as connection:
        for row in connection.execute(query):
            if wanted.get(row.variant, row.model) == row.model:
                rows.setdefault(row.variant, []).append(row)
    return {
        variant: VariantSummary(
            sum(row.requests for row in found),
            sum(row.errors for row in found),
            merge(row.latency for row in found),
        )
        for variant, found in rows.items()
    }
