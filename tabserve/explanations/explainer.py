"""One model's explainer: exact TreeSHAP when the estimator allows it, else the permutation
fallback; both on the same records `Predictor` scores, through the same Pipeline."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from tabserve.explanations import permutation, tree_shap
from tabserve.explanations.attributions import EXACT_TOLERANCE, Attributions, OutputSpace, positive_or_all
from tabserve.explanations.folding import fold, folding_matrix, output_owners
from tabserve.predictor import Predictor
from tabserve.schema import coerce_frame
from tabserve.settings import ExplanationSettings

BACKGROUND_SEED = 0


class Explainer:
    def __init__(self, predictor: Predictor, reference: pd.DataFrame, settings: ExplanationSettings) -> None:
        self.predictor = predictor
        self.settings = settings
        self.columns = predictor.schema.names
        self.preprocess, self.model = predictor.pipeline[:-1], predictor.pipeline[-1]
        self.fallback_reason = tree_shap.unsupported(self.model)
        self.classes = len(predictor.classes or ())
        labels = [str(label) for label in predictor.classes or ()]
        self.labels = labels if self.classes > 2 else None
        if self.fallback_reason is None:
            self.method = tree_shap.METHOD
            self.output_space: OutputSpace = tree_shap.output_space(self.model)
            self.tree = tree_shap.TreeShap(self.model)
            inputs = list(getattr(self.preprocess, "feature_names_in_", self.columns))
            owners = output_owners(self.preprocess, inputs)
            self.matrix = folding_matrix(owners, self.columns)
            self.tolerance = EXACT_TOLERANCE
        else:
            self.method = permutation.METHOD
            self.output_space = "probability" if predictor.is_classifier else "target"
            rows = min(settings.background_rows, len(reference))
            sample = reference.sample(n=rows, random_state=BACKGROUND_SEED) if rows else reference
            self.background = coerce_frame(sample, predictor.schema).reset_index(drop=True)
            # Additive by construction (see permutation.py); float error grows with the calls.
            self.tolerance = settings.permutation_tolerance

    def explain_records(self, records: list[dict[str, Any]]) -> Attributions:
        """Validated records (as `/predict` gets them) -> their attributions, checked for additivity."""
        return self.explain_frame(self.predictor.records_to_frame(records))

    def explain_frame(self, frame: pd.DataFrame) -> Attributions:
        """A frame of the schema's columns, coerced (`records_to_frame`, `coerce_frame`)."""
        if self.fallback_reason is None:
            matrix = np.asarray(self.preprocess.transform(frame), dtype=float)
            values, base = self.tree(matrix)
            values = fold(values, self.matrix)
            outputs = tree_shap.raw_output(self.model, matrix)
        else:
            text = [*self.predictor.schema.categorical, *self.predictor.schema.datetime]
            values, base, outputs = permutation.permutation_values(
                self._predict, frame[self.columns], self.background, text, self.settings.max_evals
            )
        return Attributions(
            method=self.method,
            output_space=self.output_space,
            columns=self.columns,
            labels=self.labels,
            base=positive_or_all(base, self.classes),
            values=positive_or_all(values, self.classes),
            outputs=positive_or_all(outputs, self.classes),
        ).check(self.tolerance)

    def _predict(self, frame: pd.DataFrame) -> np.ndarray:
        if self.predictor.is_classifier:
            return np.asarray(self.predictor.pipeline.predict_proba(frame), dtype=float)
        return np.asarray(self.predictor.pipeline.predict(frame), dtype=float).reshape(len(frame), 1)
