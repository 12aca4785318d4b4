"""Variants added at runtime on real Deployment instances sharing a SQLite file: the worker that
takes the call loads and stores, the others load before they apply, a replica that cannot load
keeps serving, a restart loads what the state names."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.pipeline import make_pipeline

from tabserve.deployment.deployment import Deployment
from tabserve.deployment.policy import AddedVariant, DeploymentState, PolicyError, promote
from tabserve.deployment.served import primary_model, served_models
from tabserve.deployment.store import Change, read_events, read_state, write_state
from tabserve.model_store import StoredModel, get_model, save_model
from tabserve.predictions.store import make_engine
from tabserve.schema import infer_schema
from tabserve.settings import Settings
from tests.unit.deployment.test_shared_state import metrics, tiny_model

OPERATOR = Change("retrain", "candidate", "evaluation accepted it")


@pytest.fixture
def models() -> dict[str, StoredModel]:
    return {"blue": tiny_model("a"), "green": tiny_model("a")}


def settings_for(models: dict[str, StoredModel], tmp_path: Path) -> Settings:
    return Settings.model_validate(
        {
            "deployment": {
                "variants": {name: stored.tag for name, stored in models.items()},
                "refresh_ms": 3_600_000,  # no background syncs: each test syncs by hand
                "rollout": {"steps": [50, 100]},
            },
            "monitoring": {"log_predictions": False, "sqlite_path": str(tmp_path / "shared.db")},
        }
    )


@pytest.fixture
def replicas(models: dict[str, StoredModel], tmp_path: Path) -> Iterator[list[Deployment]]:
    settings = settings_for(models, tmp_path)
    engines = [make_engine(settings.monitoring.url) for _ in range(2)]
    started = [Deployment(settings, models, engine, None, metrics()) for engine in engines]
    yield started
    for deployment in started:
        deployment.close()
    for engine in engines:
        engine.dispose()


def other_features_model() -> StoredModel:
    frame = pd.DataFrame({"z": [1.0, 2.0, 3.0, 4.0], "y": ["a", "b", "a", "b"]})
    pipeline = make_pipeline(DummyClassifier(strategy="constant", constant="a")).fit(frame[["z"]], frame["y"])
    metadata = {"feature_schema": infer_schema(frame[["z"]]).to_metadata(), "classes": ["a", "b"]}
    return get_model(save_model(f"unit_other_{uuid.uuid4().hex[:8]}", pipeline, metadata, frame, {}))


def test_a_candidate_is_loaded_stored_and_followed_by_the_other_worker(replicas: list[Deployment]) -> None:
    one, two = replicas
    new = tiny_model("b")
    version, state = one.add_candidate(new.tag, None, "eval-1", True, OPERATOR)
    name = new.tag.split(":")[1]
    assert state.added == {name: AddedVariant(model=new.tag, evaluation="eval-1")}
    assert (state.policy.strategy, state.policy.candidate) == ("shadow", name)
    assert one.describe()["variants"][name] == new.tag and name in one.variants.scorers
    [event] = read_events(one.engine, 1)
    assert (event["action"], event["version"]) == ("candidate", version)
    assert f"candidate {name} = {new.tag}, evaluation eval-1" in event["reason"]

    assert name not in two.variants.scorers
    two.shared.sync()  # loads the model first, then applies the state
    assert two.describe()["version"] == version and two.variants.scorers[name].tag == new.tag
    assert two.describe()["traffic"] == {"blue": 1.0, "green": 0.0, name: 0.0}  # shadow: copies only


def test_unknown_incompatible_or_mid_rollout_models_are_refused_and_nothing_is_stored(
    replicas: list[Deployment],
) -> None:
    one, _ = replicas
    before = read_state(one.engine)
    cases = [
        ("unit_missing:nope", 404, "'unit_missing:nope' is not in this service's model store"),
        (other_features_model().tag, 409, "has other features than blue .*: it lacks x; adds z"),
    ]
    for tag, status, message in cases:
        with pytest.raises(PolicyError, match=message) as raised:
            one.add_candidate(tag, None, None, True, OPERATOR)
        assert raised.value.status == status
    assert read_state(one.engine) == before
    one.add_candidate(tiny_model("b").tag, "first", None, True, OPERATOR)
    with pytest.raises(PolicyError, match="a rollout is running") as raised:
        one.add_candidate(tiny_model("b").tag, "second", None, True, OPERATOR)
    assert raised.value.status == 409 and "second" not in one.variants.scorers


def test_a_worker_that_cannot_load_the_model_keeps_serving_its_state_and_logs_once(
    replicas: list[Deployment], caplog: pytest.LogCaptureFixture
) -> None:
    one, two = replicas
    stored = read_state(one.engine)
    assert stored is not None
    state = DeploymentState.model_validate(stored[1])
    missing = state.model_copy(
        update={
            "added": {"gone": AddedVariant(model="unit_gone:v1")},
            "policy": state.policy.model_copy(update={"active": "gone", "champion": "gone"}),
        }
    )
    write_state(one.engine, stored[0], missing.to_json(), OPERATOR)  # as a replica with the model would
    with caplog.at_level(logging.ERROR):
        for _ in range(3):
            two.shared.sync()
    assert two.describe()["version"] == stored[0] and two.state.policy.active == "blue"
    assert [r["variant"] for r in two.predict_many([{"x": 1.0}], [None])] == ["blue"]
    errors = [record.getMessage() for record in caplog.records if record.levelno == logging.ERROR]
    assert len(errors) == 1 and "unit_gone:v1" in errors[0] and "bentoml models import" in errors[0]


def test_a_restart_loads_the_added_variants_and_the_jobs_follow_a_promoted_one(
    models: dict[str, StoredModel], replicas: list[Deployment], tmp_path: Path
) -> None:
    one, _ = replicas
    new = tiny_model("b")
    one.add_candidate(new.tag, "v2", "eval-2", False, OPERATOR)
    settings = settings_for(models, tmp_path)
    assert served_models(settings) == {"blue": models["blue"].tag}  # no traffic yet
    one.apply(lambda state: promote(state, one.names), Change("op", "promote", "ship it"))
    assert served_models(settings) == {"v2": new.tag} and primary_model(settings) == new.tag

    engine = make_engine(settings.monitoring.url)
    restarted = Deployment(settings, models, engine, None, metrics())
    try:
        assert restarted.state.policy.active == "v2" and restarted.primary.tag == new.tag
        assert [r["prediction"] for r in restarted.predict_many([{"x": 1.0}], [None])] == ["b"]
    finally:
        restarted.close()
        engine.dispose()


def test_a_pruned_variant_is_unloaded_by_every_worker_and_leaves_the_live_view(
    replicas: list[Deployment],
) -> None:
    one, two = replicas
    first, second = tiny_model("b"), tiny_model("b")
    one.add_candidate(first.tag, "first", None, False, OPERATOR)
    two.shared.sync()
    live = two.models  # what the live drift thread iterates
    assert live["first"].tag == first.tag and set(live) == {"blue", "green", "first"}
    one.add_candidate(second.tag, "second", None, False, OPERATOR)  # "first" has no role left
    assert set(one.state.added) == {"second"} and "first" not in one.variants.scorers
    two.shared.sync()
    assert set(live) == {"blue", "green", "second"} and dict(live.items())["second"].tag == second.tag
