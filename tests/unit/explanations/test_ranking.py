import numpy as np
import pytest

from tabserve.explanations.explainer import Explainer
from tabserve.explanations.ranking import attribution_drift, global_attribution, mean_absolute, ndcg, shares
from tabserve.schema import coerce_frame
from tabserve.settings import ExplanationSettings
from tests.unit.explanations.tables import fitted_on, graded_table

REFERENCE = {"a": 4.0, "b": 2.0, "c": 1.0, "d": 0.5}


def test_ndcg_is_one_for_the_same_ranking_and_falls_as_the_top_column_sinks() -> None:
    assert ndcg(REFERENCE, {"a": 40.0, "b": 20.0, "c": 10.0, "d": 5.0}) == pytest.approx(1.0)
    swapped_tail = ndcg(REFERENCE, {"a": 4.0, "b": 2.0, "c": 0.4, "d": 0.5})
    top_to_bottom = ndcg(REFERENCE, {"a": 0.1, "b": 2.0, "c": 1.0, "d": 0.5})
    assert 1.0 > swapped_tail > 0.9 > top_to_bottom
    # Hand-computed: order b, c, d, a; gains 2, 1, .5, 4 at log2(2..5) over the ideal 4, 2, 1, .5.
    ideal = 4 + 2 / np.log2(3) + 1 / 2 + 0.5 / np.log2(5)
    assert top_to_bottom == pytest.approx((2 + 1 / np.log2(3) + 0.5 / 2 + 4 / np.log2(5)) / ideal)


def test_drift_block_names_each_columns_share_change() -> None:
    block = attribution_drift(REFERENCE, {"a": 0.1, "b": 2.0, "c": 1.0, "d": 0.5}, threshold=0.9)
    assert block["drift"] is True and list(block["columns"]) == ["a", "b", "c", "d"]
    a = block["columns"]["a"]
    assert a["reference_share"] == pytest.approx(4 / 7.5) and a["window_share"] == pytest.approx(0.1 / 3.6)
    assert a["change"] == pytest.approx(a["window_share"] - a["reference_share"])
    assert sum(shares(REFERENCE).values()) == pytest.approx(1.0)


@pytest.fixture(scope="module")
def explained() -> tuple[Explainer, dict[str, float]]:
    frame, target = graded_table(2000, seed=0)
    predictor, features = fitted_on(
        frame, target, "sklearn.ensemble.HistGradientBoostingRegressor", "regression"
    )
    explainer = Explainer(predictor, features, ExplanationSettings(global_rows=300))
    reference = global_attribution(explainer, features, seed=0)
    assert reference["method"] == "tree_shap" and reference["rows"] == 300
    return explainer, reference["mean_abs"]


def _window(explainer: Explainer, seed: int, shift: bool) -> dict[str, float]:
    frame, _ = graded_table(300, seed)
    if shift:  # the leading column stops varying: its attribution share collapses
        frame["x0"] = 0.0
    return mean_absolute(explainer.explain_frame(coerce_frame(frame, explainer.predictor.schema)))


def test_windows_like_the_reference_keep_the_ranking_a_shifted_feature_flips_it(
    explained: tuple[Explainer, dict[str, float]],
) -> None:
    explainer, reference = explained
    assert sorted(reference, key=lambda c: -reference[c])[:3] == ["x0", "x1", "x2"]
    seeds = range(1, 11)
    alike = [ndcg(reference, _window(explainer, seed, shift=False)) for seed in seeds]
    shifted = [ndcg(reference, _window(explainer, seed, shift=True)) for seed in seeds]
    assert min(alike) >= 0.95  # every one of ten fresh windows: no alarm at 0.9
    assert max(shifted) < 0.9  # every one of ten shifted windows: the alarm
    block = attribution_drift(reference, _window(explainer, 1, shift=True), 0.9)
    assert (
        block["drift"] and block["columns"]["x0"]["change"] < -0.3 and block["columns"]["x1"]["change"] > 0.1
    )
