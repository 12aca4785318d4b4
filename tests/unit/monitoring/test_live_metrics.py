"""The live refresher on a real SQLite prediction log and a model trained by the CLI.

One variant gets traffic with `income` moved far out, another the training distribution; the
gauges must tell them apart, by model and variant.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import Engine

from tabserve.model_store import StoredModel, get_model
from tabserve.monitoring.estimated_quality import CALIBRATION_KEY
from tabserve.monitoring.live_metrics import LiveDriftRefresher, live_gauges, read_live_window
from tabserve.predictions.bulk_insert import insert_rows
from tabserve.predictions.migration import ensure_schema
from tabserve.predictions.store import make_engine
from tabserve.settings import LiveDriftSettings
from tests.factories import mixed_frame, train_cli, write_csv

SHIFTED, STEADY, SPARSE = "shifted", "steady", "sparse"
SETTINGS = LiveDriftSettings(interval_s=3600, window_rows=800, min_rows=100)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> StoredModel:
    data = write_csv(mixed_frame(2_000), tmp_path_factory.mktemp("data") / "mixed.csv")
    assert train_cli(["--data", str(data), "--target", "label", "--name", "unit_live"]) == 0
    return get_model("unit_live:latest")


def log(engine: Engine, stored: StoredModel, variant: str, features: pd.DataFrame) -> None:
    predictor = stored.load_predictor()
    results = predictor.results_from_frame(predictor.predict_frame(features))
    records = features[stored.schema.names].to_dict("records")  # NaN is logged as null
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = [
        {
            "request_id": f"{variant}-{i}",
            "ts": now,
            "model": stored.tag,
            "variant": variant,
            "features": record,
            "prediction": result["prediction"],
            "probabilities": result["probabilities"],
        }
        for i, (record, result) in enumerate(zip(records, results, strict=True))
    ]
    insert_rows(engine, rows)


def gauge(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


@pytest.fixture(scope="module")
def refreshed(model: StoredModel, tmp_path_factory: pytest.TempPathFactory) -> StoredModel:
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('log') / 'log.db'}")
    ensure_schema(engine)
    live = mixed_frame(1_000, seed=1).rename(columns=lambda name: name.strip()).drop(columns="label")
    live["city"] = live["city"].where(live["city"] != "?")  # the service cleans missing markers
    log(engine, model, SHIFTED, live.assign(income=live["income"] + 60))
    log(engine, model, STEADY, live)
    log(engine, model, SPARSE, live.head(20))
    window = read_live_window(engine, model.tag, SHIFTED, SETTINGS.window_rows)
    assert len(window) == SETTINGS.window_rows and {"income", "city", "probabilities"} <= set(window)
    models = dict.fromkeys((SHIFTED, STEADY, SPARSE), model)
    LiveDriftRefresher(engine, models, SETTINGS, live_gauges()).refresh()
    return model


def test_the_shifted_feature_of_the_shifted_variant_scores_high(refreshed: StoredModel) -> None:
    tag = refreshed.tag
    assert gauge("tabserve_feature_drift_psi", model=tag, variant=SHIFTED, feature="income") > 1  # type: ignore[operator]
    assert gauge("tabserve_feature_drift_psi", model=tag, variant=SHIFTED, feature="age") < 0.1  # type: ignore[operator]
    assert gauge("tabserve_feature_drift_psi", model=tag, variant=STEADY, feature="income") < 0.1  # type: ignore[operator]
    assert gauge("tabserve_feature_drift_psi", model=tag, variant=STEADY, feature="city") < 0.1  # type: ignore[operator]
    assert gauge("tabserve_prediction_drift_psi", model=tag, variant=SHIFTED) > 0.1  # type: ignore[operator]
    assert gauge("tabserve_live_drift_rows", model=tag, variant=SHIFTED) == SETTINGS.window_rows


def test_estimated_quality_sits_beside_the_training_value(refreshed: StoredModel) -> None:
    assert CALIBRATION_KEY in refreshed.metadata
    tag, training = refreshed.tag, refreshed.metadata["metrics"]
    for metric in ("accuracy", "f1", "roc_auc"):
        steady = gauge("tabserve_estimated_quality", model=tag, variant=STEADY, metric=metric)
        assert steady is not None and abs(steady - training[metric]) < 0.1, metric
        assert (
            gauge("tabserve_reference_quality", model=tag, variant=STEADY, metric=metric) == training[metric]
        )


def test_a_window_below_min_rows_sets_only_its_size(refreshed: StoredModel) -> None:
    tag = refreshed.tag
    assert gauge("tabserve_live_drift_rows", model=tag, variant=SPARSE) == 20
    assert gauge("tabserve_feature_drift_psi", model=tag, variant=SPARSE, feature="income") is None
    assert gauge("tabserve_live_drift_refresh_seconds") is not None


def test_training_stores_the_calibration_as_plain_metadata(model: StoredModel) -> None:
    calibration = model.metadata[CALIBRATION_KEY]
    assert calibration["classes"] == ["no", "yes"] and len(calibration["curves"]) == 1
