"""The image: built by `bentoml containerize` with a real Docker engine, then run and queried.

No registry is reachable here: scripts/build-image.sh builds a local Debian base image
(debootstrap) and passes it as the base-image setting.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tabserve.model_store import StoredModel
from tests.factories import reference_records
from tests.servers import BENTOML, REPO, free_port

STOP_BOUND_S = 15  # documented in the README: SIGTERM -> exit within this
BUILD_TIMEOUT_S = 1500


def docker(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check, timeout=timeout)


def run_detached(name: str, image: str, *args: str, options: tuple[str, ...] = ()) -> None:
    """`docker run -d` on the host network (there is no bridge network here)."""
    docker("run", "-d", "--name", name, "--network", "host", *options, image, *args)


@pytest.fixture(scope="module")
def image(default_model: StoredModel) -> Iterator[str]:
    engine = subprocess.run([str(REPO / "scripts" / "docker-engine.sh")], capture_output=True, text=True)
    if engine.returncode != 0:
        pytest.fail(f"the Docker engine cannot start:\n{engine.stdout}\n{engine.stderr}")
    tag = f"tabserve:test-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "TAG": tag, "PY": sys.executable, "BENTOML": BENTOML}
    build = subprocess.run(
        [str(REPO / "scripts" / "build-image.sh")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
    )
    if build.returncode != 0:
        pytest.fail(f"image build failed:\n{build.stdout[-4000:]}\n{build.stderr[-4000:]}")
    yield tag
    docker("rmi", "-f", tag, check=False)


@pytest.fixture(scope="module")
def container(image: str, pg_url: str) -> Iterator[tuple[str, str]]:
    port = free_port()
    name = f"tabserve-test-{uuid.uuid4().hex[:8]}"
    run_detached(
        name,
        image,
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        options=("-e", f"TABSERVE_DATABASE_URL={pg_url}"),
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if docker("inspect", "-f", "{{.State.Running}}", name).stdout.strip() != "true":
                pytest.fail(f"container exited:\n{docker('logs', name, check=False).stderr[-4000:]}")
            time.sleep(0.5)
        else:
            pytest.fail(f"container not ready:\n{docker('logs', name, check=False).stderr[-4000:]}")
        yield name, url
    finally:
        docker("rm", "-f", name, check=False)


def test_the_container_predicts_like_the_local_model(
    container: tuple[str, str], default_model: StoredModel
) -> None:
    _, url = container
    rows = reference_records(default_model, 12)
    local = default_model.load_predictor().predict_records(rows)
    batch = httpx.post(f"{url}/predict_batch", json={"records": rows}).json()["predictions"]
    single = [httpx.post(f"{url}/predict", json={"record": row}).json() for row in rows]
    for expected, from_batch, from_single in zip(local, batch, single, strict=True):
        assert from_batch["prediction"] == from_single["prediction"] == expected["prediction"]
        assert from_batch["probabilities"] == pytest.approx(expected["probabilities"])
        assert from_single["model"] == default_model.tag


def test_the_server_does_not_run_as_root(container: tuple[str, str]) -> None:
    name, _ = container
    assert docker("exec", name, "id", "-u").stdout.strip() != "0"
    assert (
        docker("exec", name, "sh", "-c", "ps -o user= -p 1 2>/dev/null || stat -c %U /proc/1").stdout.strip()
        != "root"
    )


def test_the_drift_job_runs_from_the_same_image(image: str, pg_url: str, container: tuple[str, str]) -> None:
    job = docker(
        "run",
        "--rm",
        "--network",
        "host",
        "-e",
        f"TABSERVE_DATABASE_URL={pg_url}",
        "-e",
        "TABSERVE_MIN_SAMPLES=5",
        image,
        "python",
        "-m",
        "tabserve",
        "monitor",
        "--quiet",
        "--last",
        "500",
        check=False,
        timeout=300,
    )
    assert job.returncode in (0, 1), job.stdout + job.stderr
    assert "model breast_cancer:" in job.stdout and "verdict:" in job.stdout


def test_the_stream_worker_runs_from_the_same_image(
    image: str, default_model: StoredModel, tmp_path: Path
) -> None:
    client: Any = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    prefix = f"test:image:{uuid.uuid4().hex[:8]}"
    config = tmp_path / "stream.yaml"
    config.write_text(
        f"streaming:\n  input_stream: {prefix}:in\n  output_stream: {prefix}:out\n"
        f"  dead_letter_stream: {prefix}:dead\n"
        f"  block_ms: 200\n"
    )
    config.chmod(0o644)
    for row in reference_records(default_model, 5):
        client.xadd(f"{prefix}:in", {"record": json.dumps(row)})
    name = f"tabserve-stream-{uuid.uuid4().hex[:8]}"
    run_detached(
        name,
        image,
        "python",
        "-m",
        "tabserve",
        "stream",
        options=("-v", f"{config}:/etc/tabserve.yaml:ro", "-e", "TABSERVE_CONFIG=/etc/tabserve.yaml"),
    )
    try:
        deadline = time.monotonic() + 90
        while client.xlen(f"{prefix}:out") < 5 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert client.xlen(f"{prefix}:out") == 5, docker("logs", name, check=False).stderr[-3000:]
    finally:
        docker("rm", "-f", name, check=False)
        client.delete(f"{prefix}:in", f"{prefix}:out", f"{prefix}:dead")


def test_sigterm_stops_the_container_cleanly(container: tuple[str, str]) -> None:
    name, _ = container
    # `docker stop --time N` sends SIGTERM, then SIGKILL after N seconds (exit code 137):
    # exit code 0 means the server shut down by itself, within the bound.
    docker("stop", "--time", str(STOP_BOUND_S), name, timeout=STOP_BOUND_S * 3)
    code = int(docker("inspect", "-f", "{{.State.ExitCode}}", name).stdout.strip())
    assert code == 0, docker("logs", name, check=False).stderr[-3000:]


def test_a_cpu_quota_sets_the_workers_and_their_threads(image: str, default_model: StoredModel) -> None:
    """`docker run --cpus 1` (a cgroup CPU quota; the CPU set is still every core): 1 worker, 1 thread."""
    port, name = free_port(), f"tabserve-quota-{uuid.uuid4().hex[:8]}"
    run_detached(name, image, "serve", "--host", "127.0.0.1", "--port", str(port), options=("--cpus", "1"))
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        else:
            pytest.fail(f"container not ready:\n{docker('logs', name, check=False).stderr[-4000:]}")
        for row in reference_records(default_model, 4):
            httpx.post(f"{url}/predict", json={"record": row}, timeout=30).raise_for_status()
        runtime = httpx.get(f"{url}/model/", timeout=10).json()["runtime"]
    finally:
        docker("rm", "-f", name, check=False)
    assert (runtime["usable_cores"], runtime["workers"], runtime["threads_per_worker"]) == (1, 1, 1), runtime
    assert runtime["native_threads"]["openmp"] == 1
