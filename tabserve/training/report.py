"""What training prints: each metric beside its baseline and the previous version, per-class figures."""

from __future__ import annotations

from typing import Any

from tabserve.training.personal_columns import personal_columns, suggestion_lines
from tabserve.training.trainer import TrainingResult


def _number(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def report_lines(result: TrainingResult) -> list[str]:
    lines = [f"saved {result.tag} ({result.task}, {result.rows} rows)"]
    if result.schema is not None:
        kinds = ", ".join(f"{f.name} ({f.kind})" for f in result.schema.features)
        lines.append(f"features: {kinds}")
    if result.dropped:
        lines.append(f"not used (see the warnings above): {', '.join(result.dropped)}")
    lines += suggestion_lines(personal_columns(result.schema, result.dropped))
    if result.classes is not None:
        lines.append(f"classes: {', '.join(map(str, result.classes))}")
    previous_tag, previous = result.previous or ("", {})
    header = f"  {'metric':<10} {'model':>8} {'baseline':>9}"
    lines.append(header + (f"  previous ({previous_tag})" if previous else ""))
    for name, value in result.metrics.items():
        row = f"  {name:<10} {_number(value):>8} {_number(result.baseline.get(name, '-')):>9}"
        if name in previous:
            row += f"  {_number(previous[name])} ({value - previous[name]:+.4f})"
        lines.append(row)
    lines.append(
        "  baseline: always the majority class"
        if result.classes is not None
        else "  baseline: always the training mean"
    )
    if result.positive_class is not None:
        lines.append(f"  f1 is the F1 of class {result.positive_class!r} (the positive class)")
    elif result.classes is not None:
        lines.append("  f1 is the macro average over the classes")
    if result.per_class:
        lines.append(f"  {'class':<16} {'precision':>9} {'recall':>8} {'f1':>8} {'support':>8}")
        for label, figures in result.per_class.items():
            lines.append(
                f"  {label:<16} {figures['precision']:>9.4f} {figures['recall']:>8.4f} "
                f"{figures['f1']:>8.4f} {int(figures['support']):>8}"
            )
    return lines + importance_lines(result)


def importance_lines(result: TrainingResult) -> list[str]:
    """Per column, most moving first: mean |attribution| (how far it moves the output on the
    reference sample) beside permutation importance (how much quality depends on it)."""
    if not result.importance:
        return []
    attribution = result.attribution or {}
    order = sorted(result.importance, key=lambda c: (-attribution.get(c, 0.0), -result.importance[c], c))
    lines = [f"  {'column':<28} {'mean |attribution|':>18} {'permutation':>12}"]
    for column in order:
        moved = f"{attribution[column]:.4f}" if column in attribution else "-"
        lines.append(f"  {column:<28} {moved:>18} {result.importance[column]:>12.4f}")
    if result.attribution is None:
        lines.append("  mean |attribution|: not measured (the 'explain' extra, shap, is not installed)")
    return lines
