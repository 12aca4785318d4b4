"""The drift job's live sample: `sample_size` on narrow tables, fewer rows on wide ones."""

from __future__ import annotations

from tabserve.monitoring.sample import MIN_ROWS, drift_sample_rows
from tabserve.settings import MonitoringSettings

DEFAULTS = MonitoringSettings()


def rows(columns: int) -> int:
    return drift_sample_rows(DEFAULTS.sample_size, columns, DEFAULTS.max_sample_cells)


def test_a_narrow_table_keeps_the_configured_sample() -> None:
    assert rows(31) == DEFAULTS.sample_size == 20_000  # breast cancer: 30 features + prediction


def test_a_wide_table_gets_the_rows_its_cells_allow() -> None:
    assert rows(101) == 1_000_000 // 101 == 9_900
    assert rows(201) == MIN_ROWS  # 4,975 by cells: the floor


def test_a_very_wide_table_keeps_a_floor_and_never_exceeds_the_configured_sample() -> None:
    assert rows(5_000) == MIN_ROWS
    assert drift_sample_rows(1_000, 5_000, DEFAULTS.max_sample_cells) == 1_000
