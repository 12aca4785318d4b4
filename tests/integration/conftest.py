"""Integration fixtures: models trained with the real CLI, services started with `bentoml serve`."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tabserve.model_store import StoredModel, get_model
from tests.factories import mixed_frame, write_csv
from tests.servers import REPO, bentoml_server

# Small limits so the limit tests send small bodies.
LIMITS_CONFIG = """
serving:
  max_batch_records: 20
  max_body_bytes: 200000
"""


def run_train(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "train", *args], cwd=REPO, check=True, capture_output=True)


@pytest.fixture(scope="session")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("logs")


@pytest.fixture(scope="session")
def default_model() -> StoredModel:
    run_train()
    return get_model("breast_cancer:latest")


@pytest.fixture(scope="session")
def limits_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("config") / "configuration.yaml"
    path.write_text(LIMITS_CONFIG)
    return path


@pytest.fixture(scope="session")
def service_url(default_model: StoredModel, limits_config: Path, logs: Path) -> Iterator[str]:
    with bentoml_server(logs, {"TABSERVE_CONFIG": str(limits_config)}) as url:
        yield url


@pytest.fixture(scope="session")
def mixed_model(tmp_path_factory: pytest.TempPathFactory) -> StoredModel:
    data = write_csv(mixed_frame(), tmp_path_factory.mktemp("data") / "mixed.csv")
    run_train("--data", str(data), "--target", "label", "--name", "mixed")
    return get_model("mixed:latest")
