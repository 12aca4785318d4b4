from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline

from tabserve.explanations.answers import explanations
from tabserve.explanations.explainer import Explainer
from tabserve.predictor import Predictor
from tabserve.schema import infer_schema
from tabserve.settings import ExplanationSettings
from tests.unit.explanations.tables import fitted_predictor

SETTINGS = ExplanationSettings(background_rows=16, max_evals=64)
COLUMNS = ["income", "age", "city", "day"]
ENSEMBLE = "sklearn.ensemble."
CASES = [
    # estimator, kind, method, output space
    ("HistGradientBoostingClassifier", "binary", "tree_shap", "log_odds"),
    ("HistGradientBoostingClassifier", "multiclass", "tree_shap", "log_odds"),
    ("HistGradientBoostingRegressor", "regression", "tree_shap", "target"),
    ("RandomForestClassifier", "binary", "tree_shap", "probability"),
    ("RandomForestClassifier", "multiclass", "tree_shap", "probability"),
    ("RandomForestRegressor", "regression", "tree_shap", "target"),
    ("ExtraTreesClassifier", "binary", "tree_shap", "probability"),
    ("ExtraTreesRegressor", "regression", "tree_shap", "target"),
    ("GradientBoostingClassifier", "binary", "tree_shap", "log_odds"),
    ("GradientBoostingClassifier", "multiclass", "permutation", "probability"),  # shap: two classes only
    ("GradientBoostingRegressor", "regression", "tree_shap", "target"),
]


def _params(name: str) -> dict[str, Any]:
    return {"max_iter": 20} if name.startswith("Hist") else {"n_estimators": 20, "random_state": 0}


@pytest.mark.parametrize(("name", "kind", "method", "space"), CASES)
def test_contributions_add_up_to_the_models_own_output(name: str, kind: str, method: str, space: str) -> None:
    predictor, features = fitted_predictor(ENSEMBLE + name, kind, _params(name))
    explainer = Explainer(predictor, features, SETTINGS)
    rows = features.iloc[:8].reset_index(drop=True)
    found = explainer.explain_frame(rows)
    assert (found.method, found.output_space) == (method, space)
    assert found.gap() < 1e-6
    # The output is the model's own, not shap's: probability, decision function or prediction.
    model, matrix = predictor.pipeline[-1], predictor.pipeline[:-1].transform(rows)
    if space == "probability":
        expected = predictor.pipeline.predict_proba(rows)
    elif space == "log_odds":
        expected = model.decision_function(matrix)
    else:
        expected = predictor.pipeline.predict(rows)
    expected = np.asarray(expected).reshape(len(rows), -1)
    if kind == "binary" and expected.shape[1] == 2:
        expected = expected[:, 1:]  # the positive class
    np.testing.assert_allclose(found.outputs, expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(
    "name", ["sklearn.linear_model.LogisticRegression", "sklearn.neighbors.KNeighborsClassifier"]
)
def test_other_estimators_get_the_permutation_method_on_raw_columns(name: str) -> None:
    predictor, features = fitted_predictor(name, "multiclass")
    found = Explainer(predictor, features, SETTINGS).explain_frame(features.iloc[:3].reset_index(drop=True))
    assert (found.method, found.output_space, found.labels) == ("permutation", "probability", ["0", "1", "2"])
    assert found.gap() < SETTINGS.permutation_tolerance
    np.testing.assert_allclose(found.outputs, predictor.pipeline.predict_proba(features.iloc[:3]), atol=1e-12)


def test_the_permutation_method_finds_a_linear_models_exact_shapley_values() -> None:
    """For an additive model each column's Shapley value is coef * (x - background mean)."""
    predictor, features = fitted_predictor("sklearn.linear_model.Ridge", "regression")
    explainer = Explainer(predictor, features, SETTINGS)
    rows = features.iloc[:4].reset_index(drop=True)
    rows["income"] = rows["income"].fillna(40.0)
    found = explainer.explain_frame(rows)
    ridge, steps = predictor.pipeline[-1], predictor.pipeline[:-1]
    names = list(steps.get_feature_names_out())
    scaler = steps[-1].named_transformers_["numeric"].named_steps["scale"]
    background = explainer.background.assign(
        income=explainer.background["income"].fillna(
            steps[-1].named_transformers_["numeric"].named_steps["impute"].statistics_[0]
        )
    )
    coef = ridge.coef_[names.index("age")] / scaler.scale_[1]
    expected_age = coef * (rows["age"] - background["age"].mean())
    np.testing.assert_allclose(found.values[:, COLUMNS.index("age"), 0], expected_age, rtol=1e-9)
    assert found.method == "permutation" and found.output_space == "target"


def test_histgradientboosting_native_categories_are_not_answered_by_treeshap() -> None:
    """shap ignores the category bitset of HistGradientBoosting's categorical splits: its values
    miss the output by whole log-odds units; such a model gets the (additive) permutation method."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"code": rng.integers(0, 5, 600).astype(float), "x": rng.normal(size=600)})
    label = np.where((frame["code"] % 2 == 0) ^ (frame["x"] > 0), "a", "b")
    pipeline = Pipeline(
        [
            ("preprocess", SimpleImputer(strategy="median")),
            ("model", HistGradientBoostingClassifier(max_iter=20, categorical_features=[0])),
        ]
    ).fit(frame, label)
    schema = infer_schema(frame)
    predictor = Predictor(pipeline, schema, tag="t:1", classes=("a", "b"))
    explainer = Explainer(predictor, frame, SETTINGS)
    assert explainer.method == "permutation" and "categorical" in str(explainer.fallback_reason)
    found = explainer.explain_frame(frame.iloc[:5])
    assert found.gap() < 1e-6
    import shap

    wrong = shap.TreeExplainer(pipeline[-1])
    values = np.asarray(wrong.shap_values(frame.iloc[:50].to_numpy()))
    miss = (
        values.sum(axis=1) + wrong.expected_value - pipeline[-1].decision_function(frame.iloc[:50].to_numpy())
    )
    assert np.abs(miss).max() > 0.1  # the limit is real: shap's own values do not add up


def test_answers_have_exactly_the_users_columns_binary_and_multiclass() -> None:
    predictor, features = fitted_predictor(
        ENSEMBLE + "HistGradientBoostingClassifier", "binary", {"max_iter": 20}
    )
    records: list[dict[str, Any]] = [
        {str(name): None if pd.isna(value) else value for name, value in row.items()}
        for row in features.iloc[:3].to_dict("records")
    ]
    binary = explanations(Explainer(predictor, features, SETTINGS).explain_records(records))
    assert list(binary[0]["contributions"]) == COLUMNS
    assert binary[0]["base_value"] + sum(binary[0]["contributions"].values()) == pytest.approx(
        binary[0]["output"], abs=1e-9
    )
    proba = predictor.predict_records(records)[0]["probabilities"]["yes"]  # positive class: classes[1]
    assert 1 / (1 + np.exp(-binary[0]["output"])) == pytest.approx(proba, abs=1e-9)

    predictor, features = fitted_predictor(
        ENSEMBLE + "HistGradientBoostingClassifier", "multiclass", {"max_iter": 20}
    )
    multi = explanations(Explainer(predictor, features, SETTINGS).explain_records(records))[0]
    assert set(multi["output"]) == set(multi["base_value"]) == set(multi["contributions"]) == {"0", "1", "2"}
    for label, contributions in multi["contributions"].items():
        assert list(contributions) == COLUMNS
        assert multi["base_value"][label] + sum(contributions.values()) == pytest.approx(
            multi["output"][label], abs=1e-9
        )
