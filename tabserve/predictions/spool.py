"""The prediction log's files on local disk: JSON-lines encoding, and the quarantine.

Spool files, adopted journals and the quarantine share one format: one JSON object per line
(orjson: datetimes, dates and numpy values included; anything else as text).

The quarantine (`<spool>/quarantine/<database key>.jsonl`) holds rows the database refused
for a reason retrying cannot fix (a data error), each as {"row", "reason", "quarantined_at"}:
kept for a person to read and re-insert, never in the way of the rows after them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, SQLAlchemyError, StatementError

logger = logging.getLogger(__name__)

SPOOL_SUFFIX = ".jsonl"
QUARANTINE_DIR = "quarantine"
MAX_REASON_CHARS = 500
ENCODE_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE


def encode_rows(rows: Sequence[dict[str, Any]]) -> bytes:
    """JSON lines (orjson: datetimes, dates and numpy values included; anything else as text)."""
    return b"".join(orjson.dumps(row, default=str, option=ENCODE_OPTIONS) for row in rows)


def decode_lines(data: bytes) -> tuple[list[dict[str, Any]], list[str]]:
    """(rows, unreadable lines). A journal cut by `kill -9` mid-write may end in half a line."""
    rows, unreadable = [], []
    for line in data.splitlines():
        if not line.strip():
            continue
        try:
            row = orjson.loads(line)
            row["ts"] = datetime.fromisoformat(row["ts"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            unreadable.append(line.decode(errors="replace"))
            continue
        rows.append(row)
    return rows, unreadable


def is_row_error(error: SQLAlchemyError) -> bool:
    """The database refused these rows (retrying cannot help), as opposed to being unreachable."""
    if isinstance(error, DBAPIError):
        return isinstance(error, IntegrityError | DataError) and not error.connection_invalidated
    return isinstance(error, StatementError)  # a value that could not be bound (no DBAPI call made)


def reason_of(error: SQLAlchemyError) -> str:
    original = getattr(error, "orig", None) or error
    return str(original).strip().splitlines()[0][:MAX_REASON_CHARS] if str(original).strip() else repr(error)


def quarantine(folder: Path, database_key: str, rejected: Sequence[tuple[dict[str, Any] | str, str]]) -> None:
    """Append refused rows (or unreadable lines) with the database's reason; one ERROR per call."""
    if not rejected:
        return
    folder.mkdir(exist_ok=True)
    path = folder / f"{database_key}{SPOOL_SUFFIX}"
    now = datetime.now(UTC)
    entries = [{"row": row, "reason": reason, "quarantined_at": now} for row, reason in rejected]
    with path.open("ab") as out:
        out.write(encode_rows(entries))
    logger.error(
        "the prediction log database rejected %d row(s); moved to %s (first reason: %s)",
        len(rejected),
        path,
        rejected[0][1],
    )
