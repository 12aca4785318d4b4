"""The global view at training: mean |attribution| per column stored with the model and printed."""

from pathlib import Path

import pytest

from tabserve.explanations.ranking import ATTRIBUTION_KEY
from tabserve.model_store import get_model
from tests.factories import mixed_frame, train_cli, write_csv


def test_training_stores_and_prints_mean_attribution_beside_permutation_importance(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_csv(mixed_frame(), tmp_path / "mixed.csv")
    assert train_cli(["--data", str(data), "--target", "label", "--name", "unit_attribution"]) == 0
    stored = get_model("unit_attribution:latest")
    found = stored.metadata[ATTRIBUTION_KEY]
    assert (found["method"], found["output_space"]) == ("tree_shap", "log_odds")
    assert found["rows"] == 100  # the whole reference sample (the held-out quarter) is under global_rows
    mean_abs = found["mean_abs"]
    assert list(mean_abs) == stored.schema.names
    # The label depends on income and city, not on age.
    assert min(mean_abs["income"], mean_abs["city"]) > 2 * mean_abs["age"]
    out = capsys.readouterr().out
    assert "mean |attribution|" in out and "permutation" in out
    rows = {
        line.split()[0]: line.split()[1:]
        for line in out.splitlines()
        if line.strip().split()[:1] in (["income"], ["age"], ["city"])
    }
    assert float(rows["income"][0]) == pytest.approx(mean_abs["income"], abs=1e-4)
    assert float(rows["income"][1]) == pytest.approx(
        stored.metadata["feature_importance"]["mean"]["income"], abs=1e-4
    )
