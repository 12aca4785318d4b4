"""Attribution drift of a window: does the model still lean on the columns it leaned on at training?

The window's rows are explained by the model (the same explainer as `/explain`), their mean
|attribution| per column compared with the one stored at training (training/attribution.py):
the nDCG of the window's ranking (alarm below `monitoring.attribution_ndcg_threshold`, 0.9 as
SageMaker Clarify) and each column's share change (explanations/ranking.py).
Not measured (None) for a model trained before it was stored, or without the `explain` extra.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from tabserve.explanations.explainer import Explainer
from tabserve.explanations.ranking import ATTRIBUTION_KEY, attribution_drift, global_attribution
from tabserve.model_store import StoredModel
from tabserve.schema import coerce_frame
from tabserve.settings import ExplanationSettings, MonitoringSettings

logger = logging.getLogger(__name__)
WINDOW_SEED = 0


def measure_attribution_drift(
    stored: StoredModel, window: pd.DataFrame, settings: MonitoringSettings
) -> dict[str, Any] | None:
    stored_view = stored.metadata.get(ATTRIBUTION_KEY)
    if stored_view is None or window.empty:
        return None
    explanations = ExplanationSettings(global_rows=settings.attribution_rows)
    try:
        explainer = Explainer(stored.load_predictor(), stored.load_reference(), explanations)
    except ModuleNotFoundError as error:
        if error.name != "shap":
            raise
        logger.warning("attribution drift not measured: the 'explain' extra (shap) is not installed")
        return None
    features = coerce_frame(window, stored.schema)
    measured = global_attribution(explainer, features, WINDOW_SEED)
    block = attribution_drift(
        stored_view["mean_abs"], measured["mean_abs"], settings.attribution_ndcg_threshold
    )
    return {**block, "method": measured["method"], "rows": measured["rows"]}
