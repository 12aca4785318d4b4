"""The prediction log against a real PostgreSQL that goes down and comes back."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tabserve.predictions.logger import PredictionLogger
from tests.factories import prediction_rows
from tests.postgres import ThrowawayCluster, count_rows
from tests.servers import free_port


@pytest.fixture
def cluster() -> Iterator[ThrowawayCluster]:
    cluster = ThrowawayCluster(free_port())
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.remove()


def test_rows_survive_a_database_outage(cluster: ThrowawayCluster, tmp_path: Path) -> None:
    logger = PredictionLogger(cluster.url, tmp_path / "spool", flush_interval_s=0.05)
    logger.log(prediction_rows("pg", 0, 100))
    assert logger.flush() and count_rows(cluster.url) == 100

    cluster.stop()
    for start in range(100, 300, 20):
        logger.log(
            prediction_rows("pg", start, 20)
        )  # predictions keep being answered while the database is down
    assert logger.flush(timeout_s=60)
    assert logger.spooled_files(), "rows written while the database was down must be on disk"

    cluster.start()
    deadline = time.monotonic() + 60
    while logger.spooled_files() and time.monotonic() < deadline:
        logger.log(
            prediction_rows("pg", 300, 1)
        )  # traffic after the outage triggers the replay once back-off ends
        time.sleep(0.5)
    logger.close()
    assert logger.spooled_files() == []
    assert count_rows(cluster.url) == 301
