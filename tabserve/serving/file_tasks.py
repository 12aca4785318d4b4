"""File scoring as a service task: progress kept on disk per task id, so any worker can answer.

Task ids are unguessable (BentoML's uuid4 for a submitted task, our own 128 random bits for a
synchronous call: `tabserve.serving.task_ids`) and validated before they touch the file system:
a shared or guessable id let anyone download another caller's input and predictions (issue 12).
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from tabserve.batch.file_scoring import ScoringReport, is_parquet, score_file
from tabserve.errors import DataError
from tabserve.serving.http_errors import bound_text
from tabserve.serving.runtime import Scorer

READ_BLOCK = 1 << 20
RESULT_TTL_S = 24 * 3600  # like BentoML's own task results
TASK_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
TASK_ID_RULE = "a task id is 1 to 64 letters, digits, '_' or '-'"
MAX_MESSAGE_CHARS = 500
UNEXPECTED_FAILURE = "the task failed on the server's side; the server log has the cause"
LINK_SUFFIX = ".link"  # our id of a submitted upload -> BentoML's id for it (tabserve.serving.task_ids)


def is_task_id(text: object) -> bool:
    return isinstance(text, str) and TASK_ID.fullmatch(text) is not None


def new_task_id() -> str:
    """128 random bits, hex: the shape of BentoML's own (uuid4().hex), and as unguessable."""
    return secrets.token_hex(16)


def public_message(error: Exception, source: Path) -> str:
    """Pure: the error's message as a client may see it: no server path, bounded length."""
    text = str(error)
    for folder in (str(source), str(source.parent), tempfile.gettempdir()):
        text = text.replace(folder, source.name if folder == str(source) else "")
    return bound_text(text, MAX_MESSAGE_CHARS)


def count_rows(path: Path) -> int:
    """Data rows in a file: Parquet from its metadata, CSV by counting lines (quoted newlines aside)."""
    if is_parquet(path):
        return int(pq.ParquetFile(path).metadata.num_rows)
    lines, last = 0, b"\n"
    with path.open("rb") as handle:
        while block := handle.read(READ_BLOCK):
            lines += block.count(b"\n")
            last = block[-1:]
    lines += last != b"\n"  # a last line without a newline
    return max(lines - 1, 0)  # minus the header


class ProgressStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, task_id: str) -> Path:
        return self.root / f"{self._checked(task_id)}.json"

    @staticmethod
    def _checked(task_id: str) -> str:
        if not is_task_id(task_id):
            raise ValueError(TASK_ID_RULE)
        return task_id

    def output_dir(self, task_id: str) -> Path:
        return self.root / self._checked(task_id)

    def link(self, ours: str, given: str) -> None:
        """Remember that the upload we called `ours` is the task BentoML called `given`."""
        temporary = self.root / f"{self._checked(ours)}{LINK_SUFFIX}.tmp"
        temporary.write_text(self._checked(given))
        temporary.replace(temporary.with_suffix(""))

    def take_link(self, ours: str) -> str:
        """The id the client was given for `ours`: the linked one (forgotten now), else `ours`."""
        path = self.root / f"{self._checked(ours)}{LINK_SUFFIX}"
        try:
            given = path.read_text()
        except FileNotFoundError:
            return ours
        path.unlink(missing_ok=True)
        return self._checked(given)

    def result_file(self, task_id: str) -> Path | None:
        if not is_task_id(task_id):
            return None
        found = sorted(self.output_dir(task_id).glob("scored.*"))
        return found[0] if found else None

    def prune(self, max_age_s: float) -> None:
        """Forget tasks (progress and output files) older than `max_age_s`."""
        cutoff = time.time() - max_age_s
        for path in self.root.glob("*.json"):
            if path.stat().st_mtime < cutoff and is_task_id(path.stem):
                shutil.rmtree(self.output_dir(path.stem), ignore_errors=True)
                path.unlink(missing_ok=True)
        for path in self.root.glob(f"*{LINK_SUFFIX}"):  # a submitted task that never started
            if path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)

    def write(
        self, task_id: str, state: str, report: ScoringReport, total_rows: int, error: str | None = None
    ) -> None:
        body: dict[str, Any] = {
            "task_id": task_id,
            "state": state,
            "total_rows": total_rows,
            **asdict(report),
        }
        body["errors"] = report.errors[:100]
        body["progress"] = 1.0 if state == "done" else round(min(report.rows / max(total_rows, 1), 1.0), 4)
        if error is not None:
            body["error"] = error
        temporary = self._path(task_id).with_suffix(".tmp")
        temporary.write_text(json.dumps(body))
        temporary.replace(self._path(task_id))

    def read(self, task_id: str) -> dict[str, Any] | None:
        if not is_task_id(task_id):
            return None
        path = self._path(task_id)
        return json.loads(path.read_text()) if path.is_file() else None


def run_file_task(
    scorer: Scorer,
    source: Path,
    markers: list[str],
    strict: bool,
    chunk_rows: int,
    progress: ProgressStore,
    task_id: str,
    sep: str | None = None,
) -> dict[str, Any]:
    """Score an uploaded file into a file of the same format in the task's folder; log every row.

    Returns the summary. (BentoML 1.4.40 cannot store a file as a task result, and would keep it
    base64-encoded in SQLite: the file stays on disk, served by `/score_file_result`.)
    A file the client got wrong raises DataError with a message fit for the client (no server
    path); the progress records the same message. Anything else is the server's fault: the
    progress says so, the exception goes on to the log.
    """
    progress.prune(RESULT_TTL_S)
    output = progress.output_dir(task_id)
    output.mkdir(parents=True, exist_ok=True)
    target = output / f"scored{'.parquet' if is_parquet(source) else '.csv'}"
    try:
        total = count_rows(source)
    except pa.ArrowException:
        total = 0  # not Parquet after all: reading it says why, below

    def on_chunk(_frame: pd.DataFrame, out: pd.DataFrame, report: ScoringReport) -> None:
        scorer.log_scored_frame(out)
        progress.write(task_id, "running", report, total)

    progress.write(task_id, "running", ScoringReport(), total)
    try:
        report = score_file(
            source,
            target,
            scorer.predictor,
            markers,
            strict=strict,
            chunk_rows=chunk_rows,
            on_chunk=on_chunk,
            sep=sep,
        )
    except DataError as error:
        message = public_message(error, source)
        progress.write(task_id, "failed", ScoringReport(), total, error=message)
        raise DataError(message) from None
    except Exception:
        progress.write(task_id, "failed", ScoringReport(), total, error=UNEXPECTED_FAILURE)
        raise
    progress.write(task_id, "done", report, total)
    found = progress.read(task_id)
    assert found is not None
    return found
