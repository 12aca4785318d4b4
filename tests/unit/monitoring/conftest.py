"""A census-like table of 14 features with a known signal, and a model trained on it through the CLI.

The label depends on `x0` (numeric) and `city` (categorical); the 12 other features are noise.
6,000 rows: the held-out reference has 1,500 (over 1,000, Evidently's defaults are effect sizes,
Wasserstein and Jensen-Shannon at 0.1, which a clean window does not pass by chance; at most
1,000, p-values at 0.05, which 5% of clean windows pass on each feature).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tabserve.model_store import StoredModel, get_model
from tests.factories import train_cli, write_csv

NOISE_NUMERIC = [f"n{i}" for i in range(1, 9)]
NOISE_CATEGORICAL = [f"c{i}" for i in range(1, 5)]
NOISE = {*NOISE_NUMERIC, *NOISE_CATEGORICAL}
TRAINING_ROWS = 6000


def census_like(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"x0": rng.normal(0, 1, rows), "city": rng.choice(["paris", "lyon", "nice"], rows)})
    for name in NOISE_NUMERIC:
        frame[name] = rng.normal(10, 3, rows)
    for name in NOISE_CATEGORICAL:
        frame[name] = rng.choice(["a", "b", "c"], rows)
    signal = 2 * frame["x0"] + 1.5 * (frame["city"] == "paris") + rng.normal(0, 0.5, rows)
    return frame.assign(label=np.where(signal > 0.5, "yes", "no"))


@pytest.fixture(scope="session")
def census_model(tmp_path_factory: pytest.TempPathFactory) -> StoredModel:
    data = write_csv(census_like(TRAINING_ROWS, seed=0), tmp_path_factory.mktemp("census") / "census.csv")
    assert train_cli(["--data", str(data), "--target", "label", "--name", "unit_census"]) == 0
    return get_model("unit_census:latest")
