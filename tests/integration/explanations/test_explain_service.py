"""/explain, /explain_batch and GET /explain/{request_id} on the real service and PostgreSQL."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bentoml
import httpx
import pytest
from sqlalchemy import text

from tabserve.explanations.answers import explanations
from tabserve.explanations.explainer import Explainer
from tabserve.model_store import StoredModel, get_model
from tabserve.predictions.store import make_engine
from tabserve.settings import ExplanationSettings
from tests.factories import reference_records
from tests.faults import shuffled_label_data
from tests.integration.conftest import ADMIN_TOKEN, deployment_server, run_train
from tests.postgres import temporary_database

TIMEOUT = 60
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def post(url: str, path: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(f"{url}{path}", json=body, headers=headers, timeout=TIMEOUT)


def offline(stored: StoredModel, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The same explanation computed here, from the store, by the named model version."""
    explainer = Explainer(stored.load_predictor(), stored.load_reference(), ExplanationSettings())
    return explanations(explainer.explain_records(records))


def same(found: Any, expected: Any, tolerance: float = 1e-9) -> bool:
    """Nested explanation values equal to `tolerance` (pytest.approx does not nest)."""
    if isinstance(expected, dict):
        return (
            isinstance(found, dict)
            and set(found) == set(expected)
            and all(same(found[key], expected[key], tolerance) for key in expected)
        )
    if isinstance(expected, float | int) and not isinstance(expected, bool):
        return abs(found - expected) <= tolerance
    return bool(found == expected)


def assert_additive(explanation: dict[str, Any]) -> None:
    total = explanation["base_value"] + sum(explanation["contributions"].values())
    assert total == pytest.approx(explanation["output"], abs=1e-6)


def test_explain_answers_the_prediction_and_why_on_the_users_columns(
    service_url: str, default_model: StoredModel
) -> None:
    record = reference_records(default_model, 1)[0]
    answer = post(service_url, "/explain", {"record": record})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    predicted = post(service_url, "/predict", {"record": record}).json()
    assert body["prediction"] == predicted["prediction"] and body["model"] == default_model.tag
    assert body["probabilities"] == pytest.approx(predicted["probabilities"], abs=1e-12)
    explanation = body["explanation"]
    assert (explanation["method"], explanation["output_space"]) == ("tree_shap", "log_odds")
    assert list(explanation["contributions"]) == default_model.schema.names
    assert_additive(explanation)
    positive = str(default_model.classes[1])  # type: ignore[index]
    assert 1 / (1 + math.exp(-explanation["output"])) == pytest.approx(
        body["probabilities"][positive], abs=1e-9
    )
    assert same(explanation, offline(default_model, [record])[0])


def test_a_logged_prediction_is_explained_again_by_its_request_id(
    service_url: str, default_model: StoredModel
) -> None:
    records = reference_records(default_model, 3)
    answers = post(service_url, "/explain_batch", {"records": records}).json()["predictions"]
    assert [a["request_id"] for a in answers] and all(a["variant"] == "default" for a in answers)
    for answer in answers:
        again = httpx.get(f"{service_url}/explain/{answer['request_id']}", timeout=TIMEOUT)
        assert again.status_code == 200, again.text
        found = again.json()
        assert {k: found[k] for k in ("prediction", "model", "variant", "request_id")} == {
            k: answer[k] for k in ("prediction", "model", "variant", "request_id")
        }
        assert same(found["explanation"], answer["explanation"])
    unknown = httpx.get(f"{service_url}/explain/no-such-request", timeout=TIMEOUT)
    assert unknown.status_code == 404 and "no-such-request" in unknown.json()["error"]


def test_bad_input_gets_the_same_400_as_predict(service_url: str, default_model: StoredModel) -> None:
    record = reference_records(default_model, 1)[0]
    name = default_model.schema.names[0]
    for bad in ({**record, name: "not a number"}, {k: v for k, v in record.items() if k != name}):
        explained, predicted = (
            post(service_url, "/explain", {"record": bad}),
            post(service_url, "/predict", {"record": bad}),
        )
        assert explained.status_code == predicted.status_code == 400
        assert explained.json() == predicted.json() and name in explained.text
    batch = post(service_url, "/explain_batch", {"records": [record, {**record, name: "x"}]})
    assert batch.status_code == 400 and name in batch.text


