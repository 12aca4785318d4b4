"""The decision rule on hand-made comparisons: each condition decides, and says so; the report."""

from __future__ import annotations

import json

import pytest

from tabserve.retraining.decision import (
    ACCEPT,
    BETTER,
    NO_EVIDENCE,
    NON_INFERIOR,
    REJECT,
    TOO_SMALL,
    WORSE,
    DecisionRule,
    decide,
    verdict_json,
    verdict_table,
)
from tabserve.retraining.paired_tests import MCNEMAR_TEST, PAIRED_T_TEST, MetricComparison


def accuracy(difference: float, low: float, high: float, p: float) -> MetricComparison:
    return MetricComparison(
        "accuracy", 0.80, 0.80 + difference, difference, low, high, p, MCNEMAR_TEST, True,
        primary=True, confidence=0.95, discordant=(30, 10), rows=1000,
    )  # fmt: skip


def log_loss(difference: float, low: float, high: float) -> MetricComparison:
    return MetricComparison(
        "log_loss", 0.45, 0.45 + difference, difference, low, high, None, "paired bootstrap, 2,000 resamples",
        False, confidence=0.95, rows=1000,
    )  # fmt: skip


def auc(low: float, high: float) -> MetricComparison:
    return MetricComparison(
        "roc_auc", 0.85, 0.86, 0.01, low, high, None, "paired bootstrap, 2,000 resamples", True, rows=1000
    )


GOOD_ACCURACY = accuracy(0.02, 0.008, 0.032, 0.0011)


def test_accepts_when_the_primary_is_better_and_the_others_within_their_margins() -> None:
    verdict = decide([GOOD_ACCURACY, log_loss(0.005, -0.004, 0.015), auc(0.002, 0.018)], DecisionRule())
    assert verdict.accepted and verdict.word == ACCEPT
    assert verdict.metric_verdicts == {"accuracy": BETTER, "log_loss": NON_INFERIOR, "roc_auc": BETTER}
    assert "McNemar exact (one-sided) p = 0.0011, below alpha 0.05" in verdict.reason


def test_no_evidence_on_the_primary_rejects_and_names_the_test() -> None:
    verdict = decide([accuracy(0.004, -0.01, 0.02, 0.41), log_loss(-0.01, -0.02, 0.0)], DecisionRule())
    assert not verdict.accepted and verdict.word == REJECT
    assert verdict.reason == (
        "no evidence the challenger is better on accuracy:"
        " McNemar exact (one-sided) p = 0.41, not below alpha 0.05"
    )
    assert verdict.metric_verdicts["accuracy"] == NO_EVIDENCE


def test_a_worse_primary_is_called_worse() -> None:
    verdict = decide([accuracy(-0.03, -0.045, -0.015, 0.999), log_loss(0.0, -0.01, 0.01)], DecisionRule())
    assert verdict.metric_verdicts["accuracy"] == WORSE
    assert verdict.reason.startswith("the challenger is worse on accuracy: -0.03")


def test_a_significant_gain_below_the_minimum_improvement_rejects() -> None:
    verdict = decide([GOOD_ACCURACY, log_loss(0.0, -0.01, 0.01)], DecisionRule(min_improvement=0.03))
    assert not verdict.accepted
    assert verdict.metric_verdicts["accuracy"] == TOO_SMALL
    assert "by 0.02, less than the minimum improvement 0.03" in verdict.reason


@pytest.mark.parametrize(
    ("interval", "verdict"),
    [
        ((-0.01, 0.019), NON_INFERIOR),
        ((0.005, 0.03), WORSE),
        ((-0.01, 0.03), NO_EVIDENCE),
        ((-0.03, -0.01), BETTER),
    ],
)
def test_a_secondary_metric_beyond_its_margin_rejects(interval: tuple[float, float], verdict: str) -> None:
    """log loss: lower is better, margin 0.02; the interval is of challenger - champion."""
    low, high = interval
    decided = decide([GOOD_ACCURACY, log_loss((low + high) / 2, low, high)], DecisionRule())
    assert decided.metric_verdicts["log_loss"] == verdict
    assert decided.accepted is (verdict in (NON_INFERIOR, BETTER))
    if not decided.accepted:
        assert decided.reason == (
            f"log loss could be worse by up to {high:.4g} (95% interval), more than its margin 0.02"
        )


