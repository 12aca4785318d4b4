"""A/B comparison of two variants from the prediction log and the per-variant numbers.

Per variant: requests, errors, latency percentiles, the distribution of predictions and, with
feedback labels, the quality metric with a 95% confidence interval (Wilson for accuracy,
Student's t for MAE). The difference is tested (two-proportion z-test for accuracy, Welch's t-test
on absolute errors for MAE) and summed up as "B better", "A better", "no significant
difference" or "not enough data". Each variant is named with the model tags its rows came from;
B is compared with A as a challenger (`challenger_diff`: on the same requests under a shadow
policy, on distributions only under split traffic), and the HTML plots the distributions.

The text and the HTML are lists of sections (`text_sections`, `html_sections`): a new
comparison adds one function to each list.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from tabserve.deployment.challenger_diff import (
    ChallengerDiff,
    distribution_shares,
    paired_diff,
    unpaired_diff,
)
from tabserve.deployment.challenger_report import challenger_html, challenger_lines, distribution_html
from tabserve.deployment.outcome_report import (
    OutcomeComparison,
    compare_outcomes,
    outcome_html,
    outcome_lines,
    outcome_rows,
)
from tabserve.deployment.report_data import logged_tags, paired_predictions
from tabserve.deployment.store import NO_TRAFFIC, VariantSummary, summarize_stats
from tabserve.deployment.variant_stats import percentile_ms
from tabserve.deployment.verdicts import A_BETTER, B_BETTER, NO_DIFFERENCE, NOT_ENOUGH
from tabserve.monitoring.quality import (
    accuracy_interval,
    describe_p,
    mean_interval,
    outcome_scores,
    significance,
)
from tabserve.predictions.store import variant_outcomes

PERCENTILES = {"p50": 0.5, "p95": 0.95, "p99": 0.99}
SWAPPED_SIDES = {
    "primary": "challenger",
    "challenger": "primary",
    "primary_probabilities": "challenger_probabilities",
    "challenger_probabilities": "primary_probabilities",
}


@dataclass(frozen=True)
class Interval:
    value: float
    low: float
    high: float


@dataclass(frozen=True)
class VariantReport:
    name: str
    tags: dict[str, int]  # model tag -> rows logged with it in the window
    requests: int
    errors: int
    latency_ms: dict[str, float | None]
    logged: int
    predictions: dict[str, float]  # class -> share (classifiers); mean/std/quantiles (regressors)
    labelled: int
    quality: Interval | None


@dataclass(frozen=True)
class Comparison:
    metric: str
    a: VariantReport
    b: VariantReport
    difference: float | None  # quality of B minus A (for MAE: A minus B, so > 0 means B better)
    p_value: float | None
    test: str
    verdict: str
    alpha: float
    since: str
    until: str | None
    window: str  # why the window starts where it does
    challenger: ChallengerDiff | None
    distributions: tuple[list[str], dict[str, list[float]]]  # categories, shares per variant
    business_outcomes: list[OutcomeComparison] = field(default_factory=list)  # business outcomes, B vs A

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def accuracy_with_interval(scores: np.ndarray) -> Interval:
    return Interval(float(scores.mean()), *accuracy_interval(int(scores.sum()), len(scores)))


def mae_with_interval(scores: np.ndarray) -> Interval:
    return Interval(float(scores.mean()), *mean_interval(scores))


def _distribution(predictions: pd.Series, classifier: bool) -> dict[str, float]:
    if predictions.empty:
        return {}
    if classifier:
        return {
            str(k): float(v)
            for k, v in predictions.astype(str).value_counts(normalize=True).sort_index().items()
        }
    values = predictions.astype(float)
    return {
        "mean": float(values.mean()),
        "std": float(values.std()),
        **{f"q{int(q * 100)}": float(values.quantile(q)) for q in (0.1, 0.5, 0.9)},
    }


def variant_report(
    name: str,
    tags: dict[str, int],
    summary: VariantSummary,
    outcomes: pd.DataFrame,
    scores: np.ndarray,
    classifier: bool,
    min_labels: int,
) -> VariantReport:
    """`scores`: `outcome_scores` of the outcomes (computed once, also used for the test)."""
    quality = None
    if len(scores) >= min_labels:
        quality = accuracy_with_interval(scores) if classifier else mae_with_interval(scores)
    return VariantReport(
        name=name,
        tags=tags,
        requests=summary.requests,
        errors=summary.errors,
        latency_ms={label: percentile_ms(summary.latency, q) for label, q in PERCENTILES.items()},
        logged=len(outcomes),
        predictions=_distribution(outcomes["prediction"], classifier),
        labelled=len(scores),
        quality=quality,
    )


def challenger_of(
    engine: Engine,
    names: tuple[str, str],
    window: tuple[datetime, datetime | None],
    classifier: bool,
    latency: tuple[dict[int, int], dict[int, int]],
    outcomes: list[pd.DataFrame],
    *,
    sample: int,
    tolerance: float | None = None,
    models: tuple[str | None, str | None] = (None, None),
) -> ChallengerDiff:
    """B as a challenger of A: on the requests both scored (shadow), else on distributions.

    Either may be the shadow (`--a candidate --b champion`): the pairs are found both ways and
    always read as B against A.
    """
    pairs = paired_predictions(engine, names[0], names[1], *window, sample=sample, models=models)
    if pairs.empty:
        swapped = paired_predictions(engine, names[1], names[0], *window, sample=sample, models=models[::-1])
        pairs = swapped.rename(columns=SWAPPED_SIDES)
    if not pairs.empty:
        return paired_diff(pairs, classifier, latency, tolerance)
    return unpaired_diff(outcomes[0]["prediction"], outcomes[1]["prediction"], classifier, latency)


def kept_tags(logged: dict[str, int], model: str | None) -> dict[str, int]:
    return logged if model is None else {tag: rows for tag, rows in logged.items() if tag == model}


def compare_variants(
    engine: Engine,
    names: tuple[str, str],
    classifier: bool,
    since: datetime,
    until: datetime | None = None,
    *,
    min_labels: int,
    alpha: float = 0.05,
    sample: int = 200_000,
    window: str = "",
    tolerance: float | None = None,
    models: tuple[str | None, str | None] = (None, None),
    outcome_kinds: Mapping[str, str] | None = None,
) -> Comparison:
    """`models`: per variant, the only model tag whose rows count (None: every tag in the window)."""
    by_name = {name: model for name, model in zip(names, models, strict=True) if model is not None}
    summaries = summarize_stats(engine, since, until, by_name)
    outcomes = [
        variant_outcomes(engine, name, since, until, sample=sample, model=model)
        for name, model in zip(names, models, strict=True)
    ]
    scores = [outcome_scores(frame, classifier) for frame in outcomes]
    stats = [summaries.get(name, NO_TRAFFIC) for name in names]
    tags = [
        kept_tags(logged_tags(engine, name, since, until), model)
        for name, model in zip(names, models, strict=True)
    ]
    reports = [
        variant_report(name, tag, stat, frame, score, classifier, min_labels)
        for name, tag, stat, frame, score in zip(names, tags, stats, outcomes, scores, strict=True)
    ]
    metric = "accuracy" if classifier else "mae"
    difference = p_value = None
    test, verdict = "", NOT_ENOUGH
    if all(report.quality is not None for report in reports):
        gain = scores[1].mean() - scores[0].mean()
        difference = float(gain if classifier else -gain)
        p_value, test = significance(scores[0], scores[1], classifier)
        verdict = NO_DIFFERENCE if p_value >= alpha else (B_BETTER if difference > 0 else A_BETTER)
    challenger = challenger_of(
        engine,
        names,
        (since, until),
        classifier,
        (stats[0].latency, stats[1].latency),
        outcomes,
        sample=sample,
        tolerance=tolerance,
        models=models,
    )
    predictions = {name: frame["prediction"] for name, frame in zip(names, outcomes, strict=True)}
    return Comparison(
        metric,
        reports[0],
        reports[1],
        difference,
        p_value,
        test,
        verdict,
        alpha,
        since.isoformat(),
        until.isoformat() if until else None,
        window,
        challenger,
        distribution_shares(predictions, classifier),
        compare_outcomes(
            engine, names, outcome_kinds or {}, since, until, min_requests=min_labels, alpha=alpha
        ),
    )


def plain_verdict(comparison: Comparison) -> str:
    """The verdict in words, with the numbers it rests on."""
    a, b, metric = comparison.a, comparison.b, comparison.metric
    if comparison.verdict == NOT_ENOUGH or a.quality is None or b.quality is None:
        return f"not enough labels to compare {metric} (A {a.labelled}, B {b.labelled})"
    p_value = describe_p(comparison.p_value if comparison.p_value is not None else 1.0)
    values = f"{metric} {b.quality.value:.3f} vs {a.quality.value:.3f}"
    if comparison.verdict == NO_DIFFERENCE:
        return f"no evidence that B's {metric} differs from A's: {values} ({p_value})"
    better = "better" if comparison.verdict == B_BETTER else "worse"
    return f"B is {better} than A: {values} ({p_value})"


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def variant_name(report: VariantReport) -> str:
    """The name with the model tags its rows came from (several: a restart changed the model)."""
    if not report.tags:
        return report.name
    tags = ", ".join(tag if len(report.tags) == 1 else f"{tag} ({rows})" for tag, rows in report.tags.items())
    return f"{report.name} ({tags})"


def table_rows(comparison: Comparison) -> list[tuple[str, str, str]]:
    a, b = comparison.a, comparison.b

    def quality(report: VariantReport) -> str:
        if report.quality is None:
            return f"- ({report.labelled} labels)"
        q = report.quality
        return f"{q.value:.3f} [{q.low:.3f}, {q.high:.3f}] (n={report.labelled})"

    rows = [
        ("variant", f"A: {variant_name(a)}", f"B: {variant_name(b)}"),
        ("requests", str(a.requests), str(b.requests)),
        ("errors", str(a.errors), str(b.errors)),
        *[
            (f"latency {label} (ms)", _fmt(a.latency_ms[label], 1), _fmt(b.latency_ms[label], 1))
            for label in PERCENTILES
        ],
        ("logged predictions", str(a.logged), str(b.logged)),
        *[
            (f"prediction {key}", _fmt(a.predictions.get(key)), _fmt(b.predictions.get(key)))
            for key in sorted(set(a.predictions) | set(b.predictions))
        ],
        (f"{comparison.metric} (95% CI)", quality(a), quality(b)),
        *outcome_rows(comparison.business_outcomes),
    ]
    return rows


def window_line(comparison: Comparison) -> str:
    span = f"{comparison.since} to {comparison.until or 'now'}"
    return f"window: {span}" + (f" ({comparison.window})" if comparison.window else "")


def table_text(comparison: Comparison) -> str:
    rows = table_rows(comparison)
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)) for row in rows)


def significance_text(comparison: Comparison) -> str:
    p_value = "-" if comparison.p_value is None else f"{comparison.p_value:.4g}"
    return f"{comparison.test or 'no test'}: p = {p_value} (alpha {comparison.alpha})"


def challenger_text(comparison: Comparison) -> str:
    if comparison.challenger is None:
        return ""
    return "\n".join(challenger_lines(comparison.challenger, comparison.a.name, comparison.b.name))


def text_sections(comparison: Comparison) -> list[str]:
    """The CLI's output, section by section; the verdict stays the last line."""
    return [
        window_line(comparison),
        table_text(comparison),
        challenger_text(comparison),
        significance_text(comparison),
        "\n".join(outcome_lines(comparison.business_outcomes)),
        f"verdict: {plain_verdict(comparison)}",
    ]


