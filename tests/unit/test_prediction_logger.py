"""The prediction logger against a real SQLite file, including a database that is not there."""

import time
from pathlib import Path

import sqlalchemy

from tabserve.prediction_logger import PredictionLogger
from tests.factories import prediction_rows


def count(path: Path) -> int:
    engine = sqlalchemy.create_engine(f"sqlite:///{path}")
    with engine.connect() as connection:
        return int(connection.execute(sqlalchemy.text("select count(*) from predictions")).scalar_one())


def test_rows_are_written_in_the_background(tmp_path: Path) -> None:
    logger = PredictionLogger(f"sqlite:///{tmp_path / 'p.db'}", tmp_path / "spool")
    for start in range(0, 500, 50):
        logger.log(prediction_rows("r", start, 50))
    assert logger.flush()
    logger.close()
    assert count(tmp_path / "p.db") == 500


def test_unreachable_database_spools_then_replays_without_duplicates(tmp_path: Path) -> None:
    database = tmp_path / "missing-dir" / "p.db"  # SQLite cannot open a file in a missing directory
    logger = PredictionLogger(f"sqlite:///{database}", tmp_path / "spool", min_backoff_s=0.01)
    logger.log(prediction_rows("r", 0, 30))
    logger.log(prediction_rows("r", 0, 30))  # the same rows again: replay must not duplicate them
    assert logger.flush() and logger.spooled_files()
    database.parent.mkdir()
    time.sleep(0.05)  # past the back-off
    logger.log(prediction_rows("r", 30, 5))
    assert logger.flush()
    logger.close()
    assert count(database) == 35 and logger.spooled_files() == []


def test_close_spools_what_it_cannot_write(tmp_path: Path) -> None:
    logger = PredictionLogger(
        f"sqlite:///{tmp_path / 'no' / 'p.db'}", tmp_path / "spool", max_queued_batches=1
    )
    for start in range(0, 100, 10):
        logger.log(prediction_rows("r", start, 10))  # the queue holds one batch: the rest overflows to disk
    logger.close()
    spooled = sum(len(path.read_text().splitlines()) for path in logger.spooled_files())
    assert spooled == 100
