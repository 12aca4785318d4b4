"""The global view of the explanations, measured at training: mean |attribution| per column on
the reference sample, stored with the model beside permutation importance.

The two answer different questions: permutation importance, how much the model's quality
depends on a column (held-out rows, labels); mean |attribution|, how far a column moves the
model's output on typical rows (no labels needed, so `tabserve monitor` can measure it again on
a live window and compare: monitoring/attribution_drift.py).
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from tabserve.explanations.cache import EXTRA_HINT
from tabserve.explanations.explainer import Explainer
from tabserve.explanations.ranking import ATTRIBUTION_KEY, global_attribution
from tabserve.predictor import Predictor
from tabserve.schema import coerce_frame
from tabserve.settings import Settings

__all__ = ["ATTRIBUTION_KEY", "attribution_importance"]
logger = logging.getLogger(__name__)


def attribution_importance(
    predictor: Predictor, reference: pd.DataFrame, settings: Settings, seed: int
) -> dict[str, Any] | None:
    """Mean |attribution| per column on the reference sample; None (with a warning) without shap."""
    try:
        explainer = Explainer(predictor, reference, settings.serving.explanations)
    except ModuleNotFoundError as error:
        if error.name != "shap":
            raise
        logger.warning("no attribution importance stored: %s", EXTRA_HINT)
        return None
    return global_attribution(explainer, coerce_frame(reference, predictor.schema), seed)
