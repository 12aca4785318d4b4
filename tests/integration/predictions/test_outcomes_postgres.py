"""Outcomes on a real PostgreSQL: the migration, first value wins under concurrent senders, the sums."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select

from tabserve.predictions.bulk_insert import insert_rows
from tabserve.predictions.migration import upgrade as upgrade_schema
from tabserve.predictions.outcomes import OutcomeEvent, outcome_sums
from tabserve.predictions.store import make_engine
from tabserve.predictions.tables import outcomes
from tabserve.serving.outcomes import record_outcomes
from tests.factories import prediction_rows
from tests.migrations import migrate_to
from tests.postgres import temporary_database

KINDS = {"click": "rate", "revenue": "value"}


@pytest.fixture
def engine() -> Iterator[Engine]:
    with temporary_database() as url:
        engine = make_engine(url)
        migrate_to(engine, "0002")  # an existing database: the outcomes migration runs on it
        upgrade_schema(engine)
        insert_rows(engine, prediction_rows("p", 0, 50))
        yield engine
        engine.dispose()


def test_concurrent_senders_of_the_same_outcomes_store_each_once(engine: Engine) -> None:
    events = [OutcomeEvent(f"p{i}", "click", 1) for i in range(0, 50, 5)] + [
        OutcomeEvent(f"p{i}", "revenue", 2.5) for i in range(0, 50, 5)
    ]
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: record_outcomes(engine, events, KINDS), range(8)))
    # Senders racing on one event both find it new; the answers still add up to 20 stored.
    assert sum(int(answer["stored"]) for answer in answers) == 20
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(outcomes)).scalar_one() == 20
    sums = outcome_sums(engine, "default", list(KINDS), datetime.now(UTC) - timedelta(hours=1))
    assert (sums["click"].requests, sums["click"].events, sums["click"].total) == (50, 10, 10.0)
    assert (sums["revenue"].total, sums["revenue"].total_sq) == (25.0, 62.5)


def test_a_different_value_later_is_ignored(engine: Engine) -> None:
    record_outcomes(engine, [OutcomeEvent("p1", "revenue", 7.0)], KINDS)
    answer = record_outcomes(engine, [OutcomeEvent("p1", "revenue", 70.0)], KINDS)
    assert answer == {
        "stored": 0,
        "unchanged": 1,
        "ignored": [{"request_id": "p1", "name": "revenue", "sent": 70.0, "kept": 7.0}],
    }
