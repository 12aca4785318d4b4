"""The shared deployment state on a real SQLite file: loading it, compare and swap, and two
workers (or replicas) that share one database following each other's changes."""

from __future__ import annotations

import functools
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.pipeline import make_pipeline
from sqlalchemy import Engine

from tabserve.deployment.admin_api import DeploymentControl
from tabserve.deployment.deployment import Deployment
from tabserve.deployment.policy import DeploymentState, PolicyError, switch
from tabserve.deployment.shared_state import FIRST_START, UNLOADED, SharedState
from tabserve.deployment.store import Change, read_events, read_state, write_state
from tabserve.model_store import StoredModel, get_model, save_model
from tabserve.predictions.migration import upgrade
from tabserve.predictions.store import make_engine
from tabserve.schema import infer_schema
from tabserve.serving.metrics import ServiceMetrics
from tabserve.settings import Policy, Settings

NAMES = ["blue", "green"]
CONFIGURED = DeploymentState(policy=Policy(strategy="blue-green", active="blue", champion="blue"))
OPERATOR = Change("alice", "switch", "release 2")
FRAME = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "y": ["a", "b", "a", "b"]})


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'log.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()


def to_green(state: DeploymentState) -> DeploymentState:
    return switch(state, NAMES, "green")


# --- loading ---------------------------------------------------------------------------------


def test_a_first_start_stores_the_configured_state_with_its_audit_event(engine: Engine) -> None:
    shared = SharedState(engine, NAMES, CONFIGURED)
    assert (shared.version, shared.loaded) == (UNLOADED, False)  # serves the configuration until loaded
    shared.load()
    assert (shared.version, shared.state) == (1, CONFIGURED)
    assert read_state(engine) == (1, CONFIGURED.to_json())
    [event] = read_events(engine)
    assert (event["actor"], event["action"], event["reason"]) == ("configuration", "init", FIRST_START)


def test_a_stored_state_that_fits_is_kept_across_a_restart(engine: Engine) -> None:
    first = SharedState(engine, NAMES, CONFIGURED)
    first.load()
    first.apply(to_green, OPERATOR)
    restarted = SharedState(engine, NAMES, CONFIGURED)
    restarted.load()
    assert restarted.version == 2 and restarted.state.policy.active == "green"


def test_a_stored_state_naming_a_variant_no_longer_configured_is_reset(engine: Engine) -> None:
    old = SharedState(engine, ["blue", "purple"], CONFIGURED)
    old.load()
    old.apply(lambda state: switch(state, ["blue", "purple"], "purple"), OPERATOR)
    shared = SharedState(engine, NAMES, CONFIGURED)
    shared.load()
    assert (shared.version, shared.state) == (3, CONFIGURED)
    newest = read_events(engine)[0]
    assert newest["action"] == "reset" and "purple" in newest["reason"]


def test_the_observer_sees_every_state_it_holds(engine: Engine) -> None:
    seen: list[tuple[int, str]] = []
    shared = SharedState(engine, NAMES, CONFIGURED, lambda v, s: seen.append((v, str(s.policy.active))))
    shared.load()
    shared.apply(to_green, OPERATOR)
    assert seen == [(UNLOADED, "blue"), (1, "blue"), (2, "green")]


# --- compare and swap ------------------------------------------------------------------------


def test_a_write_on_a_stale_version_is_refused_and_leaves_no_audit_event(engine: Engine) -> None:
    assert write_state(engine, None, CONFIGURED.to_json(), Change("a", "init", "x")) == 1
    assert write_state(engine, None, CONFIGURED.to_json(), Change("b", "init", "x")) is None  # row exists
    green = to_green(CONFIGURED).to_json()
    assert write_state(engine, 1, green, OPERATOR) == 2
    assert write_state(engine, 1, CONFIGURED.to_json(), Change("late", "switch", "stale")) is None
    assert read_state(engine) == (2, green)
    assert [event["actor"] for event in read_events(engine)] == ["alice", "a"]


def test_apply_works_on_the_newest_stored_state_not_on_its_own_copy(engine: Engine) -> None:
    """Worker A changed the state; worker B, not synced yet, applies on top of A's change."""
    a, b = SharedState(engine, NAMES, CONFIGURED), SharedState(engine, NAMES, CONFIGURED)
    a.load()
    b.load()
    a.apply(to_green, OPERATOR)
    assert b.state.policy.active == "blue"  # B has not seen it
    version, state = b.apply(lambda current: switch(current, NAMES, "blue"), Change("bob", "switch", "back"))
    assert (version, state.policy.active, state.previous) == (3, "blue", "green")


