"""A per-process, append-only journal of answered predictions: what makes them survive `kill -9`.

`PredictionLogger.log()` appends the rows here (one `write` to the page cache, no fsync) before
the answer goes back, then queues them for the database. A process killed before its writer
thread reached the database leaves its journal behind; the next process using the same spool
directory adopts it (renames it into the spool, where the ordinary replay writes it, skipping
rows already logged by their `log_id`).

What this covers: a killed or crashed worker process (the page cache belongs to the kernel).
What it does not: a machine crash or power loss within the kernel's writeback delay (about 30 s
on Linux) unless `monitoring.journal_fsync` is on, which fsyncs every append (slow).

Files: `<spool>/journal/<database key>-<pid>-<process start>-<segment>.journal`. The process
start time tells a live owner from a reused pid (containers restart pids from 1). A segment is
truncated once everything written to it has reached the database (or the spool), and closed
for a new one past `segment_bytes`, so the journal stays small under steady load.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path

logger = logging.getLogger(__name__)

JOURNAL_SUFFIX = ".journal"
JOURNAL_DIR = "journal"


def process_start(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), None if there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    except OSError:  # no /proc here: liveness by pid alone
        return "0" if _pid_exists(pid) else None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22; the name in parentheses may hold spaces


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def owner_alive(pid: int, started: str) -> bool:
    return process_start(pid) == started


class Journal:
    """Appends encoded row batches; knows which batches (by sequence number) each segment holds."""

    def __init__(self, spool_dir: Path, database_key: str, *, fsync: bool, segment_bytes: int) -> None:
        self.directory = spool_dir / JOURNAL_DIR
        self.directory.mkdir(parents=True, exist_ok=True)
        self.prefix = f"{database_key}-{os.getpid()}-{process_start(os.getpid()) or '0'}"
        self.fsync = fsync
        self.segment_bytes = segment_bytes
        self.keep = False  # set when a batch could not be persisted: the successor replays it all
        self._segment = 0
        self._closed: list[tuple[Path, int]] = []  # (file, last sequence number in it)
        self._open_segment()

    def _open_segment(self) -> None:
        self._segment += 1
        self.path = self.directory / f"{self.prefix}-{self._segment}{JOURNAL_SUFFIX}"
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._size = 0
        self._last_seq = 0

    def append(self, payload: bytes, seq: int) -> None:
        """Write one batch (JSON lines). The caller serialises calls and numbers batches in order."""
        if self._size >= self.segment_bytes:
            os.close(self._fd)
            self._closed.append((self.path, self._last_seq))
            self._open_segment()
        view = memoryview(payload)
        while view:  # a regular file takes it all at once; loop for the rare short write
            view = view[os.write(self._fd, view) :]
        if self.fsync:
            os.fsync(self._fd)
        self._size += len(payload)
        self._last_seq = seq

    def trim(self, persisted_seq: int) -> None:
        """Forget batches up to `persisted_seq`: they are in the database or the spool."""
        if self.keep:
            return
        while self._closed and self._closed[0][1] <= persisted_seq:
            with contextlib.suppress(FileNotFoundError):
                self._closed.pop(0)[0].unlink()
        if self._size and self._last_seq <= persisted_seq:
            os.ftruncate(self._fd, 0)  # O_APPEND: the next write goes to offset 0
            self._size = 0

    def close(self, everything_persisted: bool) -> None:
        os.close(self._fd)
        if everything_persisted and not self.keep:
            for path in [*(closed for closed, _ in self._closed), self.path]:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()


def adopt_journals(spool_dir: Path, database_key: str) -> int:
    """Move the journals of dead processes (same database) into the spool; returns how many.

    The rename is the claim: of several workers starting together, one gets each file.
    """
    adopted = 0
    for path in sorted((spool_dir / JOURNAL_DIR).glob(f"{database_key}-*{JOURNAL_SUFFIX}")):
        try:
            pid_text, started, _segment = path.name[len(database_key) + 1 : -len(JOURNAL_SUFFIX)].split("-")
            pid = int(pid_text)
        except ValueError:
            continue
        if owner_alive(pid, started):
            continue
        if path.stat().st_size == 0:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            continue
        target = spool_dir / f"{database_key}-{time.time_ns()}-adopted-{pid}-{_segment}.jsonl"
        with contextlib.suppress(FileNotFoundError):
            path.rename(target)
            adopted += 1
            logger.warning("adopted the prediction journal of dead process %d: %s", pid, target.name)
    return adopted
