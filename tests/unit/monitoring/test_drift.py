"""Known-answer drift tests on generated frames (Evidently runs for real)."""

import pandas as pd
import pytest

from tabserve.monitoring.drift import VERDICT_DRIFT, VERDICT_NOT_ENOUGH, VERDICT_OK, VERDICT_QUALITY, compare
from tabserve.schema import infer_schema
from tabserve.settings import MonitoringSettings
from tests.factories import drift_frame

SETTINGS = MonitoringSettings(min_samples=200, min_labels=50)


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    frame = drift_frame(2000, seed=1)
    return frame.assign(target=frame["prediction"])


SCHEMA = infer_schema(drift_frame(10, seed=0)[["a", "b", "c"]])


def current(frame: pd.DataFrame, labels: pd.Series | None = None) -> pd.DataFrame:
    return frame.assign(label=labels if labels is not None else None)


def test_same_distribution_reports_no_drift(reference: pd.DataFrame) -> None:
    result, snapshot = compare(reference, current(drift_frame(2000, seed=2)), SCHEMA, True, SETTINGS)
    assert result.verdict == VERDICT_OK and result.drifted_features == [] and snapshot is not None
    assert result.prediction is not None and not result.prediction.drifted


def test_shifted_feature_is_flagged_alone(reference: pd.DataFrame) -> None:
    result, _ = compare(reference, current(drift_frame(2000, seed=3, shift_a=1.5)), SCHEMA, True, SETTINGS)
    assert result.drifted_features == ["a"]
    assert result.drift_share == pytest.approx(1 / 3) and result.dataset_drift is False
    assert result.verdict == VERDICT_OK  # one of three is below the 0.5 share


def test_lower_drift_share_turns_one_feature_into_dataset_drift(reference: pd.DataFrame) -> None:
    strict = SETTINGS.model_copy(update={"drift_share": 0.3})
    result, _ = compare(reference, current(drift_frame(2000, seed=3, shift_a=1.5)), SCHEMA, True, strict)
    assert result.dataset_drift is True and result.verdict == VERDICT_DRIFT


def test_labels_that_disagree_report_a_quality_drop(reference: pd.DataFrame) -> None:
    live = drift_frame(2000, seed=4)
    wrong = live["prediction"].map({"hi": "lo", "lo": "hi"})
    result, _ = compare(reference, current(live, wrong), SCHEMA, True, SETTINGS)
    assert result.quality is not None and result.quality.reference == 1.0
    assert result.quality.current == 0.0 and result.quality.degraded is True
    assert result.verdict == VERDICT_QUALITY and result.alarm  # the cause, not "drift"


def test_few_labels_give_no_quality_verdict(reference: pd.DataFrame) -> None:
    live = drift_frame(2000, seed=5)
    labels = live["prediction"].where(live.index < 10)
    result, _ = compare(reference, current(live, labels), SCHEMA, True, SETTINGS)
    assert result.quality is not None and result.quality.degraded is None and result.quality.labelled == 10


def test_too_small_a_window_gives_no_verdict(reference: pd.DataFrame) -> None:
    result, snapshot = compare(reference, current(drift_frame(50, seed=6)), SCHEMA, True, SETTINGS)
    assert (
        result.verdict == VERDICT_NOT_ENOUGH
        and snapshot is None
        and "fewer than min_samples" in result.message
    )
