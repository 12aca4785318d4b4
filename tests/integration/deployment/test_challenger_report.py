"""`tabserve deploy report` on a real service: a shadow compared on the same requests, then a canary.

The same model serves as champion and as its shadow, so the known answers are agreement 1,
PSI 0 and probability deltas 0. The default window starts at the current policy version: the
rows answered before the shadow policy, and the shadow's pairs once a canary replaced it, stay out;
after a restart with another candidate model, the earlier candidate's rows stay out too.
"""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tabserve.deployment.charts import SVG_NS
from tabserve.model_store import StoredModel
from tests.factories import reference_records
from tests.integration.conftest import ADMIN_TOKEN, deployment_server
from tests.postgres import count_rows, temporary_database
from tests.servers import run_tabserve, wait_for

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
STATS_FLUSH_S = 1.5  # past deployment.stats_flush_ms, so every request's numbers are stored


@pytest.fixture
def database() -> Iterator[str]:
    with temporary_database() as url:
        yield url


def admin(url: str, action: str, **body: Any) -> None:
    response = httpx.post(f"{url}/admin/{action}", json=body, headers=AUTH, timeout=30)
    assert response.status_code == 200, response.text


def send(url: str, records: list[dict[str, Any]], count: int) -> None:
    with httpx.Client(timeout=30) as client:
        for i in range(count):
            response = client.post(f"{url}/predict", json={"record": records[i % len(records)]})
            assert response.status_code == 200, response.text


def deploy_report(database: str, folder: Path, *args: str) -> tuple[str, str]:
    """Run the CLI; returns its output and the HTML report it wrote."""
    reports = folder / f"reports-{time.monotonic_ns()}"
    config = folder / "report.yaml"
    config.write_text(f"monitoring:\n  reports_dir: {reports}\n  min_labels: 30\n")
    result = run_tabserve(
        "deploy", "report", "--config", str(config), *args, env={"TABSERVE_DATABASE_URL": database}
    )
    assert result.returncode == 0, result.stderr
    return result.stdout, next(reports.glob("ab-*.html")).read_text()


def line(output: str, name: str) -> str:
    found = [text.strip() for text in output.splitlines() if text.strip().startswith(name)]
    assert len(found) == 1, output
    return found[0]


def bars(page: str) -> list[list[tuple[str | None, str | None]]]:
    """Per inline chart, its bars as (series, category): parsing fails on malformed XML."""
    charts = [ET.fromstring(svg) for svg in re.findall(r"<svg.*?</svg>", page, flags=re.S)]
    return [
        [
            (rect.get("data-series"), rect.get("data-category"))
            for rect in chart.iter(f"{{{SVG_NS}}}rect")
            if rect.get("class") == "bar"
        ]
        for chart in charts
    ]


def test_a_shadow_is_compared_on_the_same_requests_and_a_canary_on_distributions(
    logs: Path, database: str, default_model: StoredModel, candidate_model: StoredModel, tmp_path: Path
) -> None:
    tag = default_model.tag
    deployment = {"variants": {"champion": tag, "candidate": tag}, "policy": {"strategy": "single"}}
    records = reference_records(default_model)
    classes = [str(label) for label in default_model.metadata["classes"]]
    with deployment_server(logs, deployment, database) as url:
        send(url, records, 60)  # before the shadow: the champion alone
        wait_for(lambda: count_rows(database) == 60, 30, "the first 60 predictions logged")
        time.sleep(STATS_FLUSH_S)
        admin(
            url,
            "policy",
            policy={"strategy": "shadow", "champion": "champion", "candidate": "candidate"},
            reason="shadow",
        )
        send(url, records, 150)
        wait_for(
            lambda: count_rows(database, "request_id LIKE '%:shadow'") == 150, 60, "150 shadow rows logged"
        )
        time.sleep(STATS_FLUSH_S)

        shadow_output, shadow_page = deploy_report(database, tmp_path)
        assert f"A: champion ({tag})" in shadow_output and f"B: candidate ({tag})" in shadow_output
        assert "since policy version 2 was applied" in shadow_output
        assert line(shadow_output, "logged predictions").split()[2:] == ["150", "150"]  # not the first 60
        assert "on the same 150 requests (shadow)" in shadow_output
        assert line(shadow_output, "agreement").startswith("agreement          1.000 of 150 requests")
        assert line(shadow_output, "prediction PSI").startswith("prediction PSI     0.000")
        assert line(shadow_output, "probability delta").startswith(
            "probability delta  mean 0.0000, p95 0.0000"
        )
        latency = re.search(r"latency delta\s+p50 ([-+]\d+\.\d) ms, p95 ([-+]\d+\.\d) ms", shadow_output)
        assert latency is not None and all(abs(float(value)) < 1000 for value in latency.groups())
        distribution, deltas = bars(shadow_page)
        assert sorted(distribution) == sorted((v, c) for v in ("champion", "candidate") for c in classes)
        assert len(deltas) == 20  # the probability deltas' histogram

        everything, _ = deploy_report(database, tmp_path, "--since", "2000-01-01T00:00:00+00:00")
        assert line(everything, "logged predictions").split()[2:] == ["210", "150"]  # --since overrides

        admin(url, "canary", percent=50, reason="canary")
        send(url, records, 100)
        wait_for(lambda: count_rows(database) == 460, 30, "the canary's 100 predictions logged")
        time.sleep(STATS_FLUSH_S)
        canary_output, canary_page = deploy_report(database, tmp_path)
    assert "since policy version 3 was applied" in canary_output
    assert "no request was scored by both variants" in canary_output  # the shadow's pairs stay out
    assert "\n  agreement" not in canary_output and "prediction PSI" in canary_output
    logged = [int(count) for count in line(canary_output, "logged predictions").split()[2:]]
    assert sum(logged) == 100 and min(logged) > 20  # half and half, binomial sd 5
    assert len(bars(canary_page)) == 1  # distributions only: no deltas without pairs

    # A restart with another model under the name "candidate": the stored canary still fits the
    # variants, so its version stays; the earlier run's candidate rows are left out all the same.
    deployment["variants"] = {"champion": tag, "candidate": candidate_model.tag}
    with deployment_server(logs, deployment, database) as url:
        send(url, records, 100)
        wait_for(lambda: count_rows(database) == 560, 30, "the restarted service's 100 predictions logged")
        time.sleep(STATS_FLUSH_S)
        restarted, _ = deploy_report(database, tmp_path)
    assert "since policy version 3 was applied" in restarted
    assert f"left out, earlier models: candidate's {tag} ({logged[1]} rows)" in restarted
    assert f"B: candidate ({candidate_model.tag})" in restarted
    assert f"A: champion ({tag})" in restarted  # the champion's model did not change: all its rows count
