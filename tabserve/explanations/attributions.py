"""What every method answers: attributions per row, column and explained output, with the
base value and the model's own output they add up to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

OutputSpace = Literal["log_odds", "probability", "target"]
# Exact methods must add up to the model's output to this (relative to the output's size).
EXACT_TOLERANCE = 1e-6


class AdditivityError(RuntimeError):
    """The attributions do not add up to the model's output: a bug or an unsupported model."""


@dataclass(frozen=True)
class Attributions:
    method: str
    output_space: OutputSpace
    columns: list[str]  # the columns the user sends, in schema order
    labels: list[str] | None  # multiclass: each output's class label as text; None: one output
    base: np.ndarray  # (outputs,)
    values: np.ndarray  # (rows, columns, outputs)
    outputs: np.ndarray  # (rows, outputs): the model's own output in `output_space`

    def gap(self) -> float:
        """Largest |base + sum(values) - output|, relative to max(1, |output|)."""
        if not len(self.outputs):
            return 0.0
        total = self.base[np.newaxis, :] + self.values.sum(axis=1)
        return float(np.max(np.abs(total - self.outputs) / np.maximum(1.0, np.abs(self.outputs))))

    def check(self, tolerance: float = EXACT_TOLERANCE) -> Attributions:
        gap = self.gap()
        if gap > tolerance:
            raise AdditivityError(
                f"{self.method}: base value + contributions miss the model's output by {gap:.3g} "
                f"(tolerance {tolerance:g})"
            )
        return self


def positive_or_all(values: np.ndarray, classes: int) -> np.ndarray:
    """(..., outputs): a two-class output keeps the positive class only (the last one)."""
    return values[..., -1:] if classes == 2 and values.shape[-1] == 2 else values
