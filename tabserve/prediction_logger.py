"""Write predictions to the log off the request path, without losing any.

- `log()` only enqueues (bounded); a background thread writes batches.
- If the queue is full, or the database is unreachable, rows go to a spool directory on local
  disk (JSON lines) and are replayed, idempotently by request id, once the database answers.
- `close()` drains the queue: whatever was answered before a graceful shutdown is written or
  spooled.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import threading
import time
import uuid
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from tabserve.prediction_store import create_schema, insert_predictions, make_engine, prepare_local_database
from tabserve.settings import MonitoringSettings

logger = logging.getLogger(__name__)

SPOOL_SUFFIX = ".jsonl"
REPLAYING_SUFFIX = ".replaying"
MAX_BACKOFF_S = 10.0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive all the same
        return True
    return True


def _encode(row: dict[str, Any]) -> str:
    return json.dumps({**row, "ts": row["ts"].isoformat()})


def _decode(line: str) -> dict[str, Any]:
    row = json.loads(line)
    row["ts"] = datetime.fromisoformat(row["ts"])
    return dict(row)


class PredictionLogger:
    def __init__(
        self,
        database_url: str,
        spool_dir: Path,
        *,
        max_queued_batches: int = 10_000,
        batch_rows: int = 1_000,
        flush_interval_s: float = 0.2,
        min_backoff_s: float = 0.5,
    ) -> None:
        self.engine = make_engine(database_url)
        self.spool_dir = spool_dir
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        self.batch_rows = batch_rows
        self.flush_interval_s = flush_interval_s
        self.min_backoff_s = min_backoff_s
        self._queue: queue.Queue[list[dict[str, Any]]] = queue.Queue(maxsize=max_queued_batches)
        # Batches queued and batches finished, so `flush` can wait for what was queued before
        # it was called even while new rows keep arriving.
        self._count_lock = threading.Lock()
        self._queued = self._finished = 0
        self._spool_lock = threading.Lock()
        self._stop = threading.Event()
        self._schema_ready = False
        self._backoff_s = 0.0
        self._retry_at = 0.0
        self._recover_claims()
        self._thread = threading.Thread(target=self._run, name="prediction-logger", daemon=True)
        self._thread.start()

    def _recover_claims(self) -> None:
        """Files claimed by a process that died mid-replay go back to the spool."""
        for claimed in self.spool_dir.glob(f"*{REPLAYING_SUFFIX}.*"):
            pid = int(claimed.suffix.lstrip("."))
            if pid != os.getpid() and not _alive(pid):
                claimed.rename(claimed.with_name(claimed.name.split(REPLAYING_SUFFIX)[0] + SPOOL_SUFFIX))

    # -- producer side (request path) ------------------------------------------------------
    def log(self, rows: list[dict[str, Any]]) -> None:
        with self._count_lock:
            try:
                self._queue.put_nowait(rows)
            except queue.Full:  # bounded memory: overflow goes to disk, never dropped
                pass
            else:
                self._queued += 1
                return
        self._spool(rows)

    def _done(self, batches: int) -> None:
        for _ in range(batches):
            self._queue.task_done()
        with self._count_lock:
            self._finished += batches

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until everything queued so far is written (or spooled); True if it was."""
        target = self._queued
        deadline = time.monotonic() + timeout_s
        while self._finished < target and time.monotonic() < deadline:
            time.sleep(0.005)
        return self._finished >= target

    def close(self, timeout_s: float = 30.0) -> None:
        self.flush(timeout_s)
        self._stop.set()
        self._thread.join(timeout_s)
        leftovers = self._drain_queue()
        if leftovers:
            self._spool(leftovers)
        self.engine.dispose()

    def spooled_files(self) -> list[Path]:
        return sorted(self.spool_dir.glob(f"*{SPOOL_SUFFIX}"))

    # -- consumer side (background thread) -------------------------------------------------
    def _drain_queue(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        while True:
            try:
                rows.extend(self._queue.get_nowait())
            except queue.Empty:
                return rows
            self._done(1)

    def _take_batch(self) -> tuple[list[dict[str, Any]], int]:
        """Wait for rows, then keep collecting for up to `flush_interval_s` or `batch_rows` rows.

        Writing as soon as anything arrives would mean a small transaction per adaptive batch
        under load (measured: 6-8% of the server's throughput instead of ~2%).
        """
        try:
            rows = list(self._queue.get(timeout=self.flush_interval_s))
        except queue.Empty:
            return [], 0
        taken = 1
        deadline = time.monotonic() + self.flush_interval_s
        while len(rows) < self.batch_rows and not self._stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                rows.extend(self._queue.get(timeout=remaining))
            except queue.Empty:
                break
            taken += 1
        return rows, taken

    def _run(self) -> None:
        while not self._stop.is_set():
            rows, taken = self._take_batch()
            try:
                if rows:
                    self._write_or_spool(rows)
                if self._database_usable():
                    self._replay_spool()
            except Exception:  # the writer must outlive any single bad batch
                logger.exception("prediction logger iteration failed")
            finally:
                self._done(taken)

    def _database_usable(self) -> bool:
        return time.monotonic() >= self._retry_at

    def _write(self, rows: Sequence[dict[str, Any]]) -> None:
        if not self._schema_ready:
            create_schema(self.engine)
            self._schema_ready = True
        insert_predictions(self.engine, rows)

    def _mark(self, ok: bool, error: Exception | None = None) -> None:
        if ok:
            self._backoff_s, self._retry_at = 0.0, 0.0
            return
        self._backoff_s = min(MAX_BACKOFF_S, max(self.min_backoff_s, self._backoff_s * 2))
        self._retry_at = time.monotonic() + self._backoff_s
        logger.warning(
            "prediction log database unreachable (%s); spooling, retry in %.1fs", error, self._backoff_s
        )

    def _write_or_spool(self, rows: list[dict[str, Any]]) -> None:
        if not self._database_usable():
            self._spool(rows)
            return
        try:
            self._write(rows)
            self._mark(ok=True)
        except SQLAlchemyError as error:
            self._mark(ok=False, error=error)
            self._spool(rows)

    def _spool(self, rows: list[dict[str, Any]]) -> None:
        name = f"{time.time_ns()}-{os.getpid()}-{uuid.uuid4().hex[:8]}{SPOOL_SUFFIX}"
        temporary = self.spool_dir / f".{name}.tmp"
        with self._spool_lock:
            temporary.write_text("".join(_encode(row) + "\n" for row in rows))
            temporary.rename(self.spool_dir / name)  # atomic: a replayer never sees half a file

    def _replay_spool(self) -> None:
        for path in self.spooled_files():
            claimed = path.with_suffix(f"{REPLAYING_SUFFIX}.{os.getpid()}")
            try:
                path.rename(claimed)  # several workers may share the directory: one claims a file
            except FileNotFoundError:
                continue
            rows = [_decode(line) for line in claimed.read_text().splitlines() if line]
            try:
                self._write(rows)
            except SQLAlchemyError as error:
                claimed.rename(path)
                self._mark(ok=False, error=error)
                return
            with contextlib.suppress(FileNotFoundError):
                claimed.unlink()
            logger.info("replayed %d spooled predictions from %s", len(rows), path.name)


def open_prediction_logger(settings: MonitoringSettings) -> PredictionLogger | None:
    """The configured logger, or None when `monitoring.log_predictions` is off."""
    if not settings.log_predictions:
        return None
    prepare_local_database(settings)
    return PredictionLogger(
        settings.url,
        Path(settings.spool_dir),
        max_queued_batches=settings.max_queued_batches,
        batch_rows=settings.write_batch_rows,
        flush_interval_s=settings.flush_interval_ms / 1000,
    )
