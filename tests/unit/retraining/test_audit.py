"""The loop's audit records: one loop at a time, the cooldown, a dead loop's slot freed."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tabserve.predictions.migration import upgrade
from tabserve.predictions.store import make_engine
from tabserve.retraining import audit

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
COOLDOWN, STALE = timedelta(minutes=60), timedelta(minutes=180)


def run_at(started: datetime, finished: datetime | None = None, evaluation_id: str = "ev-1") -> audit.Run:
    return audit.Run(
        evaluation_id=evaluation_id,
        started_at=started,
        finished_at=finished,
        status=audit.RUNNING if finished is None else audit.REJECTED,
        trigger="manual",
        actor="tester",
        champion="m:1",
        challenger=None,
        label_watermark=started,
        record={"trigger": "manual"},
    )


@pytest.fixture
def database(tmp_path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'log.db'}")
    upgrade(engine)
    return engine


def test_the_first_loop_may_start() -> None:
    assert audit.refusal(None, NOW, COOLDOWN, STALE) is None


def test_a_loop_in_flight_refuses_a_second_one() -> None:
    reason = audit.refusal(run_at(NOW - timedelta(minutes=5)), NOW, timedelta(0), STALE)
    assert reason is not None and "in flight: ev-1" in reason and "tester" in reason


def test_the_cooldown_counts_from_the_last_start() -> None:
    last = run_at(NOW - timedelta(minutes=50), NOW - timedelta(minutes=45))
    reason = audit.refusal(last, NOW, COOLDOWN, STALE)
    assert reason is not None and "cooldown" in reason and "12:10:00" in reason
    assert audit.refusal(last, NOW + timedelta(minutes=10), COOLDOWN, STALE) is None


def test_a_stale_loop_no_longer_blocks() -> None:
    assert audit.refusal(run_at(NOW - timedelta(hours=4)), NOW, COOLDOWN, STALE) is None


def test_only_one_loop_holds_the_slot(database: Engine) -> None:
    first = run_at(NOW)
    audit.claim(database, first)
    with pytest.raises(audit.LoopRefusedError, match="in flight"):
        audit.claim(database, replace(first, evaluation_id="ev-2"))
    audit.finish(database, "ev-1", audit.REJECTED, {"decision": "rejected"})
    audit.claim(database, replace(first, evaluation_id="ev-3"))  # free again
    newest = audit.recent_runs(database)
    assert [run.evaluation_id for run in newest] == ["ev-3", "ev-1"]
    assert newest[1].status == audit.REJECTED and newest[1].record == {"decision": "rejected"}
    assert newest[0].in_flight and not newest[1].in_flight


def test_an_abandoned_loop_frees_its_slot_and_says_so(database: Engine) -> None:
    dead = run_at(NOW - timedelta(hours=5))
    audit.claim(database, dead)
    audit.abandon(database, dead, NOW)
    found = audit.find_run(database, "ev-1")
    assert found is not None and found.status == audit.FAILED and "abandoned" in found.record["error"]
    audit.claim(database, replace(dead, evaluation_id="ev-2", started_at=NOW))


def test_evaluation_ids_are_unique_and_dated() -> None:
    ids = {audit.new_evaluation_id(NOW) for _ in range(100)}
    assert len(ids) == 100 and all(found.startswith("ev-20261204-120000-") for found in ids)
