"""The data-drift alarm: which drifted features matter, by the importance measured at training.

Counting drifted features alone misses what hurts: with the old default (`drift_share` 0.5) a
census model needed 7 of its 14 features to drift, so one strongly shifted feature the model
leans on never raised the alarm. The policy, each rule with its own setting:

- `alarm_top_k`: one of the k most important features (permutation importance, measured on the
  held-out split at training: training/importance.py) drifts; a feature counts among them only
  if it carries at least `alarm_min_importance` of the total (the noise of a feature the model
  barely uses must not make it "third most important" when only two matter);
- `importance_drift_share`: the drifted features carry at least this share of the model's
  total positive importance (the importance-weighted drift share);
- `drift_share`: at least this share of the features drift, whatever their importance.

A model saved without importance (trained before it was measured) is judged by `drift_share`
alone, and the summary says so. Pure functions: tested on small dicts (tests/unit/monitoring).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tabserve.settings import MonitoringSettings

POLICY_IMPORTANCE = "importance"  # top-k, importance-weighted share and plain share
POLICY_SHARE = "share"  # plain share only: no importance recorded with the model


def importance_weights(mean: dict[str, float]) -> dict[str, float] | None:
    """Each feature's share of the total positive importance; None when no feature has any."""
    positive = {name: max(float(value), 0.0) for name, value in mean.items()}
    total = sum(positive.values())
    if total <= 0:
        return None
    return {name: value / total for name, value in positive.items()}


def top_features(weights: dict[str, float], compared: list[str], k: int, floor: float) -> list[str]:
    """The k compared features with the highest weight, at least `floor` each, most important first."""
    eligible = [name for name in compared if weights.get(name, 0.0) >= floor and weights.get(name, 0.0) > 0]
    return sorted(eligible, key=lambda name: -weights[name])[:k]


@dataclass(frozen=True)
class DataDriftJudgement:
    policy: str
    drift_share: float
    weighted_drift_share: float | None
    top_features: list[str]
    reasons: list[str] = field(default_factory=list)

    @property
    def drifted(self) -> bool:
        return bool(self.reasons)


def judge_data_drift(
    drifted: dict[str, bool], importance: dict[str, float] | None, settings: MonitoringSettings
) -> DataDriftJudgement:
    """`drifted`: compared feature -> drifted; `importance`: the model's mean importance per feature."""
    compared = list(drifted)
    names = [name for name in compared if drifted[name]]
    share = len(names) / max(len(compared), 1)
    reasons = []
    if share >= settings.drift_share:
        reasons.append(
            f"{len(names)} of {len(compared)} features drifted (share {share:.2f} >= {settings.drift_share})"
        )
    weights = importance_weights(importance) if importance else None
    if weights is None:
        return DataDriftJudgement(POLICY_SHARE, share, None, [], reasons)
    top = top_features(weights, compared, settings.alarm_top_k, settings.alarm_min_importance)
    drifted_top = [name for name in top if drifted[name]]
    if drifted_top:
        ranks = ", ".join(f"{name} (#{top.index(name) + 1})" for name in drifted_top)
        reasons.append(f"among the {len(top)} most important features, drifted: {ranks}")
    weighted = sum(weights.get(name, 0.0) for name in names)
    if weighted >= settings.importance_drift_share:
        reasons.append(
            f"drifted features carry {weighted:.0%} of the model's importance"
            f" (>= {settings.importance_drift_share:.0%})"
        )
    return DataDriftJudgement(POLICY_IMPORTANCE, share, weighted, top, reasons)


def policy_summary(settings: MonitoringSettings, judgement: DataDriftJudgement | None) -> dict[str, Any]:
    """The thresholds a run used, for the JSON summary and the report."""
    return {
        "data_drift_policy": judgement.policy if judgement else None,
        "drift_share": settings.drift_share,
        "alarm_top_k": settings.alarm_top_k,
        "alarm_min_importance": settings.alarm_min_importance,
        "importance_drift_share": settings.importance_drift_share,
        "num_method": settings.num_method,
        "num_threshold": settings.num_threshold,
        "cat_method": settings.cat_method,
        "cat_threshold": settings.cat_threshold,
        "quality_drop": settings.quality_drop,
        "min_samples": settings.min_samples,
        "min_labels": settings.min_labels,
        "sample_size": settings.sample_size,  # the setting; the rows compared: the summary's sample_size
        "max_sample_cells": settings.max_sample_cells,
        "drift_max_categories": settings.drift_max_categories,
    }
