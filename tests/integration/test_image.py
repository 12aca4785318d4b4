"""The images: built by scripts/build-image.sh with a real Docker engine, then run and queried.

The serving image (`bentoml containerize`) runs the server and the stream worker, without the
monitoring stack; the monitoring image, built on top of it, runs the drift job. No registry is
reachable here: the script builds a local Debian base image (debootstrap) and passes it as the
base-image setting.
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
from tests.containers import AUTH, ContainerError, docker, run_detached, serve, wait_ready
from tests.factories import reference_records
from tests.servers import BENTOML, REPO, free_port

STOP_BOUND_S = 15  # documented in the README: SIGTERM -> exit within this
BUILD_TIMEOUT_S = 1500
# The monitoring extra and the heaviest of what it brings (plotly 188 MB, faker 25 MB, nltk 14 MB).
# statsmodels stays in the serving image: the rollout guards' non-inferiority test is its own.
MONITORING_ONLY = ("evidently", "plotly", "faker", "nltk")
# Measured with the local Debian base: 865 MB (the image with evidently was 1.92 GB). README, "The image".
SERVING_IMAGE_MAX_BYTES = 1_000_000_000
FIND_MODULES = "import importlib.util, sys; print([m for m in sys.argv[1:] if importlib.util.find_spec(m)])"


@pytest.fixture(scope="module")
def images(default_model: StoredModel) -> Iterator[tuple[str, str]]:
    """(serving tag, monitoring tag), built by `make image`'s script."""
    engine = subprocess.run([str(REPO / "scripts" / "docker-engine.sh")], capture_output=True, text=True)
    if engine.returncode != 0:
        pytest.fail(f"the Docker engine cannot start:\n{engine.stdout}\n{engine.stderr}")
    version = f"test-{uuid.uuid4().hex[:8]}"
    tag, monitoring_tag = f"tabserve:{version}", f"tabserve-monitoring:{version}"
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
    yield tag, monitoring_tag
    docker("rmi", "-f", monitoring_tag, tag, check=False)


@pytest.fixture(scope="module")
def image(images: tuple[str, str]) -> str:
    return images[0]


@pytest.fixture(scope="module")
def monitoring_image(images: tuple[str, str]) -> str:
    return images[1]


@pytest.fixture(scope="module")
def container(image: str, pg_url: str) -> Iterator[tuple[str, str]]:
    name = f"tabserve-test-{uuid.uuid4().hex[:8]}"
    try:
        url = serve(name, image, free_port(), options=("-e", f"TABSERVE_DATABASE_URL={pg_url}"))
        wait_ready(name, url)
        yield name, url
    except ContainerError as error:
        pytest.fail(str(error))
    finally:
        docker("rm", "-f", name, check=False)


def test_the_container_predicts_like_the_local_model(
    container: tuple[str, str], default_model: StoredModel
) -> None:
    _, url = container
    rows = reference_records(default_model, 12)
    local = default_model.load_predictor().predict_records(rows)
    batch = httpx.post(f"{url}/predict_batch", json={"records": rows}, headers=AUTH).json()["predictions"]
    single = [httpx.post(f"{url}/predict", json={"record": row}, headers=AUTH).json() for row in rows]
    for expected, from_batch, from_single in zip(local, batch, single, strict=True):
        assert from_batch["prediction"] == from_single["prediction"] == expected["prediction"]
        assert from_batch["probabilities"] == pytest.approx(expected["probabilities"])
        assert from_single["model"] == default_model.tag


def test_the_image_refuses_to_serve_without_api_keys(image: str) -> None:
    """bentofile.yaml turns API keys on: a container given none stops with the setting to use."""
    name = f"tabserve-nokeys-{uuid.uuid4().hex[:8]}"
    try:
        url = serve(name, image, free_port(), keyed=False)
        with pytest.raises(ContainerError, match="TABSERVE_API_KEYS"):
            wait_ready(name, url, timeout_s=60)
    finally:
        docker("rm", "-f", name, check=False)


def test_the_server_does_not_run_as_root(container: tuple[str, str]) -> None:
    name, _ = container
    assert docker("exec", name, "id", "-u").stdout.strip() != "0"
    assert (
        docker("exec", name, "sh", "-c", "ps -o user= -p 1 2>/dev/null || stat -c %U /proc/1").stdout.strip()
        != "root"
    )


def test_the_serving_image_has_no_monitoring_stack(
    container: tuple[str, str], image: str, monitoring_image: str, default_model: StoredModel
) -> None:
    """The server answers from an image where evidently and its dependencies cannot be imported."""
    name, url = container
    row = reference_records(default_model, 1)[0]
    assert httpx.post(f"{url}/predict", json={"record": row}, headers=AUTH, timeout=30).status_code == 200
    assert httpx.post(f"{url}/predict", json={"record": row}, timeout=30).status_code == 401  # keys are on
    in_server = docker("exec", name, "python", "-c", FIND_MODULES, *MONITORING_ONLY).stdout.strip()
    assert in_server == "[]"
    attempt = docker("run", "--rm", image, "python", "-c", "import evidently", check=False)
    assert attempt.returncode != 0 and "No module named 'evidently'" in attempt.stderr
    in_monitoring = docker("run", "--rm", monitoring_image, "python", "-c", FIND_MODULES, *MONITORING_ONLY)
    assert in_monitoring.stdout.strip() == str(list(MONITORING_ONLY))


def test_the_serving_image_stays_within_its_size_budget(image: str) -> None:
    size = int(docker("image", "inspect", "-f", "{{.Size}}", image).stdout.strip())
    assert size <= SERVING_IMAGE_MAX_BYTES, f"{size / 1e6:.0f} MB"


def test_the_drift_job_runs_from_the_monitoring_image(
    monitoring_image: str, pg_url: str, container: tuple[str, str]
) -> None:
    job = docker(
        "run",
        "--rm",
        "--network",
        "host",
        "-e",
        f"TABSERVE_DATABASE_URL={pg_url}",
        "-e",
        "TABSERVE_MIN_SAMPLES=5",
        monitoring_image,
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
        # Mounted in /etc, which the container's user cannot write: relative paths would go there.
        "monitoring:\n  sqlite_path: /tmp/tabserve/predictions.db\n  spool_dir: /tmp/tabserve/spool\n"
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
    name = f"tabserve-quota-{uuid.uuid4().hex[:8]}"
    try:
        url = serve(name, image, free_port(), options=("--cpus", "1"))
        wait_ready(name, url)
        for row in reference_records(default_model, 4):
            httpx.post(f"{url}/predict", json={"record": row}, headers=AUTH, timeout=30).raise_for_status()
        runtime = httpx.get(f"{url}/model/", headers=AUTH, timeout=10).json()["runtime"]
    except ContainerError as error:
        pytest.fail(str(error))
    finally:
        docker("rm", "-f", name, check=False)
    assert (runtime["usable_cores"], runtime["workers"], runtime["threads_per_worker"]) == (1, 1, 1), runtime
    assert runtime["native_threads"]["openmp"] == 1
