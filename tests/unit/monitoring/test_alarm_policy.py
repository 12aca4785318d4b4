"""The alarm fires on what matters (issue 15): known answers on a census-like table of 14 features.

The label depends on `x0` (numeric) and `city` (categorical); the 12 other features are noise
(conftest.py). The model is trained through the CLI (permutation importance measured on its held-out split),
then live windows drawn from the same generator are compared with its reference, with the
default settings. Before the importance-based policy, one drifting feature of 14 (share 0.07)
never reached `drift_share` 0.5: the alarm stayed silent whatever the feature.
"""

from __future__ import annotations

import pandas as pd
import pytest

from tabserve.model_store import StoredModel
from tabserve.monitoring.drift import DATA_DRIFT, VERDICT_OK, compare
from tabserve.settings import MonitoringSettings
from tests.census import NOISE_CATEGORICAL, NOISE_NUMERIC, census_like

DEFAULTS = MonitoringSettings()


@pytest.fixture
def model(census_model: StoredModel) -> StoredModel:
    return census_model


def window(model: StoredModel, shift: dict[str, float | str]) -> pd.DataFrame:
    frame = census_like(1000, seed=7).drop(columns="label")
    for name, change in shift.items():
        frame[name] = frame[name] + change if isinstance(change, float) else change
    scored = model.load_predictor().predict_frame(frame)
    return frame.assign(prediction=scored["prediction"], label=None)


def importance(model: StoredModel) -> dict[str, float]:
    return dict(model.metadata["feature_importance"]["mean"])


def test_importance_is_measured_on_the_held_out_split_and_stored(model: StoredModel) -> None:
    measured = model.metadata["feature_importance"]
    assert measured["method"] == "permutation" and measured["metric"] == "log_loss"
    assert measured["rows"] == 1500 and measured["repeats"] == 5  # the held-out quarter, default repeats
    ranked = sorted(measured["mean"], key=lambda name: -measured["mean"][name])
    assert ranked[:2] == ["x0", "city"]
    assert set(measured["mean"]) == {"x0", "city", *NOISE_NUMERIC, *NOISE_CATEGORICAL}


@pytest.mark.parametrize("shift", [{"x0": 1.5}, {"city": "nice"}], ids=["numeric +1.5 sd", "forced category"])
def test_one_shifted_important_feature_raises_the_alarm_with_the_defaults(
    model: StoredModel, shift: dict[str, float | str]
) -> None:
    (feature,) = shift
    live = window(model, shift)
    result, _ = compare(model.load_reference(), live, model.schema, True, DEFAULTS, importance(model))
    assert result.drifted_features == [feature] and result.drift_share == pytest.approx(1 / 14)
    assert result.dataset_drift is True and result.alarm
    data_drift = next(reason for reason in result.reasons() if reason.kind == DATA_DRIFT)
    assert data_drift.fired and f"{feature} (#" in data_drift.detail
    # The same window judged as before (no importance: the share rule alone) stays silent on data drift.
    blind, _ = compare(model.load_reference(), live, model.schema, True, DEFAULTS, None)
    assert blind.drifted_features == result.drifted_features and blind.dataset_drift is False


def test_a_shifted_unimportant_feature_alone_raises_no_alarm(model: StoredModel) -> None:
    live = window(model, {"n3": 4.5})  # 1.5 standard deviations, as for x0
    result, _ = compare(model.load_reference(), live, model.schema, True, DEFAULTS, importance(model))
    assert result.drifted_features == ["n3"]  # seen and reported ...
    assert result.dataset_drift is False and result.verdict == VERDICT_OK  # ... but no alarm
    assert result.data_drift is not None and result.data_drift.weighted_drift_share is not None
    assert result.data_drift.weighted_drift_share < DEFAULTS.importance_drift_share
    assert "n3" not in result.data_drift.top_features


def test_the_same_data_raises_nothing(model: StoredModel) -> None:
    result, _ = compare(
        model.load_reference(), window(model, {}), model.schema, True, DEFAULTS, importance(model)
    )
    assert result.drifted_features == [] and result.verdict == VERDICT_OK
