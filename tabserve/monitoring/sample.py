"""How many live rows the drift job compares: `sample_size`, fewer on wide tables.

Evidently's cost grows with rows x columns (each column's drift copies and bins the whole
frame): measured on 200 features, 5,000 rows took 14 s and 20,000 rows 63 s on this busy 2-core
machine (bench/wide_drift.py). A larger live sample buys little power once it is a few times
the reference: a two-sample test's effective size is n_ref * n_cur / (n_ref + n_cur), bounded
by the reference (5,000 rows by default: 20,000 live rows give 4,000, 10,000 give 3,333, 5,000
give 2,500). So the live sample holds at most `monitoring.max_sample_cells` cells (rows x
compared columns), and never fewer than MIN_ROWS rows (nor more than `sample_size`).
"""

from __future__ import annotations

MIN_ROWS = 5_000  # the default reference size: below it the live side would limit the tests


def drift_sample_rows(sample_size: int, columns: int, max_cells: int) -> int:
    """Pure: the live rows to draw for `columns` compared columns (features and the prediction)."""
    by_cells = max_cells // max(columns, 1)
    return min(sample_size, max(by_cells, MIN_ROWS))
