"""Deployment strategies on the real service: `bentoml serve` with several variants and PostgreSQL.

Splits, stickiness, shadows that fail or stall, admin auth, persistence across a restart,
changes reaching every worker, and automatic rollouts that promote or roll back.
"""

from __future__ import annotations

import random
import re
import subprocess
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from tabserve.model_store import StoredModel, get_model
from tabserve.predictions.store import make_engine
from tabserve.predictor import TARGET_COLUMN
from tests.factories import reference_records
from tests.faults import failing_variant, gated_variant, shuffled_label_data, slow_variant
from tests.integration.conftest import ADMIN_TOKEN, deployment_server, run_train
from tests.postgres import ThrowawayCluster, count_rows, temporary_database
from tests.servers import free_port, run_tabserve, wait_for

FEEDBACK_EVERY = 10
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
# Fast rollouts: small steps judged on little traffic, checked twice a second.
FAST_ROLLOUT = {
    "steps": [20, 100],
    "min_requests": 40,
    "min_seconds": 3,
    "check_interval_s": 0.5,
    "max_p99_ms": 250,
    "min_labels": 50,
}


def admin(url: str, action: str, **body: Any) -> httpx.Response:
    return httpx.post(f"{url}/admin/{action}", json=body, headers=AUTH, timeout=30)


def state(url: str) -> dict[str, Any]:
    response = httpx.get(f"{url}/admin/state", headers=AUTH, timeout=10)
    response.raise_for_status()
    return dict(response.json())


def metric_samples(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body = httpx.get(f"{url}/metrics").text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }


@pytest.fixture(scope="module")
def shuffled_model(tmp_path_factory: pytest.TempPathFactory, default_model: StoredModel) -> StoredModel:
    data = shuffled_label_data(tmp_path_factory.mktemp("shuffled") / "shuffled.csv", "diagnosis")
    run_train("--data", str(data), "--target", "diagnosis", "--name", "shuffled")
    return get_model("shuffled:latest")


@pytest.fixture(scope="module")
def labelled_records(default_model: StoredModel) -> list[tuple[dict[str, Any], str]]:
    reference = default_model.load_reference()
    return list(zip(reference_records(default_model), reference[TARGET_COLUMN].astype(str), strict=True))


@pytest.fixture
def database() -> Iterator[str]:
    with temporary_database() as url:
        yield url


