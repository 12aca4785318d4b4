"""Keep the last `monitoring.keep_reports` drift reports, none older than `keep_report_days`.

An HTML report is about 3.7-4.7 MB (Evidently embeds its whole JavaScript bundle in each page):
at one run every 15 minutes that was 0.4 GB a day, never pruned (issue 15). Each run prunes
after writing its own files. A report is the pair `<stamp>_<model>[_<variant>].html|.json`
written by the job; other files in the folder (A/B reports, the workspace) are never touched.
Nothing of record is lost: every run's summary is also a row of `monitoring_runs`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

STAMP_FORMAT = "%Y%m%dT%H%M%S%fZ"
REPORT_NAME = re.compile(r"^(?P<stamp>\d{8}T\d{12}Z)_.+\.(?:html|json)$")


def report_stamp(now: datetime) -> str:
    return now.astimezone(UTC).strftime(STAMP_FORMAT)


def reports_to_prune(names: list[str], now: datetime, keep: int, days: float) -> list[str]:
    """Pure: the report files to delete: beyond the `keep` newest runs, or older than `days`."""
    stamps: dict[str, list[str]] = {}
    for name in names:
        match = REPORT_NAME.match(name)
        if match:
            stamps.setdefault(match["stamp"], []).append(name)
    oldest_kept = now - timedelta(days=days)
    ordered = sorted(stamps, reverse=True)  # the stamp sorts as the time does
    doomed = [
        stamp
        for index, stamp in enumerate(ordered)
        if index >= keep or datetime.strptime(stamp, STAMP_FORMAT).replace(tzinfo=UTC) < oldest_kept
    ]
    return sorted(name for stamp in doomed for name in stamps[stamp])


def prune_reports(folder: Path, now: datetime, keep: int, days: float) -> list[str]:
    """Delete the reports `reports_to_prune` names; returns their names."""
    doomed = reports_to_prune([path.name for path in folder.iterdir() if path.is_file()], now, keep, days)
    for name in doomed:
        (folder / name).unlink(missing_ok=True)
    return doomed
