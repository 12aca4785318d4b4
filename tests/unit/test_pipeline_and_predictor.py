from typing import Any

import numpy as np
import pandas as pd
import pytest

from tabserve.errors import ConfigurationError
from tabserve.pipeline import build_pipeline, make_estimator, needs_scaling
from tabserve.predictor import PREDICTION_COLUMN, Predictor
from tabserve.schema import coerce_frame, infer_schema
from tabserve.settings import EstimatorSettings
from tests.factories import mixed_frame

LOGISTIC = EstimatorSettings(estimator="sklearn.linear_model.LogisticRegression")


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    frame = mixed_frame().rename(columns=lambda name: name.strip()).replace("?", np.nan)
    features, target = frame.drop(columns=["label"]), frame["label"]
    schema = infer_schema(features)
    pipeline = build_pipeline(schema, make_estimator(LOGISTIC, "classification"), max_categories=10)
    pipeline.fit(coerce_frame(features, schema), target)
    return Predictor(pipeline, schema, tag="t:1", classes=tuple(pipeline.classes_.tolist()))


def test_missing_values_and_unseen_categories_still_score(predictor: Predictor) -> None:
    records: list[dict[str, Any]] = [
        {"income": None, "age": 30.0, "city": "paris"},
        {"income": 40.0, "age": None, "city": "tokyo"},  # never seen in training
        {"income": 40.0, "age": 50.0, "city": None},
    ]
    results = predictor.predict_records(records)
    assert [set(result) for result in results] == [{"prediction", "probabilities"}] * 3
    for result in results:
        assert result["prediction"] in ("yes", "no")
        assert sum(result["probabilities"].values()) == pytest.approx(1.0)


def test_the_model_learned_the_direction_of_income(predictor: Predictor) -> None:
    low, high = predictor.predict_records(
        [{"income": 10.0, "age": 40.0, "city": "lyon"}, {"income": 95.0, "age": 40.0, "city": "lyon"}]
    )
    assert low["probabilities"]["yes"] < 0.2 < 0.8 < high["probabilities"]["yes"]


def test_records_and_frame_paths_agree(predictor: Predictor) -> None:
    records = [{"income": float(i * 7), "age": 30.0, "city": c} for i, c in enumerate(["nice", "paris"] * 5)]
    by_record = predictor.predict_records(records)
    by_frame = predictor.predict_frame(pd.DataFrame(records))
    assert by_frame[PREDICTION_COLUMN].tolist() == [result["prediction"] for result in by_record]
    assert by_frame["probability_yes"].tolist() == pytest.approx(
        [r["probabilities"]["yes"] for r in by_record]
    )


def test_estimator_must_fit_the_task() -> None:
    with pytest.raises(ConfigurationError, match="not a scikit-learn regression estimator"):
        make_estimator(LOGISTIC, "regression")
    with pytest.raises(ConfigurationError, match="cannot be imported"):
        make_estimator(EstimatorSettings(estimator="sklearn.nothing.Here"), "classification")


def test_only_non_tree_models_are_scaled() -> None:
    forest = make_estimator(
        EstimatorSettings(estimator="sklearn.ensemble.RandomForestClassifier"), "classification"
    )
    assert needs_scaling(make_estimator(LOGISTIC, "classification")) and not needs_scaling(forest)