def test_an_auc_no_replicate_could_measure_rejects() -> None:
    verdict = decide([GOOD_ACCURACY, auc(float("nan"), float("nan"))], DecisionRule())
    assert not verdict.accepted and verdict.metric_verdicts["roc_auc"] == NO_EVIDENCE
    assert verdict.reason == "ROC AUC could not be measured on the bootstrap replicates"


def test_rmse_margin_is_a_share_of_the_champions_rmse() -> None:
    mae = MetricComparison("mae", 10.0, 9.0, -1.0, -1.5, -0.5, 0.001, PAIRED_T_TEST, False, primary=True)
    rmse = MetricComparison("rmse", 20.0, 20.5, 0.5, -0.2, 0.9, None, "paired bootstrap", False)
    verdict = decide([mae, rmse], DecisionRule())  # margin 5% of 20 = 1.0: up to 0.9 worse is fine
    assert verdict.accepted and verdict.margins == {"rmse": 1.0}
    assert not decide([mae, rmse], DecisionRule(relative_margins={"rmse": 0.04})).accepted
    assert decide([mae, rmse], DecisionRule(margins={"rmse": 0.95})).accepted  # an absolute margin wins


def test_the_rule_refuses_what_it_cannot_judge() -> None:
    narrow = accuracy(0.02, 0.01, 0.03, 0.001)
    narrow = MetricComparison(**{**narrow.__dict__, "confidence": 0.90})
    with pytest.raises(ValueError, match="below 95% confidence"):
        decide([narrow], DecisionRule(alpha=0.05))
    assert decide([narrow], DecisionRule(alpha=0.10)).accepted
    with pytest.raises(ValueError, match="one primary metric"):
        decide([log_loss(0.0, -0.01, 0.01)], DecisionRule())
    with pytest.raises(ValueError, match="no non-inferiority margin"):
        decide([GOOD_ACCURACY, log_loss(0.0, -0.01, 0.01)], DecisionRule(margins={}))
    with pytest.raises(ValueError, match="alpha"):
        DecisionRule(alpha=0.5)


def test_the_table_says_the_verdict_first_and_cuts_no_text() -> None:
    verdict = decide([GOOD_ACCURACY, log_loss(0.005, -0.004, 0.015), auc(0.002, 0.018)], DecisionRule())
    lines = verdict_table(verdict, "churn:old", "churn:new", 1000).splitlines()
    assert lines[0] == f"ACCEPT: {verdict.reason}"
    assert "champion churn:old  challenger churn:new  held-out rows 1,000  alpha 0.05" in lines[1]
    header, *rows = lines[2:]
    assert header.split() == [
        "metric", "champion", "challenger", "difference", "95%", "interval",
        "p-value", "test", "required", "verdict",
    ]  # fmt: skip
    assert [row.split()[0] for row in rows] == ["accuracy", "log", "ROC"]
    accuracy_row = rows[0]
    cells = ("0.8000", "0.8200", "+0.0200", "[+0.0080, +0.0320]", "p = 0.0011")
    assert all(cell in accuracy_row for cell in cells)
    assert rows[1].endswith("worse by < 0.0200  non-inferior")
    # every cell starts under its header: the columns are as wide as their widest cell
    assert accuracy_row[header.index("p-value") :].startswith("p = 0.0011")
    assert accuracy_row[header.index("test") :].startswith("McNemar exact (one-sided), discordant 30 vs 10  ")
    assert rows[1][header.index("p-value") :].startswith("-")
    verdict_column = header.index("verdict")
    assert all(row[verdict_column:].strip() in (BETTER, NON_INFERIOR) for row in rows)


def test_the_json_has_plain_types_and_no_nan() -> None:
    verdict = decide([GOOD_ACCURACY, auc(float("nan"), float("nan"))], DecisionRule())
    record = verdict_json(verdict)
    text = json.dumps(record, allow_nan=False)
    assert json.loads(text) == record
    assert record["verdict"] == REJECT and record["accepted"] is False
    auc_record = record["metrics"][1]
    assert auc_record["interval"] == [None, None] and auc_record["p_value"] is None
    assert auc_record["verdict"] == NO_EVIDENCE and auc_record["margin"] == 0.01
    assert record["metrics"][0]["discordant"] == [30, 10]
    assert record["rule"]["alpha"] == 0.05
