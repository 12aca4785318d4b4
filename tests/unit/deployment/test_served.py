"""What the deployment serves now: the stored state over the configuration, on a real SQLite database."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tabserve.deployment.policy import DeploymentState, promote, start_rollout
from tabserve.deployment.served import (
    DeploymentStateError,
    current_policy,
    primary_model,
    served_models,
    served_variants,
)
from tabserve.deployment.store import Change, write_state
from tabserve.predictions.migration import ensure_schema
from tabserve.predictions.store import make_engine
from tabserve.settings import MonitoringSettings, Policy, Settings

VARIANTS = {"blue": "m:1", "green": "m:2", "red": "m:3"}
CHANGE = Change("test", "set", "test")


@pytest.mark.parametrize(
    ("policy", "served"),
    [
        (Policy(strategy="single", active="green"), ["green"]),
        (Policy(strategy="blue-green", active="blue"), ["blue"]),
        (Policy(strategy="canary", champion="green", candidate="blue", canary_percent=10), ["green", "blue"]),
        (Policy(strategy="canary", champion="blue", candidate="green", canary_percent=0), ["blue"]),
        (Policy(strategy="shadow", champion="blue", candidate="red"), ["blue", "red"]),
        (Policy(strategy="ab", champion="blue", weights={"red": 1, "green": 3, "blue": 0}), ["green", "red"]),
    ],
)
def test_every_variant_with_traffic_or_a_shadow_is_served_primary_first(
    policy: Policy, served: list[str]
) -> None:
    assert served_variants(policy, VARIANTS) == {name: VARIANTS[name] for name in served}
    assert list(served_variants(policy, VARIANTS)) == served


def settings_for(tmp_path: Path) -> Settings:
    return Settings.model_validate(
        {
            "monitoring": {"sqlite_path": str(tmp_path / "log.db")},
            "deployment": {
                "variants": {"blue": "m:1", "green": "m:2"},
                "policy": {"strategy": "canary", "canary_percent": 0},
            },
        }
    )


def test_without_a_database_the_configured_policy_is_served(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    assert served_models(settings) == {"blue": "m:1"} and primary_model(settings) == "m:1"
    assert not (tmp_path / "log.db").exists()  # reading created nothing


def test_after_a_promotion_the_new_champion_is_served(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    engine = make_engine(settings.monitoring.url)
    ensure_schema(engine)
    assert served_models(settings) == {"blue": "m:1"}  # tables, but no state stored yet
    names = list(settings.variants)
    now = datetime.now(UTC)
    rolling = start_rollout(DeploymentState(policy=settings.policy), names, [25, 100], now)
    version = write_state(engine, None, rolling.to_json(), CHANGE)
    assert served_models(settings) == {"blue": "m:1", "green": "m:2"}  # the canary step
    write_state(engine, version, promote(rolling, names).to_json(), CHANGE)
    assert served_models(settings) == {"green": "m:2"} and primary_model(settings) == "m:2"
    assert current_policy(settings).active == "green"


def test_a_stored_state_that_does_not_fit_the_variants_is_ignored_as_the_service_does(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    engine = make_engine(settings.monitoring.url)
    ensure_schema(engine)
    other = DeploymentState(policy=Policy(strategy="single", active="purple"))
    write_state(engine, None, other.to_json(), CHANGE)
    assert served_models(settings) == {"blue": "m:1"}


def test_an_unreachable_database_says_so_and_how_to_go_on(tmp_path: Path) -> None:
    settings = settings_for(tmp_path).model_copy(
        update={"monitoring": MonitoringSettings(database_url="postgresql+psycopg://x@127.0.0.1:1/none")}
    )
    with pytest.raises(DeploymentStateError, match=r"database unreachable.*--model"):
        served_models(settings)
