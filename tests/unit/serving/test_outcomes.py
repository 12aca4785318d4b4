"""Business outcomes against a real SQLite log: validation, first value wins, sums per variant."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tabserve.predictions.bulk_insert import insert_rows
from tabserve.predictions.migration import upgrade as upgrade_schema
from tabserve.predictions.outcomes import OutcomeEvent, OutcomeSums, outcome_sums
from tabserve.predictions.store import make_engine
from tabserve.serving.feedback import FeedbackError
from tabserve.serving.outcomes import record_outcomes
from tests.factories import prediction_rows

KINDS = {"click": "rate", "revenue": "value"}
HOUR_AGO = datetime.now(UTC) - timedelta(hours=1)


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'p.db'}")
    upgrade_schema(engine)
    insert_rows(engine, prediction_rows("f", 0, 4))  # variant "default"
    b_rows = prediction_rows("g", 0, 2)
    shadow = prediction_rows("f", 0, 1)
    for row in b_rows:
        row["variant"] = "b"
    shadow[0].update(request_id="f0:shadow", variant="b")  # a shadow copy: not what the user saw
    insert_rows(engine, b_rows + shadow)
    return engine


def record(engine: Engine, *events: OutcomeEvent) -> dict[str, object]:
    return record_outcomes(engine, list(events), KINDS)


def test_sending_an_outcome_again_does_not_count_it_twice(engine: Engine) -> None:
    assert record(engine, OutcomeEvent("f0", "click", 1)) == {"stored": 1, "unchanged": 0, "ignored": []}
    assert record(engine, OutcomeEvent("f0", "click", 1)) == {"stored": 0, "unchanged": 1, "ignored": []}
    assert outcome_sums(engine, "default", ["click"], HOUR_AGO)["click"].events == 1


def test_the_first_value_wins_and_a_different_one_is_reported(engine: Engine) -> None:
    record(engine, OutcomeEvent("f1", "revenue", 10.0))
    answer = record(engine, OutcomeEvent("f1", "revenue", 99.0), OutcomeEvent("f2", "revenue", 5.0))
    assert answer == {
        "stored": 1,
        "unchanged": 1,
        "ignored": [{"request_id": "f1", "name": "revenue", "sent": 99.0, "kept": 10.0}],
    }
    within = record(engine, OutcomeEvent("f3", "click", 0), OutcomeEvent("f3", "click", 1))
    assert within["stored"] == 1 and within["ignored"] == [
        {"request_id": "f3", "name": "click", "sent": 1.0, "kept": 0.0}
    ]
    sums = outcome_sums(engine, "default", ["revenue", "click"], HOUR_AGO)
    assert sums["revenue"].total == 15.0 and sums["click"].total == 0.0


@pytest.mark.parametrize(
    ("event", "status", "names"),
    [
        (OutcomeEvent("f0", "klick", 1), 400, ["items[1].name", "'klick'", "click, revenue"]),
        (OutcomeEvent("f0", "click", 2), 400, ["items[1].value", "rate", "got 2"]),
        (OutcomeEvent("f0", "revenue", float("nan")), 400, ["items[1].value", "finite number"]),
        (OutcomeEvent("f0", "revenue", True), 400, ["items[1].value", "finite number"]),  # type: ignore[arg-type]
        (OutcomeEvent("nope", "click", 1), 404, ["no logged prediction with request_id nope"]),
    ],
)
def test_bad_input_names_the_field_and_stores_nothing(
    engine: Engine, event: OutcomeEvent, status: int, names: list[str]
) -> None:
    with pytest.raises(FeedbackError) as refused:
        record(engine, OutcomeEvent("f1", "click", 1), event)
    assert refused.value.status == status
    assert all(name in str(refused.value) for name in names), str(refused.value)
    assert outcome_sums(engine, "default", ["click"], HOUR_AGO)["click"].events == 0  # all or nothing


def test_a_rate_accepts_true_and_false(engine: Engine) -> None:
    record(engine, OutcomeEvent("f0", "click", True), OutcomeEvent("f1", "click", False))  # type: ignore[arg-type]
    sums = outcome_sums(engine, "default", ["click"], HOUR_AGO)["click"]
    assert sums == OutcomeSums(requests=4, events=2, total=1.0, total_sq=1.0)


def test_sums_count_only_the_requests_a_variant_answered(engine: Engine) -> None:
    record(
        engine,
        OutcomeEvent("f0", "click", 1),
        OutcomeEvent("g1", "click", 1),
        OutcomeEvent("g1", "revenue", 3),
    )
    a = outcome_sums(engine, "default", ["click", "revenue"], HOUR_AGO)
    b = outcome_sums(engine, "b", ["click", "revenue"], HOUR_AGO)
    assert (a["click"].requests, a["click"].total, a["revenue"].total) == (4, 1.0, 0.0)
    assert (b["click"].requests, b["click"].total, b["revenue"].total_sq) == (2, 1.0, 9.0)  # not f0's shadow
    later = outcome_sums(engine, "default", ["click"], datetime.now(UTC) + timedelta(hours=1))
    assert later["click"].requests == 0


def test_a_database_that_is_down_is_a_503() -> None:
    down = make_engine("postgresql+psycopg://tabserve@127.0.0.1:1/none")
    with pytest.raises(FeedbackError) as refused:
        record_outcomes(down, [OutcomeEvent("f0", "click", 1)], KINDS)
    assert refused.value.status == 503 and "retry" in str(refused.value)
