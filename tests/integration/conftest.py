"""Integration fixtures: models trained with the real CLI, services started with `bentoml serve`."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tabserve.model_store import StoredModel, get_model
from tabserve.predictions.migration import upgrade as upgrade_schema
from tabserve.predictions.store import make_engine
from tabserve.serving.api_keys import hash_key
from tests.factories import mixed_frame, personal_frame, write_csv
from tests.postgres import temporary_database
from tests.servers import REPO, bentoml_server

# Small limits so the limit tests send small bodies; monitoring outputs in a temporary folder.
TEST_CONFIG = """
serving:
  workers: 1                   # one per core is the default; the deployment tests ask for more
  max_batch_records: 20
  max_body_bytes: 200000
  max_upload_bytes: 1000000
  explanations:
    max_batch_records: 5
monitoring:
  metrics_refresh_s: 1
  min_samples: 100
  min_labels: 20
  reports_dir: {folder}/reports
  workspace: {folder}/workspace
  spool_dir: {folder}/spool
"""


def run_train(*args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "tabserve", "train", *args], cwd=REPO, check=True, capture_output=True
    )


@pytest.fixture(scope="session")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("logs")


@pytest.fixture(scope="session")
def default_model() -> StoredModel:
    run_train()
    return get_model("breast_cancer:latest")


@pytest.fixture(scope="session")
def test_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("config")
    path = folder / "configuration.yaml"
    path.write_text(TEST_CONFIG.format(folder=folder))
    return path


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    with temporary_database() as url:
        engine = make_engine(url)
        upgrade_schema(engine)  # so row counts work before the first prediction
        engine.dispose()
        yield url


@pytest.fixture(scope="session")
def service_env(test_config: Path, pg_url: str) -> dict[str, str]:
    return {"TABSERVE_CONFIG": str(test_config), "TABSERVE_DATABASE_URL": pg_url}


@pytest.fixture(scope="session")
def service_url(default_model: StoredModel, service_env: dict[str, str], logs: Path) -> Iterator[str]:
    with bentoml_server(logs, service_env) as url:
        yield url


# API keys of the keyed service: the full one (every right but admin) and one per right.
API_KEYS = {"full": "test-key-full", "scorer": "test-key-score", "labeller": "test-key-feedback"}
API_KEY_RIGHTS = {"full": "", "scorer": ":score", "labeller": ":feedback"}


def api_keys_env(keys: dict[str, str] = API_KEYS) -> str:
    """TABSERVE_API_KEYS for `keys` (name -> key): hashes only, as an operator configures them."""
    return ",".join(f"{name}:{hash_key(key)}{API_KEY_RIGHTS.get(name, '')}" for name, key in keys.items())


def bearer(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {API_KEYS[name]}"}


@pytest.fixture(scope="session")
def keyed_service_url(default_model: StoredModel, service_env: dict[str, str], logs: Path) -> Iterator[str]:
    """The service with API keys required (as the image runs it), sharing the session's database."""
    env = {**service_env, "TABSERVE_API_KEYS": api_keys_env(), "TABSERVE_API_KEYS_REQUIRED": "true"}
    with bentoml_server(logs, env) as url:
        yield url


@pytest.fixture(scope="session")
def candidate_model(default_model: StoredModel) -> StoredModel:
    """The same data and settings, trained again: a new version that is as good."""
    run_train("--name", "candidate")
    return get_model("candidate:latest")


@pytest.fixture(scope="session")
def mixed_model(tmp_path_factory: pytest.TempPathFactory) -> StoredModel:
    data = write_csv(mixed_frame(), tmp_path_factory.mktemp("data") / "mixed.csv")
    run_train("--data", str(data), "--target", "label", "--name", "mixed")
    return get_model("mixed:latest")


@pytest.fixture(scope="session")
def personal_model(tmp_path_factory: pytest.TempPathFactory) -> StoredModel:
    """A model whose features include an email and a name (the log policy tests)."""
    data = write_csv(personal_frame(), tmp_path_factory.mktemp("data") / "personal.csv")
    run_train("--data", str(data), "--target", "label", "--name", "personal")
    model = get_model("personal:latest")
    assert {"email", "name"} <= set(model.schema.categorical)  # features the model uses
    return model


ADMIN_TOKEN = "test-admin-token"


def deployment_config(folder: Path, deployment: dict[str, Any]) -> Path:
    """The test configuration plus a `deployment` section, in a file of its own."""
    path = folder / f"deployment-{uuid.uuid4().hex[:8]}.yaml"
    base = yaml.safe_load(TEST_CONFIG.format(folder=folder))
    path.write_text(yaml.safe_dump({**base, "deployment": deployment}, sort_keys=False))
    return path


@contextlib.contextmanager
def deployment_server(
    logs: Path, deployment: dict[str, Any], database_url: str, workers: int = 1
) -> Iterator[str]:
    """`bentoml serve` with these variants and policy, an admin token, and its own database."""
    env = {
        "TABSERVE_CONFIG": str(deployment_config(logs, deployment)),
        "TABSERVE_DATABASE_URL": database_url,
        "TABSERVE_ADMIN_TOKEN": ADMIN_TOKEN,
    }
    if workers > 1:
        env["TABSERVE_WORKERS"] = str(workers)
    with bentoml_server(logs, env) as url:
        yield url
