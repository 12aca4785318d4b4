"""One cleaning rule set: raw CSV rows score and log alike through the API, file scoring and streams."""

from __future__ import annotations

import csv
import json
import signal
import uuid
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
import redis
from sqlalchemy import select

from tabserve.model_store import StoredModel
from tabserve.predictions.store import make_engine, predictions
from tests.factories import mixed_frame
from tests.integration.batch.test_batch_scoring import score
from tests.redis_streams import REDIS_URL, config, outputs, push, start_worker, wait_until
from tests.servers import bentoml_server

ROWS = 40


@pytest.fixture(scope="module")
def raw_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Rows as a user's file has them: spaces in names and cells, '?' and '' for missing."""
    frame = mixed_frame(rows=ROWS, seed=5).drop(columns=["label"])
    frame[" income "] = frame[" income "].map(lambda v: "?" if pd.isna(v) else f" {v} ")
    frame.loc[3, "city"] = ""
    frame.loc[4, "age"] = "NA"
    path = tmp_path_factory.mktemp("raw") / "raw.csv"
    frame.to_csv(path, index=False)
    return path


def _text_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_api_file_and_stream_agree_on_raw_text_rows(
    mixed_model: StoredModel, raw_csv: Path, test_config: Path, logs: Path, tmp_path: Path
) -> None:
    rows = _text_rows(raw_csv)
    assert all(isinstance(value, str) for row in rows for value in row.values())
    database = f"sqlite:///{tmp_path}/log.db"
    env = {
        "TABSERVE_CONFIG": str(test_config),
        "TABSERVE_MODEL": mixed_model.tag,
        "TABSERVE_DATABASE_URL": database,
    }
    with bentoml_server(logs, env) as url:
        api = []
        for start in range(0, ROWS, 20):  # the test configuration's max_batch_records
            response = httpx.post(
                f"{url}/predict_batch", json={"records": rows[start : start + 20]}, timeout=60
            )
            assert response.status_code == 200, response.text
            api.extend(response.json()["predictions"])
        single = httpx.post(f"{url}/predict", json={"record": rows[0]}, timeout=30).json()
    assert single["probabilities"] == pytest.approx(api[0]["probabilities"])

    scored_path = tmp_path / "scored.csv"
    result = score(str(raw_csv), str(scored_path), "--model", mixed_model.tag)
    assert result.returncode == 0, result.stderr
    scored = pd.read_csv(scored_path)
    assert scored["error"].isna().all()

    streams = {kind: f"test:{uuid.uuid4().hex[:8]}:{kind}" for kind in ("input", "output", "dead")}
    client: Any = redis.Redis.from_url(REDIS_URL)
    try:
        input_ids = push(client, streams["input"], rows)
        stream_env = {"TABSERVE_DATABASE_URL": database, "TABSERVE_MODEL": mixed_model.tag}
        worker = start_worker(config(tmp_path, streams), stream_env, "raw", tmp_path / "worker.log")
        try:
            wait_until(lambda: client.xlen(streams["output"]) >= ROWS)
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(30)
        by_input = {result["input_id"]: result for result in outputs(client, streams["output"])}
        streamed = [by_input[input_id] for input_id in input_ids]
    finally:
        client.delete(*streams.values())

    for index, answer in enumerate(api):
        assert scored["prediction"][index] == answer["prediction"]
        assert scored["probability_yes"][index] == pytest.approx(answer["probabilities"]["yes"])
        assert json.loads(streamed[index]["prediction"]) == answer["prediction"]
        assert json.loads(streamed[index]["probabilities"]) == pytest.approx(answer["probabilities"])

    engine = make_engine(database)
    with engine.connect() as connection:
        logged = {
            row.request_id: row.features
            for row in connection.execute(select(predictions.c.request_id, predictions.c.features))
        }
    engine.dispose()
    first, missing = logged[api[0]["request_id"]], logged[api[3]["request_id"]]
    assert set(first) == {"income", "age", "city"} and isinstance(first["age"], float)
    assert missing["city"] is None and logged[api[4]["request_id"]]["age"] is None
    question = next(i for i, row in enumerate(rows) if row[" income "] == "?")
    assert logged[api[question]["request_id"]]["income"] is None
