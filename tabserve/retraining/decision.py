"""Whether the challenger replaces the champion: one rule over the paired comparisons, and its report.

ACCEPT needs every condition: (a) the primary metric (accuracy, or MAE) is better at level alpha,
one-sided, and by at least the minimum improvement; (b) every secondary metric is non-inferior:
the worse end of its interval, at confidence at least 1 - alpha, is within its margin. Each
condition is a level-alpha test of its own null hypothesis ("not better", "worse by more than
the margin"); a rule that accepts only when all of them reject is an intersection-union test
(Berger 1982), so whichever null holds, the rule accepts with probability at most alpha: its
false-accept rate is at most alpha without any multiplicity correction. The minimum
improvement only makes accepting harder.

Why 1 - alpha and not 1 - 2 * alpha (the exact one-sided level-alpha bound): the percentile
bootstrap's error in one tail is of order 1/sqrt(n), and with a skewed per-row loss (an
overconfident challenger) the 1 - 2 * alpha bound passed a metric worse by exactly its margin
more often than alpha. Reading the 1 - alpha interval keeps that component at or under alpha
with room to spare, at a small cost in power on the secondary metrics.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tabserve.monitoring.quality import describe_p
from tabserve.retraining.paired_tests import MetricComparison
from tabserve.text_columns import aligned

ACCEPT, REJECT = "ACCEPT", "REJECT"
BETTER, NON_INFERIOR, WORSE, NO_EVIDENCE, TOO_SMALL = (
    "better",
    "non-inferior",
    "worse",
    "no evidence",
    "too small",
)
PASSING = frozenset({BETTER, NON_INFERIOR})
LABELS = {"accuracy": "accuracy", "log_loss": "log loss", "roc_auc": "ROC AUC", "mae": "MAE", "rmse": "RMSE"}
# Why these margins: a log-loss rise of 0.02 nats means the probability given to the true class
# shrinks by at most 2% (geometric mean, exp(-0.02)); 0.01 of ROC AUC is one positive-negative
# pair in a hundred ordered the other way. RMSE is in the target's units, so its margin is a share
# of the champion's RMSE; squares weigh the tails, so its interval is wide and a tighter share
# would reject good challengers for want of rows rather than for being worse.
DEFAULT_MARGINS = {"log_loss": 0.02, "roc_auc": 0.01}
DEFAULT_RELATIVE_MARGINS = {"rmse": 0.05}


@dataclass(frozen=True)
class DecisionRule:
    alpha: float = 0.05
    min_improvement: float = 0.0  # the primary metric's observed improvement, in its own units
    margins: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_MARGINS))
    relative_margins: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_RELATIVE_MARGINS))

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 0.5:
            raise ValueError(f"alpha must be between 0 and 0.5, got {self.alpha}")
        negative = [k for k, v in {**self.margins, **self.relative_margins}.items() if v < 0]
        if self.min_improvement < 0 or negative:
            raise ValueError(f"the minimum improvement and margins must be >= 0 ({negative or 'minimum'})")

    @property
    def interval_confidence(self) -> float:
        """The least confidence of the intervals the rule reads (see the module's docstring)."""
        return 1 - self.alpha

    def margin(self, comparison: MetricComparison) -> float:
        """A secondary metric's margin in its own units: absolute, else a share of the champion's."""
        if comparison.metric in self.margins:
            return self.margins[comparison.metric]
        if comparison.metric in self.relative_margins:
            return self.relative_margins[comparison.metric] * abs(comparison.champion)
        raise ValueError(f"no non-inferiority margin for the metric {comparison.metric!r}")


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    word: str
    reason: str
    comparisons: tuple[MetricComparison, ...]
    metric_verdicts: dict[str, str]
    margins: dict[str, float]  # each secondary metric's margin as applied, in its own units
    rule: DecisionRule


def label(comparison: MetricComparison) -> str:
    return LABELS.get(comparison.metric, comparison.metric)


def primary_verdict(comparison: MetricComparison, rule: DecisionRule) -> str:
    if comparison.p_value is None:
        raise ValueError(f"the primary metric {comparison.metric!r} has no test")
    if comparison.p_value < rule.alpha:
        return BETTER if comparison.improvement >= rule.min_improvement else TOO_SMALL
    return WORSE if comparison.improvement_interval[1] < 0 else NO_EVIDENCE


def secondary_verdict(comparison: MetricComparison, margin: float) -> str:
    worse_end, better_end = comparison.improvement_interval
    if math.isnan(worse_end):
        return NO_EVIDENCE
    if worse_end > 0:
        return BETTER
    if worse_end >= -margin:
        return NON_INFERIOR
    return WORSE if better_end < 0 else NO_EVIDENCE


def _primary_reason(comparison: MetricComparison, verdict: str, rule: DecisionRule) -> str:
    test = f"{comparison.test} {describe_p(comparison.p_value or 0.0)}"
    if verdict == BETTER:
        return f"the challenger is better on {label(comparison)}: {test}, below alpha {rule.alpha:g}"
    if verdict == TOO_SMALL:
        return (
            f"the challenger is better on {label(comparison)} ({test}) but by {comparison.improvement:.4g},"
            f" less than the minimum improvement {rule.min_improvement:g}"
        )
    if verdict == WORSE:
        return (
            f"the challenger is worse on {label(comparison)}: {comparison.difference:+.4g}, its"
            f" {comparison.confidence:.0%} interval [{comparison.low:+.4g}, {comparison.high:+.4g}] ({test})"
        )
    return (
        f"no evidence the challenger is better on {label(comparison)}: {test}, not below alpha {rule.alpha:g}"
    )


def _secondary_reason(comparison: MetricComparison, margin: float) -> str:
    worse_end = comparison.improvement_interval[0]
    if math.isnan(worse_end):
        return f"{label(comparison)} could not be measured on the bootstrap replicates"
    return (
        f"{label(comparison)} could be worse by up to {-worse_end:.4g}"
        f" ({comparison.confidence:.0%} interval), more than its margin {margin:.4g}"
    )


def decide(comparisons: Sequence[MetricComparison], rule: DecisionRule) -> Verdict:
    """ACCEPT or REJECT, with the condition that decided; see the module's docstring for the rule."""
    primaries = [c for c in comparisons if c.primary]
    if len(primaries) != 1:
        raise ValueError(f"one primary metric expected, got {[c.metric for c in primaries]}")
    narrow = [c.metric for c in comparisons if c.confidence < rule.interval_confidence - 1e-9]
    if narrow:  # a narrower interval's worse end could pass a worse metric more often than alpha
        raise ValueError(
            f"intervals of {narrow} below {rule.interval_confidence:.0%} confidence for alpha {rule.alpha}"
        )
    primary = primaries[0]
    secondaries = [c for c in comparisons if not c.primary]
    margins = {c.metric: rule.margin(c) for c in secondaries}
    verdicts = {primary.metric: primary_verdict(primary, rule)}
    verdicts |= {c.metric: secondary_verdict(c, margins[c.metric]) for c in secondaries}
    reason = _primary_reason(primary, verdicts[primary.metric], rule)
    failing = [c for c in secondaries if verdicts[c.metric] not in PASSING]
    accepted = verdicts[primary.metric] == BETTER and not failing
    if accepted:
        reason += ", and no other metric is worse beyond its margin"
    elif verdicts[primary.metric] == BETTER:
        reason = _secondary_reason(failing[0], margins[failing[0].metric])
    return Verdict(
        accepted, ACCEPT if accepted else REJECT, reason, tuple(comparisons), verdicts, margins, rule
    )


def decimals(comparison: MetricComparison) -> int:
    """Decimals that show the metric's values to four significant digits, for its whole row."""
    scale = max(abs(comparison.champion), abs(comparison.challenger))
    if not math.isfinite(scale) or scale == 0:
        return 4
    return min(6, max(0, 3 - math.floor(math.log10(scale))))


def _number(value: float | None, digits: int, signed: bool = False) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:+,.{digits}f}" if signed else f"{value:,.{digits}f}"


