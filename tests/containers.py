"""Run the images: `docker` calls shared by tests/integration/test_image.py and bench/image.py.

There is no bridge network here (scripts/docker-engine.sh): containers use the host network and
bind 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import subprocess
import time

import httpx

READY_TIMEOUT_S = 120
POLL_S = 0.05
INSPECT_EVERY_S = 1.0
# The image requires API keys (bentofile.yaml): every container `serve` starts gets this one.
IMAGE_API_KEY = "image-test-key"
AUTH = {"Authorization": f"Bearer {IMAGE_API_KEY}"}


class ContainerError(RuntimeError):
    """A container exited, or did not become ready in time; the message ends with its log."""


def docker(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check, timeout=timeout)


def run_detached(name: str, image: str, *args: str, options: tuple[str, ...] = ()) -> None:
    """`docker run -d` on the host network."""
    docker("run", "-d", "--name", name, "--network", "host", *options, image, *args)


def logs(name: str) -> str:
    return docker("logs", name, check=False).stderr[-4000:]


def wait_ready(name: str, url: str, timeout_s: float = READY_TIMEOUT_S) -> float:
    """Seconds until `url`/readyz answers 200; ContainerError if the container exits or times out."""
    start = checked = time.monotonic()
    while time.monotonic() - start < timeout_s:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return time.monotonic() - start
        except httpx.HTTPError:
            pass
        # `docker inspect` costs tens of milliseconds: not on every poll, or it blurs the timing.
        if time.monotonic() - checked > INSPECT_EVERY_S:
            checked = time.monotonic()
            if docker("inspect", "-f", "{{.State.Running}}", name).stdout.strip() != "true":
                raise ContainerError(f"container {name} exited:\n{logs(name)}")
        time.sleep(POLL_S)
    raise ContainerError(f"container {name} not ready after {timeout_s:.0f} s:\n{logs(name)}")


def serve(name: str, image: str, port: int, options: tuple[str, ...] = (), keyed: bool = True) -> str:
    """Start `serve` on 127.0.0.1:`port` (not waiting for it), with `IMAGE_API_KEY` unless not
    `keyed`; its base URL."""
    digest = hashlib.sha256(IMAGE_API_KEY.encode()).hexdigest()
    keys = ("-e", f"TABSERVE_API_KEYS=image:{digest}") if keyed else ()
    run_detached(name, image, "serve", "--host", "127.0.0.1", "--port", str(port), options=(*keys, *options))
    return f"http://127.0.0.1:{port}"
