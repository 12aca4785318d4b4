"""The prediction logger against a real SQLite file, including a database that is not there."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy

from tabserve.errors import ConfigurationError
from tabserve.predictions.logger import PredictionLogger, open_prediction_logger
from tabserve.predictions.store import prepare_local_database
from tabserve.settings import MonitoringSettings
from tests.factories import prediction_rows
from tests.servers import REPO


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


KILLED_WRITER = """
import os, signal, sys
from pathlib import Path
from tabserve.errors import ConfigurationError
from tabserve.predictions.logger import PredictionLogger, open_prediction_logger
from tabserve.predictions.store import prepare_local_database
from tabserve.settings import MonitoringSettings
from tests.factories import prediction_rows
logger = PredictionLogger(sys.argv[1], Path(sys.argv[2]), flush_interval_s=30)
for start in range(0, 200, 20):
    logger.log(prediction_rows("k", start, 20))  # answered: log() has returned
os.kill(os.getpid(), signal.SIGKILL)  # before the writer thread wrote anything
"""


def test_answered_rows_survive_kill_9_of_the_process(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_WRITER, url, str(tmp_path / "spool")], cwd=REPO, capture_output=True
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()
    successor = PredictionLogger(url, tmp_path / "spool", flush_interval_s=0.05)
    successor.log(prediction_rows("after", 0, 1))
    assert successor.flush()
    successor.close()
    assert count(tmp_path / "p.db") == 201
    assert not list((tmp_path / "spool").rglob("*.journal")), "adopted journals are removed once written"


def test_a_row_the_database_rejects_is_quarantined_and_never_blocks_later_rows(tmp_path: Path) -> None:
    logger = PredictionLogger(f"sqlite:///{tmp_path / 'p.db'}", tmp_path / "spool", min_backoff_s=0.01)
    rows = prediction_rows("q", 0, 50)
    rows[17]["model"] = None  # NOT NULL: a data error, not an unreachable database
    logger.log(rows)
    logger.log(prediction_rows("q", 50, 50))
    assert logger.flush()
    logger.close()
    assert count(tmp_path / "p.db") == 99
    assert logger.spooled_files() == []
    lines = [line for path in logger.quarantine_files() for line in path.read_text().splitlines()]
    quarantined = [json.loads(line) for line in lines]
    assert [entry["row"]["request_id"] for entry in quarantined] == ["q17"]
    assert "NOT NULL" in quarantined[0]["reason"]


def test_a_spool_is_replayed_only_into_the_database_it_was_written_for(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    unreachable = tmp_path / "missing-dir" / "a.db"
    first = PredictionLogger(f"sqlite:///{unreachable}", spool, min_backoff_s=0.01)
    first.log(prediction_rows("a", 0, 10))
    first.close()
    assert first.spooled_files()

    other = PredictionLogger(f"sqlite:///{tmp_path / 'b.db'}", spool, flush_interval_s=0.05)
    other.log(prediction_rows("b", 0, 1))
    assert other.flush()
    other.close()
    assert count(tmp_path / "b.db") == 1, "another database's spool must not be replayed here"

    unreachable.parent.mkdir()
    again = PredictionLogger(f"sqlite:///{unreachable}", spool, flush_interval_s=0.05)
    again.log(prediction_rows("a", 10, 1))
    assert again.flush()
    again.close()
    assert count(unreachable) == 11 and again.spooled_files() == []


def test_a_reused_request_id_with_a_different_prediction_is_its_own_row(tmp_path: Path) -> None:
    logger = PredictionLogger(f"sqlite:///{tmp_path / 'p.db'}", tmp_path / "spool")
    first, second = prediction_rows("same", 0, 1), prediction_rows("same", 0, 1)
    second[0]["features"] = {"x": 42.0}
    second[0]["request_id"] = first[0]["request_id"]
    logger.log(first)
    logger.log(second)
    logger.log(prediction_rows("same", 0, 1))  # the identical prediction again (a redelivery): once
    assert logger.flush()
    logger.close()
    assert count(tmp_path / "p.db") == 2


def test_a_poison_row_in_a_spool_file_never_blocks_the_files_after_it(tmp_path: Path) -> None:
    database = tmp_path / "missing-dir" / "p.db"
    logger = PredictionLogger(f"sqlite:///{database}", tmp_path / "spool", min_backoff_s=0.01)
    poisoned = prediction_rows("s", 0, 50)
    poisoned[3]["model"] = None
    logger.log(poisoned)
    assert logger.flush()
    logger.log(prediction_rows("s", 50, 50))
    assert logger.flush() and len(logger.spooled_files()) == 2
    database.parent.mkdir()
    time.sleep(0.05)  # past the back-off
    logger.log(prediction_rows("s", 100, 1))
    assert logger.flush()
    deadline = time.monotonic() + 10
    while logger.spooled_files() and time.monotonic() < deadline:
        time.sleep(0.05)
    logger.close()
    assert logger.spooled_files() == [] and count(database) == 100
    assert len(logger.quarantine_files()) == 1


def test_the_journal_forgets_rows_once_they_are_in_the_database(tmp_path: Path) -> None:
    logger = PredictionLogger(
        f"sqlite:///{tmp_path / 'p.db'}",
        tmp_path / "spool",
        flush_interval_s=0.01,
        journal_segment_bytes=2_000,
    )
    for start in range(0, 300, 10):
        logger.log(prediction_rows("j", start, 10))  # ~1.3 KB a batch: segments rotate
    assert logger.flush()
    segments = list((tmp_path / "spool" / "journal").glob("*.journal"))
    assert len(segments) == 1 and segments[0].stat().st_size == 0, segments
    logger.close()
    assert count(tmp_path / "p.db") == 300
    assert not list((tmp_path / "spool" / "journal").glob("*.journal")), "a graceful close leaves no journal"


def test_the_journal_settings_reach_the_logger(tmp_path: Path) -> None:
    base = MonitoringSettings(sqlite_path=str(tmp_path / "p.db"), spool_dir=str(tmp_path / "spool"))
    synced = open_prediction_logger(base.model_copy(update={"journal_fsync": True}))
    assert synced is not None and synced.journal is not None and synced.journal.fsync
    synced.log(prediction_rows("fs", 0, 10))  # fsync on every append: slower, same rows
    synced.close()
    assert count(tmp_path / "p.db") == 10
    unjournaled = open_prediction_logger(base.model_copy(update={"journal": False}))
    assert unjournaled is not None and unjournaled.journal is None
    unjournaled.close()


def test_a_log_folder_that_cannot_be_made_names_the_setting(tmp_path: Path) -> None:
    """A configuration in a folder the service cannot write (/etc in a container) puts relative
    paths there: one line naming the setting, not a traceback."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    settings = MonitoringSettings(sqlite_path=str(blocker / "var" / "predictions.db"))
    with pytest.raises(ConfigurationError, match=r"monitoring.sqlite_path: cannot create .*a-file/var"):
        prepare_local_database(settings)