def test_explain_batch_past_its_limit_is_413_naming_the_setting(
    service_url: str, default_model: StoredModel
) -> None:
    records = reference_records(default_model, 6)  # the test configuration allows 5
    answer = post(service_url, "/explain_batch", {"records": records})
    assert answer.status_code == 413
    assert "serving.explanations.max_batch_records" in answer.text and "at most 5" in answer.text
    assert post(service_url, "/explain_batch", {"records": records[:5]}).status_code == 200


@pytest.fixture(scope="module")
def shuffled_model(tmp_path_factory: pytest.TempPathFactory, default_model: StoredModel) -> StoredModel:
    """Same features, other labels: a model whose explanations differ from the default one's."""
    data = shuffled_label_data(tmp_path_factory.mktemp("shuffled") / "shuffled.csv", "diagnosis")
    run_train("--data", str(data), "--target", "diagnosis", "--name", "explained_other")
    return get_model("explained_other:latest")


@pytest.fixture
def database() -> Iterator[str]:
    with temporary_database() as url:
        yield url


def test_each_explanation_comes_from_the_variant_that_answered(
    logs: Path, database: str, default_model: StoredModel, shuffled_model: StoredModel
) -> None:
    deployment = {
        "variants": {"champion": default_model.tag, "candidate": shuffled_model.tag},
        "policy": {
            "strategy": "canary",
            "champion": "champion",
            "candidate": "candidate",
            "canary_percent": 50,
        },
    }
    stored = {"champion": default_model, "candidate": shuffled_model}
    records = reference_records(default_model, 5)
    with deployment_server(logs, deployment, database) as url:
        answers = []
        for index in range(6):  # routed by key: different users land on both sides
            headers = {"X-User-ID": f"user-{index}"}
            answers += post(url, "/explain_batch", {"records": records}, headers).json()["predictions"]
        assert {answer["variant"] for answer in answers} == {"champion", "candidate"}
        for answer, record in zip(answers, records * 6, strict=True):
            assert answer["model"] == stored[answer["variant"]].tag
            assert same(answer["explanation"], offline(stored[answer["variant"]], [record])[0])
        # The two models explain the same record differently: the check above can tell them apart.
        assert not same(offline(default_model, records[:1])[0], offline(shuffled_model, records[:1])[0], 1e-3)

        shadow = {"strategy": "shadow", "champion": "champion", "candidate": "candidate"}
        changed = httpx.post(
            f"{url}/admin/policy", json={"policy": shadow, "reason": "shadow"}, headers=AUTH, timeout=30
        )
        assert changed.status_code == 200, changed.text
        answer = post(url, "/explain", {"record": records[0]}).json()
        assert answer["variant"] == "champion"
        # The shadow's own prediction of the same request, explained by the shadow's model.
        engine = make_engine(database)
        shadow_id = f"{answer['request_id']}:shadow"
        found = httpx.get(f"{url}/explain/{shadow_id}", timeout=TIMEOUT)
        for _ in range(50):
            if found.status_code != 404:
                break
            found = httpx.get(f"{url}/explain/{shadow_id}", timeout=TIMEOUT)
        assert found.status_code == 200, found.text
        assert (found.json()["variant"], found.json()["model"]) == ("candidate", shuffled_model.tag)
        assert same(found.json()["explanation"], offline(shuffled_model, records[:1])[0])
        engine.dispose()


def test_a_prediction_of_a_model_version_gone_from_the_store_is_410(
    logs: Path, database: str, default_model: StoredModel, tmp_path: Path
) -> None:
    data = shuffled_label_data(tmp_path / "retired.csv", "diagnosis", seed=3)
    run_train("--data", str(data), "--target", "diagnosis", "--name", "retired")
    retired = get_model("retired:latest")
    record = reference_records(default_model, 1)[0]
    served = {"variants": {"old": retired.tag}, "policy": {"strategy": "single", "active": "old"}}
    with deployment_server(logs, served, database) as url:
        request_id = post(url, "/predict", {"record": record}).json()["request_id"]
        assert httpx.get(f"{url}/explain/{request_id}", timeout=TIMEOUT).status_code == 200
    bentoml.models.delete(retired.tag)  # the version is retired from the store
    current = {"variants": {"new": default_model.tag}, "policy": {"strategy": "single", "active": "new"}}
    with deployment_server(logs, current, database) as url:
        gone = httpx.get(f"{url}/explain/{request_id}", timeout=TIMEOUT)
        assert gone.status_code == 410 and retired.tag in gone.json()["error"]
        engine = make_engine(database)
        with engine.connect() as connection:
            logged = connection.execute(
                text("SELECT model FROM predictions WHERE request_id = :id"), {"id": request_id}
            )
            assert logged.scalar_one() == retired.tag
        engine.dispose()
