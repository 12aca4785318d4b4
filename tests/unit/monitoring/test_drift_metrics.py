"""Drift results are read by metric identity, never from Evidently's display text (issue 13).

Evidently runs for real on frames with a known answer: column `a` is shifted by 1.5 standard
deviations, `b` and `c` are drawn from the reference's distribution.
"""

import pytest

from tabserve.monitoring.drift_metrics import (
    DriftReadError,
    build_metrics,
    read_column_drifts,
    run_report,
)
from tabserve.schema import infer_schema
from tabserve.settings import MonitoringSettings
from tests.factories import drift_frame

SETTINGS = MonitoringSettings()


SCHEMA = infer_schema(drift_frame(10, seed=0)[["a", "b", "c"]])


@pytest.fixture(scope="module")
def shifted_run() -> tuple[object, object]:
    metrics = build_metrics(SCHEMA, True, SETTINGS)
    return run_report(
        drift_frame(1000, seed=1),
        drift_frame(1000, seed=2, shift_a=1.5),
        SCHEMA,
        True,
        metrics,
        SETTINGS.drift_max_categories,
    ), metrics


def test_the_shifted_column_drifts_and_the_others_do_not(shifted_run: tuple[object, object]) -> None:
    snapshot, metrics = shifted_run
    drifts = read_column_drifts(snapshot, metrics)  # type: ignore[arg-type]
    assert {name: column.drifted for name, column in drifts.items()} == {
        "a": True,
        "b": False,
        "c": False,
        "prediction": False,
    }
    assert drifts["a"].score < drifts["a"].threshold  # a p-value under its threshold
    assert drifts["a"].method and drifts["c"].method != drifts["a"].method  # resolved per column type


def test_renamed_display_labels_still_read_as_drift(shifted_run: tuple[object, object]) -> None:
    """A release that renames every test and title must not turn drift into "no drift".

    The labels of the real snapshot are rewritten; the reader finds each result by its metric id.
    (The reader before issue 13 matched "Value Drift for column " and reported no drift here.)
    """
    snapshot, metrics = shifted_run
    for result in snapshot.metric_results.values():  # type: ignore[attr-defined]
        for test in result.tests:
            test.name = "Drift test (renamed)"
            test.description = ""
        result.display_name = "renamed"
    drifts = read_column_drifts(snapshot, metrics)  # type: ignore[arg-type]
    assert drifts["a"].drifted and not drifts["b"].drifted


def test_a_result_without_its_drift_test_is_an_error_not_no_drift() -> None:
    metrics = build_metrics(SCHEMA, True, SETTINGS)
    from evidently import Dataset, Report

    from tabserve.monitoring.drift_metrics import data_definition, prepare

    definition = data_definition(SCHEMA, True)
    frames = [prepare(drift_frame(300, seed), SCHEMA, True) for seed in (3, 4)]
    untested = Report(metrics.all, include_tests=False).run(
        *(Dataset.from_pandas(frame, data_definition=definition) for frame in frames)
    )
    with pytest.raises(DriftReadError, match="no drift test verdict"):
        read_column_drifts(untested, metrics)


def test_the_prediction_is_measured_but_not_counted_as_a_feature() -> None:
    metrics = build_metrics(SCHEMA, True, SETTINGS)
    assert list(metrics.columns) == ["a", "b", "c", "prediction"]
    assert metrics.count.columns == ["a", "b", "c"]
