"""Quality figures on logged predictions keep the label's type (issue 11).

Found by the dataset matrix: a 0/1 model's logged window with some rows not yet labelled scored
accuracy 0.0 on labels that all matched (the label column came back as floats, "1.0" != "1").
The window is read back from a real (SQLite) prediction log, as the drift job and the rollout
guard read it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tabserve.monitoring.quality import outcome_scores, quality
from tabserve.predictions.bulk_insert import insert_rows
from tabserve.predictions.migration import upgrade as upgrade_schema
from tabserve.predictions.store import load_window, make_engine, set_labels
from tabserve.predictor import TARGET_COLUMN
from tests.factories import prediction_rows

LOGGED = 40
LABELLED = 30  # the rest wait for feedback: the window holds missing labels


@pytest.mark.parametrize(
    "classes",
    [(0, 1), (1, 2, 3), (False, True), ("no", "yes"), None],
    ids=["0-1", "int", "bool", "text", "regression"],
)
def test_matching_labels_score_perfectly_whatever_their_type(
    classes: tuple[Any, ...] | None, tmp_path: Path
) -> None:
    """On the default log (SQLite): labels equal to the predictions are all right."""
    engine = make_engine(f"sqlite:///{tmp_path / 'log.db'}")
    upgrade_schema(engine)
    rows = prediction_rows("r", 0, LOGGED)
    for i, row in enumerate(rows):
        if classes is None:
            row["prediction"], row["probabilities"] = 100.0 + i / 4, None
        else:
            row["prediction"] = label = classes[i % len(classes)]
            row["probabilities"] = {str(c): float(c == label) for c in classes}
    insert_rows(engine, rows)
    set_labels(engine, {row["request_id"]: row["prediction"] for row in rows[:LABELLED]})

    window, total = load_window(engine, "m:1", last=LOGGED, sample=LOGGED)
    engine.dispose()
    assert total == LOGGED
    classifier = classes is not None
    reference = window.assign(**{TARGET_COLUMN: window["prediction"]})
    result = quality(reference, window, classifier=classifier, min_labels=LABELLED)
    assert result.labelled == LABELLED and result.current == (1.0 if classifier else 0.0)
    expected_scores = [1.0 if classifier else 0.0] * LABELLED
    assert outcome_scores(window, classifier=classifier).tolist() == expected_scores
