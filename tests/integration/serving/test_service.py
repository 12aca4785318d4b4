"""The real service over HTTP: `bentoml serve` in a subprocess, called with httpx and BentoML's client."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import bentoml
import httpx
import pytest

from tabserve.model_store import StoredModel
from tests.factories import reference_records
from tests.servers import bentoml_server


def test_predict_matches_the_local_model(service_url: str, default_model: StoredModel) -> None:
    records = reference_records(default_model, 5)
    local = default_model.load_predictor().predict_records(records)
    for record, expected in zip(records, local, strict=True):
        body = httpx.post(f"{service_url}/predict", json={"record": record}).json()
        assert body["prediction"] == expected["prediction"] in ("benign", "malignant")
        assert body["probabilities"] == pytest.approx(expected["probabilities"])
        assert body["model"] == default_model.tag and len(body["request_id"]) == 32
        assert body["variant"] == "default"  # no variants configured: one, named default


def test_predict_batch_items_are_shaped_like_predict(service_url: str, default_model: StoredModel) -> None:
    records = reference_records(default_model, 20)
    body = httpx.post(f"{service_url}/predict_batch", json={"records": records}).json()
    assert len(body["predictions"]) == 20
    assert {tuple(sorted(item)) for item in body["predictions"]} == {
        ("model", "prediction", "probabilities", "request_id", "variant")
    }
    assert {(item["model"], item["variant"]) for item in body["predictions"]} == {
        (default_model.tag, "default")
    }
    assert len({item["request_id"] for item in body["predictions"]}) == 20
    single = httpx.post(f"{service_url}/predict", json={"record": records[3]}).json()
    assert body["predictions"][3]["probabilities"] == pytest.approx(single["probabilities"])


def test_bentoml_sync_client(service_url: str, default_model: StoredModel) -> None:
    record = reference_records(default_model, 1)[0]
    with bentoml.SyncHTTPClient(service_url) as client:
        single = client.predict(record=record)
        batch = client.predict_batch(records=[record, record])
    assert single["prediction"] == batch["predictions"][1]["prediction"]


def _post(url: str, body: Any = None, raw: bytes | None = None) -> httpx.Response:
    content = raw if raw is not None else json.dumps(body).encode()
    return httpx.post(url, content=content, headers={"content-type": "application/json"})


def _record(default_model: StoredModel, **changes: Any) -> dict[str, Any]:
    record = reference_records(default_model, 1)[0]
    for key, value in changes.items():
        if value is KeyError:
            record.pop(key.replace("_", " "))
        else:
            record[key.replace("_", " ")] = value
    return record


@pytest.mark.parametrize(
    ("case", "loc", "reason"),
    [
        ("missing", ["record", "mean radius"], "missing"),
        ("wrong-type", ["record", "mean radius"], "float_parsing"),
        ("nan", ["record", "mean radius"], "finite_number"),
        ("infinity", ["record", "mean radius"], "finite_number"),
        ("extra", ["record", "colour"], "extra_forbidden"),
        ("empty-batch", ["records"], "too_short"),
        ("batch-over-limit", ["records"], "too_long"),
        ("batch-bad-record", ["records", 2, "mean area"], "float_parsing"),
        ("not-json", [], "json_invalid"),
    ],
)
def test_bad_input_is_a_400_naming_field_and_reason(
    service_url: str, default_model: StoredModel, case: str, loc: list[Any], reason: str
) -> None:
    good = _record(default_model)
    nan_body = json.dumps({"record": {**good, "mean radius": 1234.5}}).replace("1234.5", "NaN")
    requests = {
        "missing": lambda: _post(
            f"{service_url}/predict", {"record": _record(default_model, mean_radius=KeyError)}
        ),
        "wrong-type": lambda: _post(f"{service_url}/predict", {"record": {**good, "mean radius": "big"}}),
        "nan": lambda: _post(f"{service_url}/predict", raw=nan_body.encode()),
        "infinity": lambda: _post(f"{service_url}/predict", raw=nan_body.replace("NaN", "Infinity").encode()),
        "extra": lambda: _post(f"{service_url}/predict", {"record": {**good, "colour": "red"}}),
        "empty-batch": lambda: _post(f"{service_url}/predict_batch", {"records": []}),
        "batch-over-limit": lambda: _post(f"{service_url}/predict_batch", {"records": [good] * 21}),
        "batch-bad-record": lambda: _post(
            f"{service_url}/predict_batch", {"records": [good, good, {**good, "mean area": "x"}]}
        ),
        "not-json": lambda: _post(f"{service_url}/predict", raw=b"{record: "),
    }
    response = requests[case]()
    assert response.status_code == 400, response.text
    detail = response.json()["detail"]
    assert [(item["loc"], item["type"]) for item in detail] == [(loc, reason)]
    assert detail[0]["msg"]


def test_body_over_the_limit_is_413(service_url: str) -> None:
    response = _post(f"{service_url}/predict_batch", raw=b'{"records": [' + b" " * 300_000 + b"]}")
    assert response.status_code == 413 and "limit of 200000 bytes" in response.json()["error"]


def test_null_means_missing_and_still_scores(service_url: str, default_model: StoredModel) -> None:
    response = httpx.post(f"{service_url}/predict", json={"record": _record(default_model, mean_radius=None)})
    assert response.status_code == 200 and response.json()["prediction"] in ("benign", "malignant")


def test_openapi_lists_every_feature_and_its_example_runs(
    service_url: str, default_model: StoredModel
) -> None:
    spec = httpx.get(f"{service_url}/docs.json").json()
    record = spec["components"]["schemas"]["Record"]
    assert set(record["properties"]) == set(default_model.schema.names)
    assert all(prop["x-kind"] == "numeric" for prop in record["properties"].values())
    assert httpx.post(f"{service_url}/predict", json={"record": record["example"]}).status_code == 200


def test_model_information(service_url: str, default_model: StoredModel) -> None:
    info = httpx.get(f"{service_url}/model/").json()
    assert info["tag"] == default_model.tag and info["metrics"]["roc_auc"] > 0.95
    assert len(info["feature_schema"]) == 30 and info["training_data"]["rows"] == 569


def test_health_and_metrics(service_url: str) -> None:
    assert httpx.get(f"{service_url}/readyz").status_code == 200
    assert httpx.get(f"{service_url}/livez").status_code == 200
    assert "bentoml_service_request_total" in httpx.get(f"{service_url}/metrics").text


def test_concurrent_single_records_never_see_a_503(service_url: str, default_model: StoredModel) -> None:
    records = reference_records(default_model, 50) * 8

    def call(record: dict[str, Any]) -> int:
        return httpx.post(f"{service_url}/predict", json={"record": record}, timeout=30).status_code

    with ThreadPoolExecutor(32) as pool:
        statuses = list(pool.map(call, records))
    assert statuses == [200] * len(records)


def test_mixed_type_model_serves_missing_and_unseen_values(mixed_model: StoredModel, logs: Path) -> None:
    with bentoml_server(logs, {"TABSERVE_MODEL": "mixed:latest"}) as url:
        spec = httpx.get(f"{url}/docs.json").json()["components"]["schemas"]["Record"]
        assert sorted(spec["properties"]["city"]["x-categories"]) == ["lyon", "nice", "paris"]
        assert spec["properties"]["city"]["x-cardinality"] == 3
        records = [
            {"income": 80.0, "age": 30, "city": "paris"},
            {"income": None, "age": 30, "city": "tokyo"},
            {"income": 10.0, "age": None, "city": None},
        ]
        body = httpx.post(f"{url}/predict_batch", json={"records": records}).json()
        assert [item["prediction"] for item in body["predictions"]][::2] == ["yes", "no"]
        assert body["predictions"][1]["prediction"] in ("yes", "no")


def test_starting_without_a_model_says_how_to_train(logs: Path) -> None:
    with (
        pytest.raises(RuntimeError, match=r"absent:latest.*make train"),
        bentoml_server(logs, {"TABSERVE_MODEL": "absent:latest"}),
    ):
        pass