class Traffic:
    """Client threads calling /predict with random user ids, sending each true label as feedback."""

    def __init__(self, url: str, records: list[tuple[dict[str, Any], str]], threads: int = 4) -> None:
        self.url, self.records = url, records
        self.served: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(seed,)) for seed in range(threads)]

    def _run(self, seed: int) -> None:
        rng = random.Random(seed)
        labels: list[dict[str, Any]] = []
        with httpx.Client(timeout=30) as client:
            while not self._stop.is_set():
                record, label = rng.choice(self.records)
                headers = {"X-User-ID": f"user-{rng.randrange(10**9)}"}
                response = client.post(f"{self.url}/predict", json={"record": record}, headers=headers)
                self.statuses[response.status_code] += 1
                if response.status_code == 200:
                    body = response.json()
                    self.served[body["variant"]] += 1
                    labels.append({"request_id": body["request_id"], "label": label})
                if len(labels) >= FEEDBACK_EVERY:  # labels arrive a little after their predictions
                    client.post(f"{self.url}/feedback_batch", json={"items": labels})
                    labels = []

    def __enter__(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()


_clients = threading.local()


def predict(url: str, record: dict[str, Any], key: str | None = None) -> dict[str, Any]:
    """POST /predict on a kept-alive connection of this thread's own."""
    if not hasattr(_clients, "client"):
        _clients.client = httpx.Client()
    headers = {"X-User-ID": key} if key else {}
    response = _clients.client.post(f"{url}/predict", json={"record": record}, headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    return dict(response.json())


# --- A/B: weights, stickiness, minimal movement, the prediction log, the report -----------


def test_ab_split_is_weighted_sticky_and_logged(
    logs: Path,
    database: str,
    default_model: StoredModel,
    candidate_model: StoredModel,
    labelled_records: list[tuple[dict[str, Any], str]],
    tmp_path: Path,
) -> None:
    deployment = {
        "variants": {"champion": default_model.tag, "candidate": candidate_model.tag},
        "policy": {"strategy": "ab", "weights": {"champion": 70, "candidate": 30}},
        "sticky_field": "customer_id",
    }
    keys = [f"user-{i}" for i in range(3000)]
    with deployment_server(logs, deployment, database) as url:
        labels: list[dict[str, Any]] = []

        def serve(key: str) -> str:
            record, label = labelled_records[int(key.split("-")[1]) % len(labelled_records)]
            body = predict(url, record, key)
            labels.append({"request_id": body["request_id"], "label": label})
            assert (
                body["model"]
                == {"champion": default_model.tag, "candidate": candidate_model.tag}[body["variant"]]
            )
            return str(body["variant"])

        with ThreadPoolExecutor(8) as pool:
            first = dict(zip(keys, pool.map(serve, keys), strict=True))
        share = sum(variant == "candidate" for variant in first.values()) / len(keys)
        assert share == pytest.approx(0.30, abs=0.03)  # binomial sd 0.008

        again = {key: serve(key) for key in keys[:300]}
        assert again == {key: first[key] for key in keys[:300]}  # sticky by header
        record = labelled_records[0][0]
        by_field = {predict(url, {**record, "customer_id": "user-7"})["variant"] for _ in range(20)}
        assert by_field == {first["user-7"]}  # sticky by the configured field, same hash

        # 70/30 -> 50/50: only champion keys move, and only about the 20% that must.
        assert (
            admin(url, "weights", weights={"champion": 50, "candidate": 50}, reason="even split").status_code
            == 200
        )
        with ThreadPoolExecutor(8) as pool:
            after = dict(zip(keys[:1000], pool.map(serve, keys[:1000]), strict=True))
        moved = [key for key in after if after[key] != first[key]]
        assert all(first[key] == "champion" for key in moved)
        assert len(moved) / 1000 == pytest.approx(0.20, abs=0.04)

        for start in range(0, len(labels), 2000):  # within the test config's body limit
            stored = httpx.post(
                f"{url}/feedback_batch", json={"items": labels[start : start + 2000]}, timeout=60
            )
            assert stored.status_code == 200, stored.text
        engine = make_engine(database)
        with engine.connect() as connection:
            query = text("SELECT variant, count(*) FROM predictions GROUP BY variant")
            logged = {str(variant): int(count) for variant, count in connection.execute(query)}
        engine.dispose()
        assert sum(logged.values()) >= 4300 and set(logged) == {"champion", "candidate"}

    report_dir = tmp_path / "reports"
    config = tmp_path / "report.yaml"
    config.write_text(f"monitoring:\n  reports_dir: {report_dir}\n  min_labels: 30\n")
    result = run_tabserve(
        "deploy", "report", "--config", str(config), env={"TABSERVE_DATABASE_URL": database}
    )
    assert result.returncode == 0, result.stderr
    assert "A: champion" in result.stdout and "two-proportion z-test: p = " in result.stdout
    assert "verdict: no evidence that B's accuracy differs from A's" in result.stdout  # the same model twice
    assert len(list(report_dir.glob("ab-*.html"))) == 1 and len(list(report_dir.glob("ab-*.json"))) == 1


# --- shadow ------------------------------------------------------------------------------------


def test_a_failing_or_stalled_shadow_changes_and_delays_nothing(
    logs: Path, database: str, default_model: StoredModel, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"  # the stalled shadow answers only once this file exists
    failing, stalled = failing_variant(default_model), gated_variant(default_model, gate)
    deployment = {
        "variants": {"champion": default_model.tag, "failing": failing.tag, "stalled": stalled.tag},
        "policy": {"strategy": "shadow", "champion": "champion", "candidate": "failing"},
    }
    records = reference_records(default_model, 30)
    expected = [result["prediction"] for result in default_model.load_predictor().predict_records(records)]
    with deployment_server(logs, deployment, database) as url:
        served = [predict(url, record) for record in records]
        assert [body["prediction"] for body in served] == expected
        assert {body["variant"] for body in served} == {"champion"}
        errors = ("tabserve_variant_errors_total", (("model", failing.tag), ("variant", "failing")))
        wait_for(lambda: metric_samples(url).get(errors, 0) >= 1, 10, "the failing shadow's errors counted")
        # One counter per fact: records scored per variant are tabserve_predictions_total.
        samples = metric_samples(url)
        scored = {
            labels: value for (name, labels), value in samples.items() if name == "tabserve_predictions_total"
        }
        assert sum(v for labels, v in scored.items() if ("variant", "champion") in labels) == len(records)
        assert not any(name.startswith("tabserve_variant_requests") for name, _ in samples)

        policy = {"strategy": "shadow", "champion": "champion", "candidate": "stalled"}
        assert admin(url, "policy", policy=policy, reason="shadow the stalled one").status_code == 200
        engine = make_engine(database)

        def shadow_rows() -> int:
            with engine.connect() as connection:
                query = text(
                    "SELECT count(*) FROM predictions WHERE variant = 'stalled' AND request_id LIKE :shadow"
                )
                return int(connection.execute(query, {"shadow": "%:shadow"}).scalar_one())

        # Every answer comes back while the shadow cannot finish: none of them waited for it.
        served = [predict(url, record) for record in records]
        assert [body["prediction"] for body in served] == expected
        assert served[-1]["request_id"] and shadow_rows() == 0
        gate.touch()
        wait_for(shadow_rows, 30, "the released shadow's predictions logged")
        with engine.connect() as connection:
            failing_rows = connection.execute(
                text("SELECT count(*) FROM predictions WHERE variant = 'failing'")
            )
            assert failing_rows.scalar_one() == 0
        engine.dispose()


# --- admin API: auth, validation, persistence, every worker ------------------------------------


def test_admin_api_needs_the_token(
    service_url: str, logs: Path, database: str, default_model: StoredModel
) -> None:
    # The shared test service runs without TABSERVE_ADMIN_TOKEN: the admin API is off.
    assert httpx.get(f"{service_url}/admin/state").status_code == 401
    off = httpx.get(f"{service_url}/admin/state", headers=AUTH)
    assert off.status_code == 403 and "TABSERVE_ADMIN_TOKEN" in off.json()["error"]
    deployment = {
        "variants": {"blue": default_model.tag, "green": default_model.tag},
        "policy": {"strategy": "blue-green"},
    }
    with deployment_server(logs, deployment, database) as url:
        for method, path in (("GET", "state"), ("GET", "events"), ("POST", "switch")):
            missing = httpx.request(method, f"{url}/admin/{path}", json={"reason": "x"})
            assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
            wrong = httpx.request(
                method, f"{url}/admin/{path}", json={"reason": "x"}, headers={"Authorization": "Bearer no"}
            )
            assert wrong.status_code == 403
        assert state(url)["state"]["policy"]["active"] == "blue"  # nothing changed
        no_reason = admin(url, "switch")
        assert no_reason.status_code == 400 and no_reason.json()["detail"][0]["loc"] == ["reason"]
        unknown = admin(url, "switch", to="purple", reason="typo")
        assert unknown.status_code == 400 and "no variant 'purple'" in unknown.json()["error"]
        assert (
            admin(url, "promote", reason="x").status_code == 200
        )  # candidate defaults to the second variant
        assert admin(url, "dance", reason="x").status_code == 404


def test_policy_survives_a_restart_and_reaches_every_worker(
    logs: Path, database: str, default_model: StoredModel, candidate_model: StoredModel
) -> None:
    deployment = {
        "variants": {"blue": default_model.tag, "green": candidate_model.tag},
        "policy": {"strategy": "blue-green", "active": "blue"},
    }
    record = reference_records(default_model, 1)[0]
    with deployment_server(logs, deployment, database) as url:
        assert predict(url, record)["variant"] == "blue"
        switched = _deploy_cli(url, "--actor", "alice", "switch", "--reason", "release 2")
        assert "green" in switched.stdout and switched.returncode == 0
        assert {predict(url, record)["variant"] for _ in range(20)} == {"green"}  # at once
        version = state(url)["version"]

    with deployment_server(logs, deployment, database, workers=2) as url:
        assert state(url)["version"] == version
        assert {predict(url, record)["variant"] for _ in range(20)} == {"green"}
        events = httpx.get(f"{url}/admin/events", headers=AUTH).json()["events"]
        switch = next(event for event in events if event["action"] == "switch")
        assert (switch["actor"], switch["reason"]) == ("alice", "release 2")

        assert admin(url, "rollback", reason="back to blue").status_code == 200

        def every_worker_on_blue() -> bool:
            seen = {}
            for _ in range(40):
                body = state(url)
                seen[body["worker"]] = body["state"]["policy"]["active"]
            return len(seen) == 2 and set(seen.values()) == {"blue"}

        wait_for(every_worker_on_blue, 15, "both workers serving blue")
        assert {predict(url, record)["variant"] for _ in range(40)} == {"blue"}
        status = _deploy_cli(url, "status").stdout.splitlines()
        assert status[0].endswith("strategy blue-green") and status[1].split() == [
            "VARIANT",
            "MODEL",
            "ROLE",
            "TRAFFIC",
        ]
        assert status[2].split() == ["blue", default_model.tag, "champion,", "active", "100.0%"]
        assert status[3].split() == ["green", candidate_model.tag, "candidate,", "rollback", "target", "0.0%"]
        events = _deploy_cli(url, "events").stdout.splitlines()
        assert events[0].split() == ["TIME", "VERSION", "ACTION", "ACTOR", "REASON"]
        assert events[1].split()[2:] == ["rollback", "admin-api", "back", "to", "blue"]


def test_the_service_answers_while_its_database_is_down_and_loads_the_state_when_it_is_back(
    logs: Path, default_model: StoredModel, candidate_model: StoredModel
) -> None:
    cluster = ThrowawayCluster(free_port())  # created, not started: the database is down
    deployment = {
        "variants": {"blue": default_model.tag, "green": candidate_model.tag},
        "policy": {"strategy": "blue-green", "active": "blue"},
    }
    record = reference_records(default_model, 1)[0]
    try:
        with deployment_server(logs, deployment, cluster.url) as url:
            assert predict(url, record)["variant"] == "blue"  # the configured policy, unstored
            assert state(url)["version"] == 0
            down = admin(url, "switch", reason="during the outage")
            assert down.status_code == 503 and "unreachable" in down.json()["error"]
            cluster.start()
            wait_for(lambda: state(url)["version"] >= 1, 30, "the state stored once the database is back")
            assert admin(url, "switch", reason="after the outage").status_code == 200
            assert predict(url, record)["variant"] == "green"
        assert count_rows(cluster.url) >= 2  # predictions made during the outage were spooled, then written
    finally:
        cluster.remove()


def _deploy_cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return run_tabserve("deploy", "--url", url, *args, env={"TABSERVE_ADMIN_TOKEN": ADMIN_TOKEN})


# --- progressive delivery ---------------------------------------------------------------------


def _run_rollout(
    logs: Path,
    database: str,
    champion: StoredModel,
    candidate: StoredModel,
    records: list[tuple[dict[str, Any], str]],
    guards: dict[str, Any] | None = None,
) -> tuple[Traffic, dict[str, Any]]:
    deployment = {
        "variants": {"champion": champion.tag, "candidate": candidate.tag},
        "rollout": {**FAST_ROLLOUT, **(guards or {})},
    }
    with deployment_server(logs, deployment, database) as url:
        started = admin(url, "rollout", reason="ship the candidate")
        assert started.status_code == 200, started.text
        assert started.json()["traffic"] == {"champion": 0.8, "candidate": 0.2}
        # No traffic yet: the step waits for its requests, and `status` says how far it is.
        wait_for(lambda: state(url)["progress"] is not None, 30, "the step judged once")
        running = _deploy_cli(url, "status").stdout
        assert re.search(
            r"rollout: running, step 1/2 \(20% of traffic\): 0/40 candidate requests, \d+/3 s", running
        )
        with Traffic(url, records) as traffic:

            def finished() -> dict[str, Any] | None:
                rollout = state(url)["state"]["rollout"]
                return rollout if rollout["state"] != "running" else None

            rollout = wait_for(finished, 90, "the rollout to finish")
            metrics = metric_samples(url)
            assert metrics[("tabserve_rollout_state", (("state", rollout["state"]),))] == 1.0
            events = httpx.get(f"{url}/admin/events", headers=AUTH).json()["events"]
            assert events[0]["actor"] == "rollout" and events[0]["reason"] == rollout["reason"]
        finished_status = _deploy_cli(url, "status").stdout
        assert f"last rollout: {rollout['state'].replace('_', ' ')} at step " in finished_status
        after_rollback = ""
        if rollout["state"] == "promoted":  # undone by an operator: status must say so
            _deploy_cli(url, "rollback", "--reason", "undo the promotion")
            after_rollback = _deploy_cli(url, "status").stdout
        return traffic, {**rollout, "metrics": metrics, "after_rollback": after_rollback}


def test_a_slow_candidate_is_rolled_back_by_the_latency_guard(
    logs: Path, database: str, default_model: StoredModel, labelled_records: list[tuple[dict[str, Any], str]]
) -> None:
    slow = slow_variant(default_model, delay_s=0.5)
    traffic, rollout = _run_rollout(logs, database, default_model, slow, labelled_records)
    assert rollout["state"] == "rolled_back" and traffic.served["slow"] == 0  # variant names, not tags
    assert traffic.served["candidate"] > 0
    assert rollout["reason"].startswith("guard p99_latency fired at step 1 (20%)")
    assert rollout["guards"]["p99_latency"]["ok"] is False and rollout["guards"]["p99_latency"]["value"] > 250
    assert rollout["metrics"][("tabserve_rollout_guard_ok", (("guard", "p99_latency"),))] == 0.0
    log = "\n".join(path.read_text() for path in logs.glob("bentoml-*.log"))
    assert "deployment roll_back by rollout: guard p99_latency fired" in log


def test_a_failing_candidate_is_rolled_back_by_the_error_guard(
    logs: Path, database: str, default_model: StoredModel, labelled_records: list[tuple[dict[str, Any], str]]
) -> None:
    traffic, rollout = _run_rollout(
        logs, database, default_model, failing_variant(default_model), labelled_records
    )
    assert rollout["state"] == "rolled_back" and "error_rate" in rollout["reason"]
    assert traffic.statuses[500] > 0 and traffic.served["candidate"] == 0
    assert rollout["guards"]["error_rate"]["value"] == 1.0


def test_a_candidate_trained_on_shuffled_labels_is_rolled_back_by_the_quality_guard(
    logs: Path,
    database: str,
    default_model: StoredModel,
    shuffled_model: StoredModel,
    labelled_records: list[tuple[dict[str, Any], str]],
) -> None:
    # Prediction drift off, so the quality guard on feedback labels must catch it.
    guards = {"max_prediction_psi": 100}
    _, rollout = _run_rollout(logs, database, default_model, shuffled_model, labelled_records, guards)
    assert rollout["state"] == "rolled_back" and "guard quality fired" in rollout["reason"]
    quality = rollout["guards"]["quality"]
    assert quality["ok"] is False and "accuracy" in quality["detail"]


def test_a_good_candidate_is_promoted(
    logs: Path,
    database: str,
    default_model: StoredModel,
    candidate_model: StoredModel,
    labelled_records: list[tuple[dict[str, Any], str]],
) -> None:
    traffic, rollout = _run_rollout(logs, database, default_model, candidate_model, labelled_records)
    assert rollout["state"] == "promoted", rollout["reason"]
    assert traffic.statuses.keys() == {200} and traffic.served["candidate"] > traffic.served["champion"] * 0.2
    assert all(guard["ok"] for guard in rollout["guards"].values())
    assert {guard["value"] is not None for guard in rollout["guards"].values()} == {True}  # all measured
    assert "rolled back after its promotion: undo the promotion" in rollout["after_rollback"]
    assert "promoted at" not in rollout["after_rollback"]