def _required(comparison: MetricComparison, verdict: Verdict) -> str:
    if comparison.primary:
        minimum = verdict.rule.min_improvement
        return f"p < {verdict.rule.alpha:g}" + (f", gain >= {minimum:g}" if minimum else "")
    return f"worse by < {_number(verdict.margins[comparison.metric], decimals(comparison))}"


def verdict_table(verdict: Verdict, champion_tag: str, challenger_tag: str, rows: int) -> str:
    """Verdict first, then one line per metric (primary first), in the style of `tabserve monitor`."""
    confidence = (
        verdict.comparisons[0].confidence if verdict.comparisons else verdict.rule.interval_confidence
    )
    header = ("metric", "champion", "challenger", "difference", f"{confidence:.0%} interval", "p-value")
    table: list[tuple[str, ...]] = [(*header, "test", "required", "verdict")]
    for c in sorted(verdict.comparisons, key=lambda c: not c.primary):
        test = c.test + (f", discordant {c.discordant[0]} vs {c.discordant[1]}" if c.discordant else "")
        digits = decimals(c)
        interval = f"[{_number(c.low, digits, True)}, {_number(c.high, digits, True)}]"
        p_value = "-" if c.p_value is None else describe_p(c.p_value)
        values = (
            _number(c.champion, digits),
            _number(c.challenger, digits),
            _number(c.difference, digits, True),
        )
        numbers = (*values, interval, p_value)
        table.append((label(c), *numbers, test, _required(c, verdict), verdict.metric_verdicts[c.metric]))
    return "\n".join(
        [
            f"{verdict.word}: {verdict.reason}",
            f"champion {champion_tag}  challenger {challenger_tag}  held-out rows {rows:,}"
            f"  alpha {verdict.rule.alpha:g}",
            *aligned(table, right=frozenset({1, 2, 3})),
        ]
    )


def _json_number(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def verdict_json(verdict: Verdict) -> dict[str, Any]:
    """The verdict for the audit record: plain JSON types, None wherever a number is undefined."""
    rule = verdict.rule
    return {
        "verdict": verdict.word,
        "accepted": verdict.accepted,
        "reason": verdict.reason,
        "rule": {
            "alpha": rule.alpha,
            "min_improvement": rule.min_improvement,
            "margins": dict(rule.margins),
            "relative_margins": dict(rule.relative_margins),
        },
        "metrics": [
            {
                "metric": c.metric,
                "primary": c.primary,
                "champion": _json_number(c.champion),
                "challenger": _json_number(c.challenger),
                "difference": _json_number(c.difference),
                "improvement": _json_number(c.improvement),
                "interval": [_json_number(c.low), _json_number(c.high)],
                "confidence": c.confidence,
                "interval_method": c.interval_method,
                "p_value": _json_number(c.p_value),
                "test": c.test,
                "higher_is_better": c.higher_is_better,
                "discordant": list(c.discordant) if c.discordant else None,
                "rows": c.rows,
                "margin": _json_number(verdict.margins.get(c.metric)),
                "verdict": verdict.metric_verdicts[c.metric],
            }
            for c in verdict.comparisons
        ],
    }
