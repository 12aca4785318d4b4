"""The API's `explanation` object, one per row: pure.

`{"method", "output_space", "base_value", "output", "contributions": {column: number}}`; for a
binary classifier these refer to the positive class (the second of the model's classes); for
multiclass `base_value`, `output` and `contributions` are keyed by the class label's text.
"""

from __future__ import annotations

from typing import Any

from tabserve.explanations.attributions import Attributions


def explanations(attributions: Attributions) -> list[dict[str, Any]]:
    return [_row(attributions, index) for index in range(len(attributions.outputs))]


def _row(found: Attributions, index: int) -> dict[str, Any]:
    values, outputs = found.values[index], found.outputs[index]

    def contributions(output: int) -> dict[str, float]:
        return {column: float(values[position, output]) for position, column in enumerate(found.columns)}

    head = {"method": found.method, "output_space": found.output_space}
    if found.labels is None:
        return {
            **head,
            "base_value": float(found.base[0]),
            "output": float(outputs[0]),
            "contributions": contributions(0),
        }
    return {
        **head,
        "base_value": {label: float(found.base[k]) for k, label in enumerate(found.labels)},
        "output": {label: float(outputs[k]) for k, label in enumerate(found.labels)},
        "contributions": {label: contributions(k) for k, label in enumerate(found.labels)},
    }
