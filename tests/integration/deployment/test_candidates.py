"""A model added to the running service (`POST /admin/candidate`, `tabserve deploy candidate`):
every worker loads it, it is shadowed, rolled out and promoted on its own, and a restart keeps
serving it. The real service (`bentoml serve`, 2 workers), PostgreSQL, models trained by the CLI.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bentoml
import httpx
import pytest
from sqlalchemy import text

from tabserve.model_store import StoredModel, get_model
from tabserve.predictions.store import make_engine
from tabserve.predictor import TARGET_COLUMN
from tests.factories import reference_records
from tests.integration.conftest import ADMIN_TOKEN, deployment_server, run_train
from tests.integration.deployment.test_deployment import AUTH, Traffic, admin, state
from tests.integration.deployment.test_replicas import replica_envs
from tests.postgres import temporary_database
from tests.replicas import replicas
from tests.servers import BENTOML, run_tabserve, wait_for

EVALUATION = "eval-20261204-1"
# Small and quick: the point is the sequence of stages, not the statistics of each.
ROLLOUT = {
    "steps": [50, 100],
    "min_requests": 20,
    "min_seconds": 1,
    "check_interval_s": 0.5,
    "max_p99_ms": 5000,  # a busy shared machine: latency is not what this test is about
}
ROLLOUT_DEADLINE_S = 90
WORKERS = 2


@pytest.fixture(scope="module")
def versions() -> tuple[StoredModel, StoredModel]:
    """Two versions of one model, trained by the CLI: the served one, then its challenger."""
    run_train("--name", "retrained")
    first = get_model("retrained:latest")
    run_train("--name", "retrained")
    second = get_model("retrained:latest")
    assert first.tag != second.tag
    return first, second


@pytest.fixture
def database() -> Iterator[str]:
    with temporary_database() as url:
        yield url


def deploy_cli(url: str, *args: str) -> Any:
    return run_tabserve("deploy", "--url", url, *args, env={"TABSERVE_ADMIN_TOKEN": ADMIN_TOKEN})


def every_worker_has(url: str, name: str) -> bool:
    """Ask /admin/state until each worker (by pid) has answered; True when all list `name`."""
    seen: dict[int, bool] = {}
    deadline = time.monotonic() + 10
    while len(seen) < WORKERS and time.monotonic() < deadline:
        body = state(url)
        seen[body["worker"]] = name in body["variants"] and name in body["state"]["added"]
    return len(seen) == WORKERS and all(seen.values())


def shadow_rows(database: str, name: str) -> int:
    engine = make_engine(database)
    try:
        with engine.connect() as connection:
            query = text("SELECT count(*) FROM predictions WHERE variant = :name AND request_id LIKE :shadow")
            return int(connection.execute(query, {"name": name, "shadow": "%:shadow"}).scalar_one())
    finally:
        engine.dispose()


def test_a_candidate_added_at_runtime_is_shadowed_rolled_out_promoted_and_kept_after_a_restart(
    logs: Path,
    database: str,
    versions: tuple[StoredModel, StoredModel],
    mixed_model: StoredModel,
) -> None:
    served, challenger = versions
    name = challenger.tag.split(":")[1]
    deployment = {"variants": {"champion": served.tag}, "rollout": ROLLOUT}
    reference = served.load_reference()
    records = list(zip(reference_records(served), reference[TARGET_COLUMN].astype(str), strict=True))
    with deployment_server(logs, deployment, database, workers=WORKERS) as url:
        before = state(url)["version"]
        unknown = admin(url, "candidate", model="retrained:nosuchversion", reason="typo")
        assert unknown.status_code == 404 and "retrained:nosuchversion" in unknown.json()["error"]
        incompatible = admin(url, "candidate", model=mixed_model.tag, reason="wrong model")
        assert incompatible.status_code == 409 and "has other features" in incompatible.json()["error"]
        malformed = admin(url, "candidate", model="no tag", reason="x")
        assert malformed.status_code == 400 and malformed.json()["detail"][0]["loc"] == ["model"]
        assert state(url)["version"] == before  # nothing stored
        events = httpx.get(f"{url}/admin/events", headers=AUTH).json()["events"]
        assert "candidate" not in {event["action"] for event in events}

        added = deploy_cli(
            url, "candidate", challenger.tag, "--reason", "drift alarm", "--evaluation", EVALUATION
        )
        assert added.returncode == 0, added.stderr
        assert "strategy shadow" in added.stdout and "shadow stage before step 1/2" in added.stdout
        wait_for(lambda: every_worker_has(url, name), 30, "both workers with the candidate loaded")

        with Traffic(url, records, threads=2) as traffic:
            wait_for(lambda: shadow_rows(database, name), 30, "shadow rows of the candidate logged")

            def finished() -> dict[str, Any] | None:
                rollout = state(url)["state"]["rollout"]
                return rollout if rollout["state"] != "running" else None

            rollout = wait_for(finished, ROLLOUT_DEADLINE_S, "the rollout to finish")
        assert rollout["state"] == "promoted", rollout["reason"]
        assert rollout["reason"].endswith(f"every step passed: promoted (evaluation {EVALUATION})")
        assert traffic.served[name] > 0 and set(traffic.statuses) == {200}

        events = httpx.get(f"{url}/admin/events", headers=AUTH).json()["events"]
        steps = [(event["action"], event["reason"]) for event in reversed(events)][-4:]
        assert [action for action, _ in steps] == ["candidate", "advance", "advance", "promote"]
        assert steps[0][1] == (
            f"drift alarm (candidate {name} = {challenger.tag}, evaluation {EVALUATION}, "
            "rollout started: shadow first)"
        )
        assert steps[1][1].startswith("the shadow stage passed every guard")
        assert steps[2][1].startswith("step 1 (50%) passed every guard")
        assert all(reason.endswith(f"(evaluation {EVALUATION})") for _, reason in steps[1:])
        status = deploy_cli(url, "status").stdout.splitlines()
        assert status[1].split() == ["VARIANT", "MODEL", "ROLE", "TRAFFIC", "EVALUATION"]
        assert status[3].split() == [name, challenger.tag, "champion,", "active", "100.0%", EVALUATION]

    with deployment_server(logs, deployment, database) as url:  # one worker: a quicker start
        after = state(url)
        assert after["state"]["policy"]["active"] == name and after["variants"][name] == challenger.tag
        answers = [
            httpx.post(f"{url}/predict", json={"record": record}, timeout=30).json()
            for record, _ in records[:10]
        ]
        assert {(answer["variant"], answer["model"]) for answer in answers} == {(name, challenger.tag)}


def bentoml_models(home: Path, *args: str) -> None:
    """`bentoml models ...` on another model store (this process's store is the test run's)."""
    env = {**os.environ, "BENTOML_HOME": str(home)}
    subprocess.run([BENTOML, "models", *args], env=env, check=True, capture_output=True)


def test_a_replica_without_the_model_keeps_serving_then_follows_once_it_is_imported(
    logs: Path, database: str, versions: tuple[StoredModel, StoredModel], tmp_path: Path
) -> None:
    served, challenger = versions
    name = challenger.tag.split(":")[1]
    archives = {model.tag: tmp_path / f"{model.tag.replace(':', '-')}.bentomodel" for model in versions}
    for tag, archive in archives.items():
        bentoml.models.export_model(tag, str(archive))
    lacking = tmp_path / "lacking-home"  # the second replica's own store: the served model only
    bentoml_models(lacking, "import", str(archives[served.tag]))
    envs = replica_envs(logs, database, {"variants": {"champion": served.tag}}, 2)
    envs[1]["BENTOML_HOME"] = str(lacking)
    record = reference_records(served, 1)[0]
    with replicas(logs / f"candidate-replicas-{name}", envs) as (one, two):
        before = state(two.url)["version"]
        added = admin(one.url, "candidate", model=challenger.tag, reason="retrained", rollout=False)
        assert added.status_code == 200, added.text
        after = added.json()["version"]
        assert added.json()["variants"][name] == challenger.tag

        # The replica whose store lacks the model keeps its state and keeps answering.
        time.sleep(3)  # six of its state polls
        assert state(two.url)["version"] == before and name not in state(two.url)["variants"]
        answer = httpx.post(f"{two.url}/predict", json={"record": record}, timeout=30)
        assert answer.status_code == 200 and answer.json()["model"] == served.tag
        log = "\n".join(path.read_text() for path in two.folder.glob("bentoml-*.log"))
        errors = [line for line in log.splitlines() if "cannot be loaded" in line]
        assert len(errors) == 1 and challenger.tag in errors[0] and "bentoml models import" in errors[0]
        assert f"still serving version {before}" in errors[0]

        bentoml_models(lacking, "import", str(archives[challenger.tag]))  # the documented fix
        wait_for(lambda: state(two.url)["version"] == after, 30, "the second replica applying the state")
        switched = admin(one.url, "switch", to=name, reason="ship it")
        assert switched.status_code == 200, switched.text

        def two_answers_with_the_challenger() -> bool:
            body = httpx.post(f"{two.url}/predict", json={"record": record}, timeout=30).json()
            return bool(body["model"] == challenger.tag and body["variant"] == name)

        wait_for(two_answers_with_the_challenger, 30, "the second replica answering with the added variant")
