"""The deployment's background thread: periodic tasks (follow the shared state, flush the
per-variant numbers, judge a rollout, prune old numbers), each on its own schedule.

A task that fails on the database is retried at its next turn; an outage is logged as one
warning every FAILURE_LOG_EVERY_S, not one per turn.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from tabserve.deployment.policy import PolicyError
from tabserve.deployment.store import insert_stats
from tabserve.deployment.variant_stats import StatsCollector
from tabserve.predictions.migration import SchemaError

logger = logging.getLogger(__name__)
MAX_PENDING_STATS = 1_000
FAILURE_LOG_EVERY_S = 10.0
RETRIED = (SQLAlchemyError, PolicyError, SchemaError)


class StatsFlusher:
    """Writes what the collector gathered; rows a failed write could not store wait for the next."""

    def __init__(self, engine: Engine, collector: StatsCollector) -> None:
        self.engine, self.collector = engine, collector
        self._pending: list[dict[str, Any]] = []

    def flush(self) -> None:
        rows = self._pending + self.collector.drain()
        try:
            insert_stats(self.engine, rows)
        except SQLAlchemyError:
            self._pending = rows[-MAX_PENDING_STATS:]  # kept for the next flush
            raise
        self._pending = []


@dataclass(frozen=True)
class Task:
    name: str
    every_s: float
    run: Callable[[], None]


class Background:
    """Runs the tasks from a daemon thread, waking every `tick_s`; a task runs when it is due."""

    def __init__(self, tick_s: float, tasks: Sequence[Task]) -> None:
        self.tasks = list(tasks)
        self._tick_s = tick_s
        self._stop = threading.Event()
        self._last_warning = -math.inf
        self._thread = threading.Thread(target=self._run, name="deployment", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        due = {task.name: time.monotonic() for task in self.tasks}
        while not self._stop.wait(self._tick_s):
            for task in self.tasks:
                now = time.monotonic()
                if now < due[task.name]:
                    continue
                due[task.name] = now + task.every_s
                try:
                    task.run()
                except RETRIED as error:
                    self._warn(task.name, error)

    def _warn(self, name: str, error: Exception) -> None:
        if time.monotonic() - self._last_warning >= FAILURE_LOG_EVERY_S:  # an outage is not a log flood
            self._last_warning = time.monotonic()
            logger.warning("deployment %s failed (retrying): %s", name, error)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
