"""Business outcomes end to end: predict under an A/B split, post clicks and revenue, read the report.

Known answer: the candidate's users click 1 time in 4, the champion's 1 in 10 (decided by the
request's index, so the counts are exact); every click is worth 10. The report must count each
outcome once (a retried batch changes nothing) and call B better on both outcomes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import yaml

from tabserve.model_store import StoredModel
from tests.factories import reference_records
from tests.integration.conftest import deployment_config
from tests.postgres import ADMIN_DSN, temporary_database
from tests.servers import bentoml_server, run_tabserve

TOKEN = "outcome-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
OUTCOMES = {"click": "rate", "revenue": "value"}
EVERY = {"champion": 10, "candidate": 4}  # one click in 10 requests, one in 4


@pytest.fixture
def database() -> Iterator[str]:
    with temporary_database() as url:
        yield url


def clicked(index: int, variant: str) -> bool:
    return index % EVERY[variant] == 0


def test_outcomes_are_counted_once_and_compared_in_the_report(
    logs: Path, database: str, default_model: StoredModel, candidate_model: StoredModel, tmp_path: Path
) -> None:
    deployment = {
        "variants": {"champion": default_model.tag, "candidate": candidate_model.tag},
        "policy": {"strategy": "ab", "weights": {"champion": 50, "candidate": 50}},
        "outcomes": OUTCOMES,
    }
    env = {
        "TABSERVE_CONFIG": str(deployment_config(tmp_path, deployment)),
        "TABSERVE_DATABASE_URL": database,
        "TABSERVE_FEEDBACK_TOKEN": TOKEN,
    }
    records = reference_records(default_model, 600)
    with bentoml_server(logs, env) as url, httpx.Client(timeout=60) as client:

        def predict(index: int) -> dict[str, Any]:
            answer = client.post(
                f"{url}/predict", json={"record": records[index]}, headers={"X-User-ID": f"u{index}"}
            )
            assert answer.status_code == 200, answer.text
            return dict(answer.json())

        with ThreadPoolExecutor(4) as pool:
            served = list(pool.map(predict, range(len(records))))
        events = [
            item
            for index, body in enumerate(served)
            if clicked(index, body["variant"])
            for item in (
                {"request_id": body["request_id"], "name": "click", "value": 1},
                {"request_id": body["request_id"], "name": "revenue", "value": 10.0},
            )
        ]
        first, rest = events[0], events[1:]

        def post(path: str, body: dict[str, Any], headers: dict[str, str] | None = AUTH) -> httpx.Response:
            return client.post(f"{url}/{path}", json=body, headers=headers)

        assert post("outcome", first, headers=None).status_code == 401
        assert post("outcome", first, headers={"Authorization": "Bearer guess"}).status_code == 403
        assert post("outcome", first).json() == {"stored": 1, "unchanged": 0, "ignored": []}
        stored = post("outcome_batch", {"items": rest})
        assert stored.json() == {"stored": len(rest), "unchanged": 0, "ignored": []}
        retried = post("outcome_batch", {"items": events})  # an at-least-once sender, again
        assert retried.json() == {"stored": 0, "unchanged": len(events), "ignored": []}
        changed = post("outcome", {**first, "value": 0})
        assert changed.json()["ignored"] == [
            {"request_id": first["request_id"], "name": "click", "sent": 0.0, "kept": 1.0}
        ]  # first value wins

        bad_name = post("outcome_batch", {"items": [rest[0], {**rest[0], "name": "klick"}]})
        assert bad_name.status_code == 400 and "items[1].name: 'klick'" in bad_name.json()["error"]
        bad_rate = post("outcome", {**first, "value": 3})
        assert bad_rate.status_code == 400 and "items[0].value" in bad_rate.json()["error"]
        not_a_number = post("outcome", {**first, "value": "lots"})
        assert not_a_number.status_code == 400 and "value" in not_a_number.text
        unknown = post("outcome", {"request_id": "never-served", "name": "click"})
        assert unknown.status_code == 404 and "never-served" in unknown.json()["error"]

        expected = {
            variant: sum(
                clicked(i, body["variant"]) for i, body in enumerate(served) if body["variant"] == variant
            )
            for variant in EVERY
        }
        requests = {variant: sum(body["variant"] == variant for body in served) for variant in EVERY}
        report_dir = tmp_path / "reports"
        config = tmp_path / "report.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "monitoring": {"reports_dir": str(report_dir), "min_labels": 30},
                    "deployment": {"outcomes": OUTCOMES},
                }
            )
        )
        result = run_tabserve(
            "deploy",
            "report",
            "--a",
            "champion",
            "--b",
            "candidate",
            "--config",
            str(config),
            env={"TABSERVE_DATABASE_URL": database},
        )
        assert result.returncode == 0, result.stderr
        (logs / "outcome-report.txt").write_text(result.stdout)  # to read when the test fails

        # The database goes away: an outcome is a 503 to retry, as feedback, never a 500.
        with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{database.rsplit("/", 1)[1]}" WITH (FORCE)')
        down = post("outcome", first)
        assert down.status_code == 503 and "retry" in down.json()["error"]

    a, b = (f"({expected[v]}/{requests[v]})" for v in ("champion", "candidate"))
    assert any(
        line.startswith("click rate (95% CI)") and a in line and b in line
        for line in result.stdout.splitlines()
    )
    assert "B is better than A on click rate" in result.stdout
    assert "B is better than A on revenue per request" in result.stdout
    report = json.loads(next(report_dir.glob("ab-*.json")).read_text())
    by_name = {outcome["name"]: outcome for outcome in report["business_outcomes"]}
    assert by_name["click"]["a"]["events"] == expected["champion"]  # counted once, despite the retry
    assert (
        by_name["click"]["test"] == "two-proportion z-test" and by_name["revenue"]["test"] == "Welch t-test"
    )
    assert by_name["revenue"]["b"]["value"] == pytest.approx(
        10.0 * expected["candidate"] / requests["candidate"]
    )
    assert "Business outcomes" in next(report_dir.glob("ab-*.html")).read_text()
