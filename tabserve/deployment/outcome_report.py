"""The A/B report's business outcomes: each configured outcome of variant B against variant A.

Per outcome: per variant the requests served, the events and the rate or mean value per request
with a 95% interval; the difference with its interval, the test (`outcome_stats`) and the same
verdicts as the report's quality comparison ("B better", "A better", "no significant
difference", "not enough data": fewer than `min_requests` requests on either side).
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine

from tabserve.deployment.outcome_stats import RATE, mean_of, rate_test, value_test, variant_interval
from tabserve.deployment.verdicts import A_BETTER, B_BETTER, NO_DIFFERENCE, NOT_ENOUGH
from tabserve.monitoring.quality import describe_p
from tabserve.predictions.outcomes import OutcomeSums, outcome_sums


@dataclass(frozen=True)
class OutcomeSide:
    requests: int
    events: int
    value: float | None  # rate or mean value per request served; None: no request (JSON has no NaN)
    low: float | None
    high: float | None


@dataclass(frozen=True)
class OutcomeComparison:
    name: str
    kind: str  # rate | value
    a: OutcomeSide
    b: OutcomeSide
    difference: float | None  # B minus A
    low: float | None
    high: float | None
    statistic: float | None
    p_value: float | None
    test: str
    verdict: str
    alpha: float


def _side(sums: OutcomeSums, kind: str, alpha: float) -> OutcomeSide:
    if sums.requests == 0:
        return OutcomeSide(0, 0, None, None, None)
    return OutcomeSide(sums.requests, sums.events, mean_of(sums), *variant_interval(sums, kind, alpha))


def compare_outcome(
    name: str, kind: str, a: OutcomeSums, b: OutcomeSums, *, min_requests: int, alpha: float = 0.05
) -> OutcomeComparison:
    """Pure: one outcome's comparison from the two variants' sums."""
    sides = _side(a, kind, alpha), _side(b, kind, alpha)
    if min(a.requests, b.requests) < max(min_requests, 2):
        return OutcomeComparison(name, kind, *sides, None, None, None, None, None, "", NOT_ENOUGH, alpha)
    tested = (rate_test if kind == RATE else value_test)(a, b, alpha)
    verdict = NO_DIFFERENCE
    if tested.p_value < alpha:
        verdict = B_BETTER if tested.difference > 0 else A_BETTER
    return OutcomeComparison(
        name,
        kind,
        *sides,
        tested.difference,
        tested.low,
        tested.high,
        tested.statistic,
        tested.p_value,
        tested.test,
        verdict,
        alpha,
    )


def compare_outcomes(
    engine: Engine,
    names: tuple[str, str],
    kinds: Mapping[str, str],
    since: datetime,
    until: datetime | None = None,
    *,
    min_requests: int,
    alpha: float = 0.05,
) -> list[OutcomeComparison]:
    """Every configured outcome of variant B (`names[1]`) against variant A, in the window."""
    if not kinds:
        return []
    a, b = (outcome_sums(engine, variant, list(kinds), since, until) for variant in names)
    return [
        compare_outcome(name, kind, a[name], b[name], min_requests=min_requests, alpha=alpha)
        for name, kind in kinds.items()
    ]


def _measure(outcome: OutcomeComparison) -> str:
    return f"{outcome.name} rate" if outcome.kind == RATE else f"{outcome.name} per request"


def plain_outcome_verdict(outcome: OutcomeComparison) -> str:
    """The verdict in words, with the numbers it rests on (as `ab_report.plain_verdict`)."""
    measure, a, b = _measure(outcome), outcome.a, outcome.b
    if outcome.verdict == NOT_ENOUGH:
        return f"not enough requests to compare {measure} (A {a.requests}, B {b.requests})"
    values = f"{b.value:.3f} vs {a.value:.3f}"
    p_value = describe_p(outcome.p_value if outcome.p_value is not None else 1.0)
    if outcome.verdict == NO_DIFFERENCE:
        return f"no evidence that B's {measure} differs from A's: {values} ({p_value})"
    better = "better" if outcome.verdict == B_BETTER else "worse"
    return f"B is {better} than A on {measure}: {values} ({p_value})"


def _cell(side: OutcomeSide) -> str:
    if side.value is None or side.low is None or side.high is None:
        return "- (0 requests)"
    return f"{side.value:.3f} [{side.low:.3f}, {side.high:.3f}] ({side.events}/{side.requests})"


def outcome_rows(outcomes: list[OutcomeComparison]) -> list[tuple[str, str, str]]:
    """Table rows (label, A, B): each outcome's value per variant with its 95% CI (events/requests)."""
    return [(f"{_measure(outcome)} (95% CI)", _cell(outcome.a), _cell(outcome.b)) for outcome in outcomes]


def outcome_lines(outcomes: list[OutcomeComparison]) -> list[str]:
    """One line per outcome: the difference, its interval, the test and the verdict."""
    lines = []
    for outcome in outcomes:
        if outcome.difference is None or outcome.low is None or outcome.high is None:
            lines.append(f"{outcome.name}: {plain_outcome_verdict(outcome)}")
            continue
        lines.append(
            f"{outcome.name}: B - A = {outcome.difference:+.4f} [{outcome.low:+.4f}, {outcome.high:+.4f}], "
            f"{outcome.test} p = {outcome.p_value:.4g}; {plain_outcome_verdict(outcome)}"
        )
    return lines


def outcome_html(outcomes: list[OutcomeComparison]) -> str:
    """The HTML block of the report: the verdicts, one paragraph per outcome."""
    if not outcomes:
        return ""
    items = "".join(f"<li>{html.escape(line)}</li>" for line in outcome_lines(outcomes))
    return f"<h2>Business outcomes</h2><ul class='outcomes'>{items}</ul>"
