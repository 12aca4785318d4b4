"""The drift job's terminal output: per feature (most important first), each reason, the verdict.

It says what the HTML report's verdict section says (report_verdict.py), from the same result.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tabserve.monitoring.drift import VERDICT_NOT_ENOUGH, DriftResult, Reason

if TYPE_CHECKING:
    from tabserve.monitoring.job import RunOutput

PREDICTION_ROW = "(prediction)"


def variant_text(variant: str | None) -> str:
    return f" (variant {variant})" if variant else ""


def reason_status(reason: Reason) -> str:
    return {True: "ALARM", False: "ok", None: "not judged"}[reason.fired]


def ordered_features(result: DriftResult) -> list[str]:
    """Most important first when the model recorded importance; else as the schema lists them."""
    weights = result.importance or {}
    return sorted(result.features, key=lambda name: -weights.get(name, 0.0))


def share_text(result: DriftResult) -> str:
    drifted, total = len(result.drifted_features), len(result.features)
    text = f"drifted features: {drifted}/{total} (share {result.drift_share:.2f}"
    judgement = result.data_drift
    if judgement is not None and judgement.weighted_drift_share is not None:
        text += f", importance-weighted {judgement.weighted_drift_share:.2f}"
    return text + ")"


def _feature_lines(result: DriftResult) -> list[str]:
    """One line per column; the name and method columns as wide as their longest entry (a cut
    name is ambiguous: "Wasserstein distance (norm", two features sharing their first letters)."""
    weights = result.importance or {}
    rows = [(name, result.features[name]) for name in ordered_features(result)]
    if result.prediction is not None:
        rows.append((PREDICTION_ROW, result.prediction))
    names = max([len("feature"), *(len(name) for name, _ in rows)])
    methods = max([len("method"), *(len(column.method) for _, column in rows)])
    lines = [
        f"{'feature':<{names}} {'importance':>10} {'method':<{methods}} {'score':>10} {'threshold':>9}  drift"
    ]
    for name, column in rows:
        share = f"{weights[name]:.1%}" if name in weights else "-"
        flag = "DRIFT" if column.drifted else "-"
        lines.append(
            f"{name:<{names}} {share:>10} {column.method:<{methods}} {column.score:>10.4g}"
            f" {column.threshold:>9.3g}  {flag}"
        )
    return lines


def format_table(output: RunOutput) -> str:
    result, summary = output.result, output.summary
    lines = [
        f"model {summary['model']}{variant_text(summary['variant'])}  window {summary['window']}"
        f"  rows {summary['window_rows']} (sampled {summary['sampled_rows']})"
        f"  reference {result.reference_rows}",
    ]
    if result.verdict == VERDICT_NOT_ENOUGH:
        return "\n".join([*lines, f"NOT ENOUGH DATA: {result.message}  summary: {output.summary_path}"])
    lines += _feature_lines(result)
    lines.append(share_text(result))
    lines += [f"  {reason.kind}: {reason_status(reason)} - {reason.detail}" for reason in result.reasons()]
    lines.append(f"verdict: {result.verdict.upper()}  report: {output.html}  summary: {output.summary_path}")
    return "\n".join(lines)