def test_two_workers_changing_at_once_both_land_one_after_the_other(engine: Engine) -> None:
    workers = [SharedState(engine, NAMES, CONFIGURED) for _ in range(4)]
    workers[0].load()
    barrier = threading.Barrier(len(workers))
    errors: list[BaseException] = []

    def flip(shared: SharedState, index: int) -> None:
        barrier.wait()
        try:
            shared.apply(lambda s: switch(s, NAMES), Change(f"worker-{index}", "switch", "flip"))
        except BaseException as error:  # collected: a thread's failure must fail the test
            errors.append(error)

    threads = [threading.Thread(target=flip, args=(shared, i)) for i, shared in enumerate(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert read_state(engine)[0] == 5  # type: ignore[index]  # 1 (init) + 4 swaps, none lost
    assert len(read_events(engine)) == 5


def test_an_operation_that_no_longer_applies_changes_nothing(engine: Engine) -> None:
    shared = SharedState(engine, NAMES, CONFIGURED)
    shared.load()
    assert shared.apply(lambda _state: None, Change("rollout", "advance", "already done")) == (1, CONFIGURED)
    assert len(read_events(engine)) == 1
    with pytest.raises(PolicyError, match="no variant 'purple'"):
        shared.apply(lambda state: switch(state, NAMES, "purple"), OPERATOR)


# --- following another worker ----------------------------------------------------------------


def test_sync_picks_up_a_change_and_ignores_a_state_that_does_not_fit(engine: Engine) -> None:
    a, b = SharedState(engine, NAMES, CONFIGURED), SharedState(engine, NAMES, CONFIGURED)
    a.load()
    b.sync()  # not loaded yet: sync loads
    assert b.version == 1
    a.apply(to_green, OPERATOR)
    b.sync()
    assert (b.version, b.state.policy.active) == (2, "green")
    foreign = {**CONFIGURED.to_json(), "policy": {**CONFIGURED.to_json()["policy"], "active": "purple"}}
    assert write_state(engine, 2, foreign, Change("someone", "policy", "a variant we do not have")) == 3
    b.sync()
    assert (b.version, b.state.policy.active) == (2, "green")  # kept serving what it can


# --- two Deployment instances on one database file -------------------------------------------


@functools.cache
def metrics() -> ServiceMetrics:
    return ServiceMetrics()  # one per process: Prometheus refuses a second registration


def tiny_model(answer: str) -> StoredModel:
    pipeline = make_pipeline(DummyClassifier(strategy="constant", constant=answer)).fit(
        FRAME[["x"]], FRAME["y"]
    )
    metadata = {"feature_schema": infer_schema(FRAME[["x"]]).to_metadata(), "classes": ["a", "b"]}
    return get_model(save_model(f"unit_variant_{uuid.uuid4().hex[:8]}", pipeline, metadata, FRAME, {}))


def test_two_replicas_sharing_a_database_follow_each_others_changes(tmp_path: Path) -> None:
    models = {"blue": tiny_model("a"), "green": tiny_model("b")}
    settings = Settings.model_validate(
        {
            "deployment": {
                "variants": {name: stored.tag for name, stored in models.items()},
                "policy": {"strategy": "blue-green"},
                "refresh_ms": 3_600_000,  # the background thread stays out of the way: sync by hand
            },
            "monitoring": {"log_predictions": False},
        }
    )
    url = f"sqlite:///{tmp_path / 'shared.db'}"  # an empty file: the first replica creates it
    engines = [make_engine(url), make_engine(url)]
    replicas = [Deployment(settings, models, engine, None, metrics()) for engine in engines]
    try:
        one, two = replicas
        control: DeploymentControl = one  # what the admin API sees of it
        assert control.describe()["version"] == two.describe()["version"] == 1
        assert [r["prediction"] for r in two.predict_many([{"x": 1.0}], [None])] == ["a"]

        control.apply(lambda state: switch(state, control.names), OPERATOR)
        assert [r["prediction"] for r in one.predict_many([{"x": 1.0}], [None])] == ["b"]
        assert two.describe()["state"]["policy"]["active"] == "blue"  # until it syncs
        two.shared.sync()  # what the background "state sync" task runs
        described = two.describe()
        assert described["version"] == 2 and described["traffic"] == {"blue": 0.0, "green": 1.0}
        assert [r["variant"] for r in two.predict_many([{"x": 1.0}] * 3, [None] * 3)] == ["green"] * 3
        assert two.primary.tag == models["green"].tag
        assert [event["actor"] for event in two.events(10)] == ["alice", "configuration"]
    finally:
        for deployment in replicas:
            deployment.close()
        for engine in engines:
            engine.dispose()