def format_table(comparison: Comparison) -> str:
    return "\n".join(section for section in text_sections(comparison) if section)


def table_html(comparison: Comparison) -> str:
    rows = table_rows(comparison)
    head = "".join(f"<th>{html.escape(cell)}</th>" for cell in rows[0])
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in rows[1:]
    )
    return f"<table><tr>{head}</tr>{body}</table><p>{html.escape(significance_text(comparison))}</p>"


def html_sections(comparison: Comparison) -> list[str]:
    """The HTML body after the heading, section by section."""
    challenger = comparison.challenger
    return [
        f"<p>{html.escape(window_line(comparison))}</p>",
        table_html(comparison),
        distribution_html(*comparison.distributions),
        "" if challenger is None else challenger_html(challenger, comparison.a.name, comparison.b.name),
        outcome_html(comparison.business_outcomes),
    ]


def to_html(comparison: Comparison) -> str:
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>A/B report</title>"
        "<style>body{font-family:sans-serif}td,th{padding:4px 12px;border-bottom:1px solid #ddd}</style>"
        f"</head><body><h1>A/B report: {html.escape(plain_verdict(comparison))}</h1>"
        + "".join(html_sections(comparison))
        + "</body></html>"
    )


def write_report(comparison: Comparison, folder: Path, stamp: str) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    json_path, html_path = folder / f"ab-{stamp}.json", folder / f"ab-{stamp}.html"
    json_path.write_text(json.dumps(comparison.to_dict(), indent=2))
    html_path.write_text(to_html(comparison))
    return json_path, html_path
