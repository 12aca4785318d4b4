"""How many live rows the drift job compares: `sample_size`, fewer on wide tables.

Evidently's cost grows with rows x columns (each column's drift copies and bins the whole
frame, then draws its plots): measured on 200 features on this 2-core machine, shared with other
jobs (load ~5), the whole job took 72 s with 9,950 rows and 44 s with 5,000 (bench/wide_drift.py).
A larger live sample buys little power once it is a few times the reference: a two-sample
test's effective size is n_ref * n_cur / (n_ref + n_cur), bounded by the reference (5,000 rows
by default: 20,000 live rows give 4,000, 10,000 give 3,333, 5,000 give 2,500, so the smallest
shift detected grows by sqrt(4,000 / 2,500) = 1.26x from 20,000 to 5,000 live rows). So the live
sample holds at most `monitoring.max_sample_cells` cells (rows x compared columns; 1,000,000:
20,000 rows up to 49 features, 5,000 from 199), and never fewer than MIN_ROWS rows (nor more
than `sample_size`).
"""

from __future__ import annotations

MIN_ROWS = 5_000  # the default reference size: below it the live side would limit the tests


def drift_sample_rows(sample_size: int, columns: int, max_cells: int) -> int:
    """Pure: the live rows to draw for `columns` compared columns (features and the prediction)."""
    by_cells = max_cells // max(columns, 1)
    return min(sample_size, max(by_cells, MIN_ROWS))
