"""A/B report: verdict, intervals and the challenger diff, on a SQLite log with known outcomes."""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine

from tabserve.deployment.ab_report import (
    A_BETTER,
    B_BETTER,
    NO_DIFFERENCE,
    NOT_ENOUGH,
    compare_variants,
    format_table,
    write_report,
)
from tabserve.deployment.challenger_diff import PAIRED, UNPAIRED
from tabserve.deployment.charts import SVG_NS
from tabserve.deployment.report_data import current_tag, policy_applied
from tabserve.deployment.store import Change, insert_stats, prune_stats, write_state
from tabserve.deployment.variant_stats import StatsCollector
from tabserve.predictions.bulk_insert import insert_rows
from tabserve.predictions.migration import upgrade as upgrade_schema
from tabserve.predictions.store import make_engine, set_labels
from tabserve.predictions.tables import SHADOW_SUFFIX

SINCE = datetime.now(UTC) - timedelta(hours=1)


def log(engine: Engine, variant: str, rows: int, accuracy: float, seed: int, labelled: bool = True) -> None:
    rng = np.random.default_rng(seed)
    now = datetime.now(UTC)
    predictions = rng.choice(["yes", "no"], rows)
    correct = rng.random(rows) < accuracy
    records: list[dict[str, str | float | datetime | dict[str, float]]] = [
        {
            "request_id": f"{variant}-{i}",
            "ts": now,
            "model": f"m:{variant}",
            "variant": variant,
            "features": {"x": 1.0},
            "prediction": str(predictions[i]),
        }
        for i in range(rows)
    ]
    insert_rows(engine, records)
    if labelled:
        flipped = {"yes": "no", "no": "yes"}
        set_labels(
            engine,
            {
                str(r["request_id"]): str(r["prediction"]) if ok else flipped[str(r["prediction"])]
                for r, ok in zip(records, correct, strict=True)
            },
        )
    stats = StatsCollector()
    for latency in rng.lognormal(1, 0.5, rows):
        stats.record(variant, f"m:{variant}", latency / 1000)
    insert_stats(engine, stats.drain())


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'log.db'}")
    upgrade_schema(engine)
    return engine


@pytest.mark.parametrize(
    ("accuracy_a", "accuracy_b", "verdict", "in_words"),
    [
        (0.80, 0.90, B_BETTER, "B is better than A: accuracy 0."),
        (0.90, 0.80, A_BETTER, "B is worse than A: accuracy 0."),
        (0.85, 0.85, NO_DIFFERENCE, "no evidence that B's accuracy differs from A's: accuracy 0."),
    ],
)
def test_verdicts(
    engine: Engine, accuracy_a: float, accuracy_b: float, verdict: str, in_words: str, tmp_path: Path
) -> None:
    log(engine, "a", 2000, accuracy_a, seed=1)
    log(engine, "b", 2000, accuracy_b, seed=2)
    comparison = compare_variants(engine, ("a", "b"), True, SINCE, min_labels=50)
    assert comparison.verdict == verdict and comparison.a.requests == 2000
    assert comparison.a.quality is not None and comparison.a.quality.low < accuracy_a + 0.03
    assert set(comparison.b.predictions) == {"no", "yes"}
    p50, p99 = comparison.a.latency_ms["p50"], comparison.a.latency_ms["p99"]
    assert p50 is not None and p99 is not None and p99 > p50
    if verdict != NO_DIFFERENCE:
        assert comparison.p_value is not None and comparison.p_value < 0.001
    table = format_table(comparison)
    assert f"verdict: {in_words}" in table and "accuracy (95% CI)" in table
    last = table.splitlines()[-1]
    assert last.endswith("(p < 0.001)") if verdict != NO_DIFFERENCE else re.search(r"\(p = 0\.\d+\)$", last)
    json_path, html_path = write_report(comparison, tmp_path / "reports", "x")
    assert html.escape(in_words) in html_path.read_text() and json_path.stat().st_size > 0


def test_without_labels_there_is_no_verdict(engine: Engine) -> None:
    log(engine, "a", 300, 0.9, seed=1, labelled=False)
    log(engine, "b", 300, 0.9, seed=2, labelled=False)
    comparison = compare_variants(engine, ("a", "b"), True, SINCE, min_labels=50)
    assert comparison.verdict == NOT_ENOUGH and comparison.p_value is None and comparison.a.logged == 300
    assert format_table(comparison).endswith("verdict: not enough labels to compare accuracy (A 0, B 0)")


