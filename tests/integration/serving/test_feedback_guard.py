"""Ground truth is protected: a token, explicit audited corrections, 503 while the log is down."""

from __future__ import annotations

from pathlib import Path

import httpx
import psycopg

from tabserve.model_store import StoredModel
from tests.factories import reference_records
from tests.postgres import ADMIN_DSN, temporary_database
from tests.servers import bentoml_server

TOKEN = "feedback-test-token"


def test_feedback_needs_the_token_corrections_are_explicit_and_a_dead_database_is_503(
    default_model: StoredModel, test_config: Path, logs: Path
) -> None:
    with temporary_database() as database_url:
        env = {
            "TABSERVE_CONFIG": str(test_config),
            "TABSERVE_DATABASE_URL": database_url,
            "TABSERVE_FEEDBACK_TOKEN": TOKEN,
        }
        with bentoml_server(logs, env) as url:
            record = reference_records(default_model)[0]
            request_id = httpx.post(f"{url}/predict", json={"record": record}).json()["request_id"]
            body = {"request_id": request_id, "label": "benign"}
            auth = {"Authorization": f"Bearer {TOKEN}"}

            missing = httpx.post(f"{url}/feedback", json=body)
            assert missing.status_code == 401 and "Authorization: Bearer" in missing.json()["error"]
            assert missing.headers["www-authenticate"] == "Bearer"
            wrong = httpx.post(f"{url}/feedback", json=body, headers={"Authorization": "Bearer guess"})
            assert wrong.status_code == 403
            batch = httpx.post(f"{url}/feedback_batch", json={"items": [body]})
            assert batch.status_code == 401

            assert httpx.post(f"{url}/feedback", json=body, headers=auth).json() == {"stored": 1}
            assert httpx.post(f"{url}/feedback", json=body, headers=auth).json() == {
                "stored": 1
            }  # same again
            flipped = {**body, "label": "malignant"}
            refused = httpx.post(f"{url}/feedback", json=flipped, headers=auth)
            assert refused.status_code == 409
            assert request_id in refused.json()["error"] and "'benign'" in refused.json()["error"]
            correction = {**flipped, "correct": True, "actor": "reviewer", "reason": "second opinion"}
            assert httpx.post(f"{url}/feedback", json=correction, headers=auth).json() == {"stored": 1}

            dsn = database_url.replace("postgresql+psycopg://", "postgresql://")
            with psycopg.connect(dsn) as connection:
                changes = connection.execute(
                    "SELECT old_label, new_label, actor, reason FROM label_changes "
                    "WHERE request_id = %s ORDER BY id",
                    (request_id,),
                ).fetchall()
            assert changes == [
                (None, "benign", None, None),
                ("benign", "malignant", "reviewer", "second opinion"),
            ]

            name = database_url.rsplit("/", 1)[1]
            with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            down = httpx.post(f"{url}/feedback", json=body, headers=auth)
            assert down.status_code == 503 and "retry" in down.json()["error"]
