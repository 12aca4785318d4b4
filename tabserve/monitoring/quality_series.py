"""Quality as per-row columns, so that Evidently's own `MeanValue` stores it with each run.

The dashboard's quality panel (workspace.py) plots metric results stored in the runs, and our
quality is computed outside Evidently (quality.py, estimated_quality.py). Each is written as a
column whose mean is the value: the mean of "was the answer right" over the labelled rows is the
realized accuracy (the mean absolute error for a regressor); the mean of the calibrated
probability that the answer is right is the estimated accuracy (CBPE); the reference's realized
value, repeated, draws the line both are read against. A column is left out of a run when its
value is unknown (fewer labelled rows than `min_labels`, a model without calibration): the panel
then skips that run rather than plotting a guess.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tabserve.monitoring.quality import LABEL_COLUMN, per_row_quality
from tabserve.predictor import PREDICTION_COLUMN, TARGET_COLUMN

REALIZED_COLUMN = "quality_realized"
ESTIMATED_COLUMN = "quality_estimated"
REFERENCE_COLUMN = "quality_reference"
QUALITY_COLUMNS = (REALIZED_COLUMN, ESTIMATED_COLUMN, REFERENCE_COLUMN)


@dataclass(frozen=True)
class QualitySeries:
    """The columns added to the window (`current`) and to the reference, index-aligned with them."""

    current: pd.DataFrame
    reference: pd.DataFrame

    @property
    def columns(self) -> list[str]:
        return list(self.current.columns)


def quality_series(
    current: pd.DataFrame,
    reference: pd.DataFrame,
    classifier: bool,
    min_labels: int,
    expected: tuple[np.ndarray, np.ndarray] | None,
) -> QualitySeries:
    """Pure: the quality columns of a window and of the reference.

    `expected`: the calibrated probability of being right per row of (window, reference), or None.
    """
    on_reference = per_row_quality(reference[TARGET_COLUMN], reference[PREDICTION_COLUMN], classifier)
    reference_value = float(on_reference.mean())
    now = pd.DataFrame({REFERENCE_COLUMN: reference_value}, index=current.index)
    then = pd.DataFrame({REFERENCE_COLUMN: reference_value}, index=reference.index)
    labelled = current[current[LABEL_COLUMN].notna()]
    if len(labelled) >= min_labels:
        now[REALIZED_COLUMN] = per_row_quality(
            labelled[LABEL_COLUMN], labelled[PREDICTION_COLUMN], classifier
        )
        then[REALIZED_COLUMN] = on_reference
    if expected is not None:
        now[ESTIMATED_COLUMN], then[ESTIMATED_COLUMN] = expected
    return QualitySeries(now, then)
