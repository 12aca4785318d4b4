"""Ground truth against a real SQLite log: labels, explicit corrections and their audit trail."""

from pathlib import Path

import pytest
import sqlalchemy
from sqlalchemy import Engine

from tabserve.predictions.bulk_insert import insert_rows
from tabserve.predictions.migration import upgrade as upgrade_schema
from tabserve.predictions.store import make_engine
from tabserve.serving.feedback import FeedbackError, LabelUpdate, authorize, record_feedback
from tests.factories import prediction_rows

CLASSES = ("a", "b")


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'p.db'}")
    upgrade_schema(engine)
    insert_rows(engine, prediction_rows("f", 0, 3))
    return engine


def store(engine: Engine, *updates: LabelUpdate) -> int:
    return record_feedback(engine, list(updates), lambda _tag: CLASSES)


def audit(engine: Engine) -> list[tuple[str, str | None, str, str | None]]:
    with engine.connect() as connection:
        rows = connection.execute(
            sqlalchemy.text("select request_id, old_label, new_label, actor from label_changes order by id")
        )
        return [
            (r.request_id, r.old_label and r.old_label.strip('"'), r.new_label.strip('"'), r.actor)
            for r in rows
        ]


def test_the_same_label_again_changes_nothing(engine: Engine) -> None:
    assert store(engine, LabelUpdate("f0", "a")) == 1
    assert store(engine, LabelUpdate("f0", "a")) == 1
    assert audit(engine) == [("f0", None, "a", None)]


def test_changing_a_label_needs_an_explicit_correction_and_is_audited(engine: Engine) -> None:
    store(engine, LabelUpdate("f1", "a"))
    with pytest.raises(FeedbackError) as refused:
        store(engine, LabelUpdate("f1", "b"))
    assert refused.value.status == 409
    assert "f1" in str(refused.value) and "'a'" in str(refused.value) and "correct" in str(refused.value)
    store(engine, LabelUpdate("f1", "b", correct=True, actor="alice", reason="relabelled by review"))
    assert audit(engine) == [("f1", None, "a", None), ("f1", "a", "b", "alice")]


def test_every_row_of_a_reused_request_id_gets_the_label(engine: Engine) -> None:
    again = prediction_rows("f", 0, 1)
    again[0]["features"] = {"x": 9.0}  # a second, different prediction under the same request id
    insert_rows(engine, again)
    store(engine, LabelUpdate("f0", "b"))
    with engine.connect() as connection:
        labels = connection.execute(sqlalchemy.text("select label from predictions where request_id='f0'"))
        assert [row.label for row in labels] == ['"b"', '"b"']


def test_the_token_is_required_when_set() -> None:
    authorize(None, None)
    authorize("s3cret", "Bearer s3cret")
    for header, status in ((None, 401), ("", 401), ("Bearer nope", 403), ("Basic s3cret", 403)):
        with pytest.raises(FeedbackError) as refused:
            authorize("s3cret", header)
        assert refused.value.status == status
