"""The data-drift alarm's rules, as pure functions on small dicts."""

import pytest

from tabserve.monitoring.alarm import (
    POLICY_IMPORTANCE,
    POLICY_SHARE,
    importance_weights,
    judge_data_drift,
    policy_summary,
    top_features,
)
from tabserve.settings import MonitoringSettings

# a carries 60% of the importance, b 25%, c 12%, d 3%, e nothing (negative: noise)
IMPORTANCE = {"a": 0.06, "b": 0.025, "c": 0.012, "d": 0.003, "e": -0.001}
SETTINGS = MonitoringSettings()


def drifted(*names: str) -> dict[str, bool]:
    return {name: name in names for name in IMPORTANCE}


def test_weights_are_shares_of_the_positive_importance() -> None:
    weights = importance_weights(IMPORTANCE)
    assert weights is not None and weights["a"] == pytest.approx(0.6) and weights["e"] == 0
    assert sum(weights.values()) == pytest.approx(1)
    assert importance_weights({"a": 0.0, "b": -0.1}) is None


def test_top_features_skip_those_under_the_floor() -> None:
    weights = importance_weights(IMPORTANCE)
    assert weights is not None
    assert top_features(weights, list(IMPORTANCE), 3, 0.05) == ["a", "b", "c"]
    assert top_features(weights, list(IMPORTANCE), 5, 0.05) == ["a", "b", "c"]  # d carries 3%
    assert top_features(weights, ["b", "d"], 1, 0.0) == ["b"]  # among the compared features only


@pytest.mark.parametrize(
    ("names", "alarm", "why"),
    [
        (("a",), True, "a (#1)"),
        (("c",), True, "c (#3)"),
        (("d",), False, ""),
        (("d", "e"), False, ""),
        (("b", "d"), True, "b (#2)"),
    ],
)
def test_an_important_feature_alone_fires_an_unimportant_one_does_not(
    names: tuple[str, ...], alarm: bool, why: str
) -> None:
    judgement = judge_data_drift(drifted(*names), IMPORTANCE, SETTINGS)
    assert judgement.policy == POLICY_IMPORTANCE and judgement.drifted is alarm
    assert why in "; ".join(judgement.reasons)


def test_the_weighted_share_fires_without_the_top_k_rule() -> None:
    no_top = SETTINGS.model_copy(update={"alarm_top_k": 0})
    judgement = judge_data_drift(drifted("a"), IMPORTANCE, no_top)
    assert judgement.weighted_drift_share == pytest.approx(0.6) and judgement.drifted
    assert "carry 60% of the model's importance" in judgement.reasons[0]
    assert not judge_data_drift(drifted("b"), IMPORTANCE, no_top).drifted  # 25% < 30%


def test_without_importance_the_share_rule_alone_judges() -> None:
    judgement = judge_data_drift(drifted("a"), None, SETTINGS)
    assert judgement.policy == POLICY_SHARE and not judgement.drifted and judgement.top_features == []
    many = judge_data_drift(drifted("a", "b", "c"), None, SETTINGS)
    assert many.drifted and "3 of 5 features drifted" in many.reasons[0]


def test_the_summary_records_every_threshold() -> None:
    summary = policy_summary(SETTINGS, judge_data_drift(drifted(), IMPORTANCE, SETTINGS))
    assert summary["data_drift_policy"] == POLICY_IMPORTANCE
    assert (summary["alarm_top_k"], summary["importance_drift_share"], summary["drift_share"]) == (
        3,
        0.3,
        0.5,
    )
