"""Progressive delivery: judge the candidate at its current step, then advance, promote or roll back.

Guards, each against the live data of the step (candidate) and of the whole rollout (champion):
- error rate and p99 latency of the candidate, at every check (a broken candidate goes at once);
- drift of the candidate's predictions from the champion's on the same traffic (PSI), and
  quality on feedback labels (a drop larger than allowed and significant), once per step when
  it has lasted `min_seconds`: judging noisy statistics at every check would fire by chance;
- the same, once per step, for each business outcome in `outcome_guards` (`outcome_guard`).

A rollout may start with a shadow stage (`Rollout.stage`): the candidate scores copies of the
champion's traffic and answers none. It is judged like a step on what a copy can show: error
rate, latency and prediction drift on the very same requests. Quality and outcomes are left to
the canary steps: labels and outcomes are sent for the answered request, never for its copy.

A guard without enough data reports `value: None` and cannot fire. `judge` is pure; `tick`
reads the evidence from the database.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from tabserve.deployment.outcome_guard import OutcomeEvidence, gather_outcomes, outcome_guards
from tabserve.deployment.policy import DeploymentState, GuardResult, Rollout
from tabserve.deployment.store import NO_TRAFFIC, VariantSummary, summarize_stats
from tabserve.deployment.variant_stats import percentile_ms
from tabserve.monitoring.quality import describe_p, outcome_scores, worse_beyond_margin_p
from tabserve.predictions.store import variant_outcomes
from tabserve.settings import RolloutSettings

PSI_FLOOR = 1e-4  # share given to an empty bin, so PSI stays finite
REGRESSION_BINS = 10
WAIT, ADVANCE, ROLL_BACK = "wait", "advance", "roll_back"


def psi(expected: pd.Series, actual: pd.Series, classifier: bool) -> float:
    """Population stability index of `actual` against `expected` (0: same; > 0.2: a real shift)."""
    if classifier:
        categories = sorted(set(expected.astype(str)) | set(actual.astype(str)))
        exp = expected.astype(str).value_counts(normalize=True).reindex(categories, fill_value=0)
        act = actual.astype(str).value_counts(normalize=True).reindex(categories, fill_value=0)
        exp_share, act_share = exp.to_numpy(), act.to_numpy()
    else:
        edges = np.unique(np.quantile(expected.astype(float), np.linspace(0, 1, REGRESSION_BINS + 1)))
        edges[0], edges[-1] = -np.inf, np.inf
        exp_share = np.histogram(expected.astype(float), edges)[0] / len(expected)
        act_share = np.histogram(actual.astype(float), edges)[0] / len(actual)
    exp_share = np.clip(exp_share, PSI_FLOOR, None)
    act_share = np.clip(act_share, PSI_FLOOR, None)
    return float(np.sum((act_share - exp_share) * np.log(act_share / exp_share)))


@dataclass(frozen=True)
class Evidence:
    candidate: VariantSummary
    candidate_outcomes: pd.DataFrame  # prediction, label
    champion_outcomes: pd.DataFrame
    classifier: bool
    business: dict[str, OutcomeEvidence] = field(default_factory=dict)  # guarded outcomes by name


def _guard(value: float | None, limit: float, ok: bool, detail: str) -> GuardResult:
    return GuardResult(value=value, limit=limit, ok=ok, detail=detail)


def _quality_guard(evidence: Evidence, settings: RolloutSettings) -> GuardResult:
    champion, candidate = (
        outcome_scores(frame, evidence.classifier)
        for frame in (evidence.champion_outcomes, evidence.candidate_outcomes)
    )
    if min(len(champion), len(candidate)) < settings.min_labels:
        counts = f"{len(champion)}/{len(candidate)}"
        return _guard(None, settings.quality_drop, True, f"not enough labels (champion/candidate {counts})")
    metric = "accuracy" if evidence.classifier else "mae"
    reference, current = float(champion.mean()), float(candidate.mean())
    # Fires only on a drop significantly larger than allowed (non-inferiority test), so a few
    # unlucky labels never roll back a model as good as the champion.
    p_value = worse_beyond_margin_p(champion, candidate, evidence.classifier, settings.quality_drop)
    fired = p_value < settings.quality_alpha
    allowed = (
        f"more than {settings.quality_drop:g} lower"
        if evidence.classifier
        else f"more than {settings.quality_drop:.0%} higher"
    )
    verdict = f"worse: {metric} {allowed}" if fired else f"no evidence that its {metric} is {allowed}"
    detail = (
        f"{metric} {current:.3f} vs champion {reference:.3f} on {len(candidate)}/{len(champion)} labels: "
        f"{verdict} ({describe_p(p_value)})"
    )
    return _guard(current, settings.quality_drop, not fired, detail)


def _drift_guard(evidence: Evidence, settings: RolloutSettings) -> GuardResult:
    outcomes = (evidence.champion_outcomes, evidence.candidate_outcomes)
    limit = settings.max_prediction_psi
    if min(len(frame) for frame in outcomes) < settings.min_requests:
        counts = "/".join(str(len(frame)) for frame in outcomes)
        return _guard(None, limit, True, f"not enough predictions (champion/candidate {counts})")
    value = psi(outcomes[0]["prediction"], outcomes[1]["prediction"], evidence.classifier)
    detail = f"PSI {value:.3f} of candidate vs champion predictions (max {limit:g})"
    return _guard(value, limit, value <= limit, detail)


def operational_guards(evidence: Evidence, settings: RolloutSettings) -> dict[str, GuardResult]:
    """Error rate and p99: checked at every tick, so a broken candidate goes at once."""
    candidate = evidence.candidate
    rate = candidate.error_rate
    p99 = percentile_ms(candidate.latency, 0.99)
    return {
        "error_rate": _guard(
            rate,
            settings.max_error_rate,
            rate is None or rate <= settings.max_error_rate,
            f"{candidate.errors}/{candidate.requests} requests failed (max {settings.max_error_rate:.2%})",
        ),
        "p99_latency": _guard(
            p99,
            settings.max_p99_ms,
            p99 is None or p99 <= settings.max_p99_ms,
            f"p99 {p99 or 0:.1f} ms (max {settings.max_p99_ms:g} ms)",
        ),
    }


def statistical_guards(
    evidence: Evidence, settings: RolloutSettings, shadowing: bool = False
) -> dict[str, GuardResult]:
    """Prediction drift and quality: judged once per step, before moving on (no repeated peeking)."""
    if shadowing:
        return {"prediction_drift": _drift_guard(evidence, settings)}
    return {
        "prediction_drift": _drift_guard(evidence, settings),
        "quality": _quality_guard(evidence, settings),
        **outcome_guards(evidence.business, settings),
    }


Decision = tuple[str, dict[str, GuardResult], str]


@dataclass(frozen=True)
class StepProgress:
    """How far the current step is, against what it needs before it can move on."""

    step: int  # 1-based (1 during the shadow stage too)
    steps: int
    percent: float
    requests: int
    min_requests: int
    seconds: float
    min_seconds: float
    stage: str = "canary"  # or "shadow": requests are then the copies the candidate scored


def step_progress(
    state: DeploymentState, evidence: Evidence, settings: RolloutSettings, now: datetime
) -> StepProgress:
    assert state.rollout is not None
    rollout = state.rollout
    return StepProgress(
        step=rollout.step + 1,
        steps=len(rollout.steps),
        percent=rollout.percent,
        requests=evidence.candidate.requests,
        min_requests=settings.min_requests,
        seconds=round((now - rollout.step_started).total_seconds(), 1),
        min_seconds=settings.min_seconds,
        stage=rollout.stage,
    )


def _roll_back(rollout: Rollout, guards: dict[str, GuardResult]) -> Decision | None:
    fired = {name: guard for name, guard in guards.items() if not guard.ok}
    if not fired:
        return None
    listed = "; ".join(f"{name}: {guard.detail}" for name, guard in fired.items())
    return ROLL_BACK, guards, f"guard {', '.join(fired)} fired at {rollout.where}: {listed}"


def judge(state: DeploymentState, evidence: Evidence, settings: RolloutSettings, now: datetime) -> Decision:
    """(wait | advance | roll_back, guard results, reason)."""
    assert state.rollout is not None
    rollout = state.rollout
    if evidence.candidate.requests < settings.min_requests:
        scored = "shadow-scored requests" if rollout.shadowing else "candidate requests at this step"
        return WAIT, {}, f"{evidence.candidate.requests}/{settings.min_requests} {scored}"
    guards = operational_guards(evidence, settings)
    if (decision := _roll_back(rollout, guards)) is not None:
        return decision
    if (now - rollout.step_started).total_seconds() < settings.min_seconds:
        return WAIT, guards, "guards pass; waiting for min_seconds"
    guards |= statistical_guards(evidence, settings, rollout.shadowing)
    if (decision := _roll_back(rollout, guards)) is not None:
        return decision
    return ADVANCE, guards, f"{rollout.where} passed every guard"


def gather(
    engine: Engine,
    state: DeploymentState,
    settings: RolloutSettings,
    classifier: bool,
    outcome_kinds: Mapping[str, str] | None = None,
) -> Evidence:
    """The candidate's numbers since its step started; the champion's since the rollout started."""
    assert state.rollout is not None
    policy, rollout = state.policy, state.rollout
    candidate, champion = str(policy.candidate), str(policy.champion)
    stats = summarize_stats(engine, rollout.step_started)
    return Evidence(
        candidate=stats.get(candidate, NO_TRAFFIC),
        candidate_outcomes=variant_outcomes(
            engine, candidate, rollout.step_started, sample=settings.sample_size
        ),
        champion_outcomes=variant_outcomes(engine, champion, rollout.started, sample=settings.sample_size),
        classifier=classifier,
        business=gather_outcomes(
            engine,
            outcome_kinds or {},
            settings,
            (champion, rollout.started),
            (candidate, rollout.step_started),
        ),
    )
