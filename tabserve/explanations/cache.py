"""One explainer per model version in a process, built on first use.

Built once because building is the costly part: shap's TreeExplainer copies every tree, the
fallback loads the reference sample (and compiles shap's numba code on its first call).
"""

from __future__ import annotations

import threading

from tabserve.explanations.explainer import Explainer
from tabserve.model_store import StoredModel
from tabserve.predictor import Predictor
from tabserve.settings import ExplanationSettings

EXTRA_HINT = "explanations need the 'explain' extra: pip install 'tabserve[explain]' (shap)"


class ExplanationsUnavailableError(RuntimeError):
    """The optional `shap` library is not installed."""


class Explainers:
    def __init__(self, settings: ExplanationSettings) -> None:
        self.settings = settings
        self._built: dict[str, Explainer] = {}
        self._lock = threading.Lock()

    def get(self, stored: StoredModel, predictor: Predictor | None = None) -> Explainer:
        """The model's explainer; `predictor`: the one already loaded for scoring, if any."""
        with self._lock:
            found = self._built.get(stored.tag)
            if found is None:
                try:
                    found = Explainer(
                        predictor or stored.load_predictor(), stored.load_reference(), self.settings
                    )
                except ModuleNotFoundError as error:
                    if error.name != "shap":
                        raise
                    raise ExplanationsUnavailableError(EXTRA_HINT) from None
                self._built[stored.tag] = found
            return found