def test_old_variant_numbers_are_pruned(engine: Engine) -> None:
    log(engine, "a", 10, 0.9, seed=1, labelled=False)
    assert prune_stats(engine, datetime.now(UTC) - timedelta(days=1)) == 0
    assert prune_stats(engine, datetime.now(UTC) + timedelta(seconds=1)) == 1
    assert compare_variants(engine, ("a", "b"), True, SINCE, min_labels=50).a.requests == 0


def log_shadowed(engine: Engine, rows: int, flip_every: int | None, seed: int) -> None:
    """Champion answers `rows` requests, candidate scores the same ones as shadow copies."""
    rng = np.random.default_rng(seed)
    now = datetime.now(UTC)
    labels = rng.choice(["0", "1"], rows)
    positive = rng.random(rows)
    records = []
    for i in range(rows):
        flipped = flip_every is not None and i % flip_every == 0
        shadow_label = {"0": "1", "1": "0"}[labels[i]] if flipped else labels[i]
        for variant, request_id, label in (
            ("champion", f"r-{i}", labels[i]),
            ("candidate", f"r-{i}{SHADOW_SUFFIX}", shadow_label),
        ):
            probabilities = {"0": 1 - float(positive[i]), "1": float(positive[i])}
            records.append(
                {
                    "request_id": request_id,
                    "ts": now,
                    "model": f"cancer:{variant}-v1",
                    "variant": variant,
                    "features": {"x": float(i)},
                    "prediction": str(label),
                    "probabilities": probabilities,
                }
            )
    insert_rows(engine, records)
    stats = StatsCollector()
    for variant in ("champion", "candidate"):
        for latency in rng.lognormal(1, 0.3, rows):
            stats.record(variant, f"cancer:{variant}-v1", latency / 1000)
    insert_stats(engine, stats.drain())


def svgs(page: str) -> list[ET.Element]:
    return [ET.fromstring(found) for found in re.findall(r"<svg.*?</svg>", page, flags=re.S)]


def test_a_shadow_is_compared_on_the_same_requests(engine: Engine, tmp_path: Path) -> None:
    log_shadowed(engine, 400, flip_every=4, seed=3)
    comparison = compare_variants(engine, ("champion", "candidate"), True, SINCE, min_labels=50)
    diff = comparison.challenger
    assert diff is not None and diff.mode == PAIRED and diff.pairs == 400
    assert diff.agreement == 0.75  # every fourth label flipped
    assert diff.probability_delta is not None and diff.probability_delta.mean == 0.0
    assert comparison.a.tags == {"cancer:champion-v1": 400}
    text = format_table(comparison)
    assert "A: champion (cancer:champion-v1)" in text and "B: candidate (cancer:candidate-v1)" in text
    assert "on the same 400 requests (shadow)" in text and "agreement" in text and "0.750 of 400" in text
    assert text.splitlines()[-1].startswith("verdict: ")
    _, html_path = write_report(comparison, tmp_path, "x")
    charts = svgs(html_path.read_text())
    assert len(charts) == 2  # the distributions per variant, the histogram of probability deltas
    distribution_bars = [r for r in charts[0].iter(f"{{{SVG_NS}}}rect") if r.get("class") == "bar"]
    assert {(r.get("data-series"), r.get("data-category")) for r in distribution_bars} == {
        (variant, label) for variant in ("champion", "candidate") for label in ("0", "1")
    }


def test_split_traffic_says_pairing_is_impossible(engine: Engine, tmp_path: Path) -> None:
    log(engine, "a", 300, 0.9, seed=1, labelled=False)
    log(engine, "b", 300, 0.9, seed=2, labelled=False)
    comparison = compare_variants(engine, ("a", "b"), True, SINCE, min_labels=50)
    assert comparison.challenger is not None and comparison.challenger.mode == UNPAIRED
    text = format_table(comparison)
    assert "no request was scored by both variants" in text and "prediction PSI" in text
    assert "\n  agreement" not in text and "latency delta" in text
    _, html_path = write_report(comparison, tmp_path, "x")
    assert len(svgs(html_path.read_text())) == 1  # distributions only: there are no deltas to plot


