"""Build the scikit-learn Pipeline.

All preprocessing lives inside it, so serving never re-implements a transform.
"""

from __future__ import annotations

import importlib
from typing import Any

import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin, is_classifier, is_regressor
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from tabserve.errors import ConfigurationError
from tabserve.schema import FeatureSchema, datetime_parts
from tabserve.settings import EstimatorSettings

MISSING_CATEGORY = "__missing__"
TREE_WORDS = ("Tree", "Forest", "Boosting")


def make_estimator(spec: EstimatorSettings, task: str) -> BaseEstimator:
    """Instantiate the configured estimator class and check it fits the task."""
    module_name, _, class_name = spec.estimator.rpartition(".")
    try:
        estimator_class = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError, ValueError):
        raise ConfigurationError(f"training estimator {spec.estimator!r} cannot be imported") from None
    try:
        estimator = estimator_class(**spec.params)
    except TypeError as error:
        raise ConfigurationError(f"training estimator {spec.estimator!r}: {error}") from None
    expected = is_classifier if task == "classification" else is_regressor
    if not expected(estimator):
        raise ConfigurationError(f"{spec.estimator!r} is not a scikit-learn {task} estimator")
    return estimator


def needs_scaling(estimator: Any) -> bool:
    """Trees split on thresholds and do not care about scale; everything else gets standardised."""
    return not any(word in type(estimator).__name__ for word in TREE_WORDS)


class DatetimeParts(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """ISO date/time text columns -> their numeric parts (year, month, ..., hour, minute).

    `columns`: column -> (format, parts), decided at training (schema.FeatureSpec.dtype/parts):
    only the parts that varied in training are produced, so a date column of one year does not
    add a constant `year`.
    """

    def __init__(self, columns: dict[str, tuple[str, list[str]]]) -> None:
        self.columns = columns

    def fit(self, features: pd.DataFrame, target: Any = None) -> DatetimeParts:
        return self

    def transform(self, features: pd.DataFrame) -> pd.DataFrame:
        frames = [
            datetime_parts(features[name], dtype)[parts].add_prefix(f"{name}__")
            for name, (dtype, parts) in self.columns.items()
        ]
        return pd.concat(frames, axis=1) if frames else pd.DataFrame(index=features.index)

    def get_feature_names_out(self, input_features: Any = None) -> list[str]:
        return [f"{name}__{part}" for name, (_, parts) in self.columns.items() for part in parts]


def _numeric_steps(scale: bool) -> list[tuple[str, Any]]:
    steps: list[tuple[str, Any]] = [("impute", SimpleImputer(strategy="median", keep_empty_features=True))]
    if scale:
        steps.append(("scale", StandardScaler()))
    return steps


def make_preprocessor(schema: FeatureSchema, max_categories: int, scale: bool) -> Any:
    """Imputation (+ scaling) for numbers, imputation + one-hot for categories, numeric parts
    (then as numbers) for dates and times.

    With a single kind of column the ColumnTransformer is left out: on one row it costs
    ~1 ms of pure overhead, more than the model itself.
    """
    numeric = Pipeline(_numeric_steps(scale))
    categorical = Pipeline(
        [
            ("impute", SimpleImputer(strategy="constant", fill_value=MISSING_CATEGORY)),
            (
                "encode",
                OneHotEncoder(
                    handle_unknown="infrequent_if_exist",
                    max_categories=max_categories,
                    sparse_output=False,
                ),
            ),
        ]
    )
    dates = {spec.name: (spec.dtype, spec.parts or []) for spec in schema.features if spec.kind == "datetime"}
    dated = [name for name, (_, parts) in dates.items() if parts]
    if not dated and not schema.categorical:
        return numeric
    if not dated and not schema.numeric:
        return categorical
    branches = [
        ("numeric", numeric, schema.numeric),
        ("categorical", categorical, schema.categorical),
        (
            "datetime",
            Pipeline(
                [("parts", DatetimeParts({name: dates[name] for name in dated})), *_numeric_steps(scale)]
            ),
            dated,
        ),
    ]
    return ColumnTransformer(
        [branch for branch in branches if branch[2]], remainder="drop", verbose_feature_names_out=False
    )


def build_pipeline(schema: FeatureSchema, estimator: Any, max_categories: int) -> Pipeline:
    preprocess = make_preprocessor(schema, max_categories, needs_scaling(estimator))
    return Pipeline([("preprocess", preprocess), ("model", estimator)])
