import numpy as np
import pytest
import shap

from tabserve.explanations.folding import FoldingError, fold, folding_matrix, output_owners
from tests.unit.explanations.tables import fitted_predictor


def test_every_output_traces_to_the_column_it_came_from() -> None:
    predictor, features = fitted_predictor("sklearn.ensemble.HistGradientBoostingClassifier", "binary")
    preprocess = predictor.pipeline[:-1]
    names = list(preprocess.get_feature_names_out())
    owners = output_owners(preprocess, list(features.columns))
    assert len(owners) == len(names)
    by_owner = {owner: [n for n, o in zip(names, owners, strict=True) if o == owner] for owner in set(owners)}
    assert by_owner["income"] == ["income"] and by_owner["age"] == ["age"]  # numeric passthrough
    # One-hot with max_categories=5: four cities one each, the other rare ones pooled in one output.
    assert len(by_owner["city"]) == 5 and "city_infrequent_sklearn" in by_owner["city"]
    assert {"city_paris", "city_lyon", "city_nice"} <= set(by_owner["city"])
    assert all(name.startswith("day__") for name in by_owner["day"]) and len(by_owner["day"]) >= 2


def test_folding_sums_shaps_own_values_over_each_columns_outputs() -> None:
    predictor, features = fitted_predictor("sklearn.ensemble.HistGradientBoostingClassifier", "multiclass")
    preprocess, model = predictor.pipeline[:-1], predictor.pipeline[-1]
    matrix = preprocess.transform(features.iloc[:50])
    raw = np.asarray(shap.TreeExplainer(model).shap_values(matrix))  # (rows, outputs, classes)
    owners = output_owners(preprocess, list(features.columns))
    folded = fold(raw, folding_matrix(owners, list(features.columns)))
    for position, column in enumerate(features.columns):
        mine = [index for index, owner in enumerate(owners) if owner == column]
        np.testing.assert_allclose(folded[:, position, :], raw[:, mine, :].sum(axis=1), atol=1e-12)
    np.testing.assert_allclose(folded.sum(axis=1), raw.sum(axis=1), atol=1e-12)


def test_a_column_the_model_does_not_use_gets_zero() -> None:
    matrix = folding_matrix(["a", "a", "c"], ["a", "b", "c"])
    folded = fold(np.array([[1.0, 2.0, 4.0]]), matrix)
    assert folded.tolist() == [[3.0, 0.0, 4.0]]


def test_an_unknown_width_changing_step_stops_instead_of_folding_wrongly() -> None:
    from sklearn.decomposition import PCA

    pca = PCA(n_components=2).fit(np.random.default_rng(0).normal(size=(20, 3)))
    with pytest.raises(FoldingError, match="PCA maps 3 columns to 2"):
        output_owners(pca, ["a", "b", "c"])