def test_the_policy_time_is_the_current_versions(engine: Engine) -> None:
    assert policy_applied(engine) is None
    before = datetime.now(UTC)
    state = {"policy": {"strategy": "shadow", "champion": "a", "candidate": "b"}}
    version = write_state(engine, None, state, Change("test", "init", "test"))
    version = write_state(engine, version, state, Change("test", "set", "test"))
    applied = policy_applied(engine)
    assert applied is not None and applied[0] == version == 2
    assert before <= applied[1] <= datetime.now(UTC)


def test_the_shadow_may_be_named_as_a(engine: Engine) -> None:
    log_shadowed(engine, 200, flip_every=2, seed=4)
    forward = compare_variants(engine, ("champion", "candidate"), True, SINCE, min_labels=50).challenger
    reverse = compare_variants(engine, ("candidate", "champion"), True, SINCE, min_labels=50).challenger
    assert forward is not None and reverse is not None and reverse.mode == PAIRED
    assert forward.agreement == reverse.agreement == 0.5 and reverse.pairs == 200


def test_a_regressor_shadow_agrees_within_the_tolerance(engine: Engine) -> None:
    now = datetime.now(UTC)
    values = np.linspace(0.0, 100.0, 200)
    rows: list[dict[str, Any]] = []
    for i, value in enumerate(values):
        shadow_value = float(value) + (5.0 if i % 4 == 0 else 0.0)  # a quarter moved by 5
        rows.append(
            {
                "request_id": f"r-{i}",
                "ts": now,
                "model": "price:v1",
                "variant": "champion",
                "features": {"x": i},
                "prediction": float(value),
            }
        )
        rows.append(
            {
                "request_id": f"r-{i}{SHADOW_SUFFIX}",
                "ts": now,
                "model": "price:v2",
                "variant": "candidate",
                "features": {"x": i},
                "prediction": shadow_value,
            }
        )
    insert_rows(engine, rows)
    comparison = compare_variants(
        engine, ("champion", "candidate"), False, SINCE, min_labels=50, tolerance=1.0
    )
    diff = comparison.challenger
    assert diff is not None and diff.pairs == 200 and diff.agreement == 0.75 and diff.tolerance == 1.0
    assert diff.mean_abs_difference == pytest.approx(1.25) and diff.probability_delta is None
    categories, shares = comparison.distributions
    assert len(categories) == 10 and sum(shares["champion"]) == pytest.approx(1.0)
    assert "within 1; mean |difference| 1.2500" in format_table(comparison)


def log_model(engine: Engine, variant: str, model: str, rows: int, label: str) -> None:
    now = datetime.now(UTC)
    records = [
        {
            "request_id": f"{model}-{i}",
            "ts": now,
            "model": model,
            "variant": variant,
            "features": {"x": 1.0},
            "prediction": label,
        }
        for i in range(rows)
    ]
    insert_rows(engine, records)
    stats = StatsCollector()
    for _ in range(rows):
        stats.record(variant, model, 0.002)
    insert_stats(engine, stats.drain())


def test_only_the_current_models_rows_count_when_asked(engine: Engine) -> None:
    log_model(engine, "champion", "m:old", 100, "no")  # an earlier run under the same name
    log_model(engine, "champion", "m:new", 50, "yes")
    log_model(engine, "candidate", "c:v1", 40, "yes")
    assert current_tag(engine, "champion") == "m:new"
    assert current_tag(engine, "champion", until=datetime.now(UTC) - timedelta(hours=2)) is None
    mixed = compare_variants(engine, ("champion", "candidate"), True, SINCE, min_labels=50)
    assert mixed.a.tags == {"m:old": 100, "m:new": 50} and mixed.a.logged == 150 and mixed.a.requests == 150
    assert "A: champion (m:old (100), m:new (50))" in format_table(mixed)
    current = compare_variants(
        engine, ("champion", "candidate"), True, SINCE, min_labels=50, models=("m:new", "c:v1")
    )
    assert current.a.tags == {"m:new": 50} and current.a.logged == 50 and current.a.requests == 50
    assert current.a.predictions == {"yes": 1.0} and current.b.logged == 40
    assert current.challenger is not None and current.challenger.psi == 0.0  # both all "yes"
