"""The rollout's outcome guards: roll back a candidate whose business outcome drops too far.

`rollout.outcome_guards: {click: 0.01}` fires when the candidate's click rate is lower than the
champion's by more than 1 point, significantly (`rollout.outcome_alpha`); for a value outcome
the margin is relative (`revenue: 0.05`: more than 5% less revenue per request served). It is
a one-sided non-inferiority test (`outcome_stats.worse_beyond_margin_p`), judged once per step
with the other statistical guards, so a few unlucky requests never roll back a good candidate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine

from tabserve.deployment.outcome_stats import RATE, mean_of, worse_beyond_margin_p
from tabserve.deployment.policy import GuardResult
from tabserve.monitoring.quality import describe_p
from tabserve.predictions.outcomes import OutcomeSums, outcome_sums
from tabserve.settings import RolloutSettings

GUARD_PREFIX = "outcome:"


@dataclass(frozen=True)
class OutcomeEvidence:
    kind: str  # rate | value
    champion: OutcomeSums
    candidate: OutcomeSums


def outcome_guard(
    name: str, evidence: OutcomeEvidence, margin: float, settings: RolloutSettings
) -> GuardResult:
    """Pure: the guard's result on the two variants' sums."""
    champion, candidate = evidence.champion, evidence.candidate
    measure = f"{name} rate" if evidence.kind == RATE else f"{name} per request"
    if min(champion.requests, candidate.requests) < settings.min_requests:
        counts = f"{champion.requests}/{candidate.requests}"
        return GuardResult(
            value=None,
            limit=margin,
            ok=True,
            detail=f"not enough requests for {measure} (champion/candidate {counts})",
        )
    reference, current = mean_of(champion), mean_of(candidate)
    p_value = worse_beyond_margin_p(champion, candidate, evidence.kind, margin)
    fired = p_value < settings.outcome_alpha
    allowed = f"more than {margin:g} lower" if evidence.kind == RATE else f"more than {margin:.0%} lower"
    verdict = f"worse: {measure} {allowed}" if fired else f"no evidence that its {measure} is {allowed}"
    detail = (
        f"{measure} {current:.4g} vs champion {reference:.4g} on {candidate.requests}/{champion.requests} "
        f"requests: {verdict} ({describe_p(p_value)})"
    )
    return GuardResult(value=current, limit=margin, ok=not fired, detail=detail)


def outcome_guards(
    evidence: Mapping[str, OutcomeEvidence], settings: RolloutSettings
) -> dict[str, GuardResult]:
    return {
        f"{GUARD_PREFIX}{name}": outcome_guard(name, evidence[name], margin, settings)
        for name, margin in settings.outcome_guards.items()
        if name in evidence
    }


def gather_outcomes(
    engine: Engine,
    kinds: Mapping[str, str],
    settings: RolloutSettings,
    champion: tuple[str, datetime],
    candidate: tuple[str, datetime],
) -> dict[str, OutcomeEvidence]:
    """Each guarded outcome's sums: the champion's since the rollout, the candidate's since its step."""
    names = [name for name in settings.outcome_guards if name in kinds]
    if not names:
        return {}
    reference, current = (
        outcome_sums(engine, champion[0], names, champion[1]),
        outcome_sums(engine, candidate[0], names, candidate[1]),
    )
    return {name: OutcomeEvidence(kinds[name], reference[name], current[name]) for name in names}
