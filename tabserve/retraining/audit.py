"""One audit record per retraining loop, in the prediction-log database (`retrain_runs`).

A loop claims the table's single in-flight slot when it starts (`claim`: the unique `in_flight`
column makes a second claim fail in every process and replica), writes its record as it goes
(`update`), and frees the slot when it ends (`finish`). Whether a loop may start at all is a
pure decision (`refusal`) on the last record: one in flight, a cooldown, no new labels.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from tabserve.errors import TabserveError
from tabserve.predictions.tables import retrain_runs

IN_FLIGHT = 1
RUNNING, ACCEPTED, REJECTED, FAILED = "running", "accepted", "rejected", "failed"
PROMOTED, ROLLED_BACK = "promoted", "rolled_back"


class LoopRefusedError(TabserveError):
    """A loop may not start now (one in flight, the cooldown, no new labels): the message says why."""


@dataclass(frozen=True)
class Run:
    evaluation_id: str
    started_at: datetime
    finished_at: datetime | None
    status: str
    trigger: str
    actor: str
    champion: str
    challenger: str | None
    label_watermark: datetime | None
    record: dict[str, Any]

    @property
    def in_flight(self) -> bool:
        return self.finished_at is None


def new_evaluation_id(now: datetime) -> str:
    return f"ev-{now:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def _utc(moment: datetime | None) -> datetime | None:
    """SQLite hands back naive times: they were stored in UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def _run(row: Any) -> Run:
    return Run(
        evaluation_id=row.evaluation_id,
        started_at=_utc(row.started_at) or datetime.now(UTC),
        finished_at=_utc(row.finished_at),
        status=row.status,
        trigger=row.trigger,
        actor=row.actor,
        champion=row.champion,
        challenger=row.challenger,
        label_watermark=_utc(row.label_watermark),
        record=dict(row.record),
    )


def recent_runs(engine: Engine, limit: int = 20) -> list[Run]:
    """The newest loops first."""
    with engine.connect() as connection:
        rows = connection.execute(select(retrain_runs).order_by(retrain_runs.c.id.desc()).limit(limit))
        return [_run(row) for row in rows]


def find_run(engine: Engine, evaluation_id: str) -> Run | None:
    with engine.connect() as connection:
        row = connection.execute(
            select(retrain_runs).where(retrain_runs.c.evaluation_id == evaluation_id)
        ).first()
    return None if row is None else _run(row)


def refusal(last: Run | None, now: datetime, cooldown: timedelta, stale: timedelta) -> str | None:
    """Pure: why no loop may start now given the newest record (None: it may). New labels apart."""
    if last is None:
        return None
    if last.in_flight and now - last.started_at < stale:
        return (
            f"a retraining loop is in flight: {last.evaluation_id}, started "
            f"{last.started_at:%Y-%m-%d %H:%M:%S} UTC by {last.actor} ({last.trigger}); wait for it to end"
        )
    if now - last.started_at < cooldown:
        ready = last.started_at + cooldown
        return (
            f"cooldown: the last loop ({last.evaluation_id}) started {last.started_at:%H:%M:%S} UTC; "
            f"retrain.cooldown_minutes allows the next at {ready:%Y-%m-%d %H:%M:%S} UTC"
        )
    return None


def abandon(engine: Engine, run: Run, now: datetime) -> None:
    """A loop that died without finishing (killed, machine lost): free its slot, say so in its record."""
    record = {**run.record, "error": "abandoned: still 'running' past retrain.stale_after_minutes"}
    with engine.begin() as connection:
        connection.execute(
            update(retrain_runs)
            .where(retrain_runs.c.evaluation_id == run.evaluation_id)
            .values(in_flight=None, finished_at=now, status=FAILED, record=record)
        )


def claim(engine: Engine, run: Run) -> None:
    """Insert the loop's record holding the in-flight slot; LoopRefusedError if another loop holds it."""
    try:
        with engine.begin() as connection:
            connection.execute(
                insert(retrain_runs).values(
                    evaluation_id=run.evaluation_id,
                    started_at=run.started_at,
                    in_flight=IN_FLIGHT,
                    status=RUNNING,
                    trigger=run.trigger[:200],
                    actor=run.actor[:200],
                    champion=run.champion,
                    label_watermark=run.label_watermark,
                    record=run.record,
                )
            )
    except IntegrityError:
        raise LoopRefusedError(
            "a retraining loop is in flight (it started a moment ago): wait for it to end"
        ) from None


def update_run(engine: Engine, evaluation_id: str, **values: Any) -> None:
    """Write part of the record (record, status, challenger) while the loop goes on."""
    with engine.begin() as connection:
        connection.execute(
            update(retrain_runs).where(retrain_runs.c.evaluation_id == evaluation_id).values(**values)
        )


def finish(engine: Engine, evaluation_id: str, status: str, record: dict[str, Any]) -> None:
    update_run(
        engine, evaluation_id, status=status, record=record, finished_at=datetime.now(UTC), in_flight=None
    )
