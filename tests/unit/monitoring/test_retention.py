"""Report retention as a pure function of file names, then on a folder."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

from tabserve.monitoring.retention import prune_reports, report_stamp, reports_to_prune

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def run_files(hours_ago: float, model: str = "m_v1") -> list[str]:
    stamp = report_stamp(NOW - timedelta(hours=hours_ago))
    return [f"{stamp}_{model}.html", f"{stamp}_{model}.json"]


def test_the_newest_n_runs_are_kept_both_files_of_each() -> None:
    names = run_files(1) + run_files(2) + run_files(3, "m_v2_blue")
    assert reports_to_prune(names, NOW, keep=2, days=30) == sorted(run_files(3, "m_v2_blue"))
    assert reports_to_prune(names, NOW, keep=5, days=30) == []


def test_runs_older_than_the_days_go_whatever_their_number() -> None:
    names = run_files(1) + run_files(24 * 8)
    assert reports_to_prune(names, NOW, keep=100, days=7) == sorted(run_files(24 * 8))


def test_other_files_are_never_touched(tmp_path: Path) -> None:
    others = ["ab-20261101T000000Z.html", "ab-20261101T000000Z.json", "notes.txt", "20261101_x.html"]
    for name in [*others, *run_files(1), *run_files(2)]:
        (tmp_path / name).write_text("x")
    (tmp_path / "workspace").mkdir()
    assert prune_reports(tmp_path, NOW, keep=1, days=30) == sorted(run_files(2))
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted([*others, *run_files(1), "workspace"])
