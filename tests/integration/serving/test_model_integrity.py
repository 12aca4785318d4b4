"""A model file changed after training stops the server and every CLI, naming the file."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

from tabserve.model_store import PIPELINE_FILE, StoredModel
from tests.faults import save_variant
from tests.servers import BENTOML, REPO, free_port, private_home, run_tabserve

START_TIMEOUT_S = 120
MESSAGE = f"{PIPELINE_FILE} does not match the sha256 recorded when it was saved"


@pytest.fixture
def tampered(default_model: StoredModel) -> StoredModel:
    """A copy of the default model whose pipeline.joblib was replaced after it was saved."""
    stored = save_variant(
        default_model, f"tampered_{uuid.uuid4().hex[:8]}", default_model.load_predictor().pipeline
    )
    with (stored.path / PIPELINE_FILE).open("ab") as file:
        file.write(b"appended after training")
    return stored


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_tabserve(*args, env=env, timeout=START_TIMEOUT_S)


def test_the_server_refuses_to_start(tampered: StoredModel, tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "BENTOML_HOME": private_home(tmp_path, port), "TABSERVE_MODEL": tampered.tag}
    result = subprocess.run(
        [BENTOML, "serve", "service:TabularModel", "--host", "127.0.0.1", "--port", str(port)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT_S,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0 and MESSAGE in output and tampered.tag in output, output[-3000:]


@pytest.mark.parametrize(
    "command",
    [
        ["score", "{csv}", "{out}", "--model", "{tag}", "--quiet"],
        ["stream", "--model", "{tag}"],
        ["monitor", "--model", "{tag}", "--quiet"],
    ],
    ids=["score", "stream", "monitor"],
)
def test_the_clis_exit_2_naming_the_file(tampered: StoredModel, tmp_path: Path, command: list[str]) -> None:
    csv = tmp_path / "in.csv"
    tampered.load_reference()[tampered.schema.names].head(5).to_csv(csv, index=False)
    args = [part.format(csv=csv, out=tmp_path / "out.csv", tag=tampered.tag) for part in command]
    result = run_cli(*args, env={"TABSERVE_DATABASE_URL": f"sqlite:///{tmp_path}/log.db"})
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith("error: ") and MESSAGE in lines[0], result.stderr[-3000:]
    assert not (tmp_path / "out.csv").exists()
