"""Start real servers for integration tests: `bentoml serve` on a free loopback port."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
BENTOML = str(Path(sys.executable).with_name("bentoml"))
READY_TIMEOUT_S = 240  # a start on a loaded, shared machine (scipy's import alone) took over 90 s


EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
LOWEST_PORT = 10_000


def free_port() -> int:
    """A free port below the kernel's ephemeral range.

    A port the kernel hands out (bind to 0) can be handed out again, to an outgoing connection
    of a client or a database pool, before the server binds it ("Address already in use"). Ports
    below the ephemeral range are never given to outgoing connections.
    """
    first_ephemeral = int(EPHEMERAL_RANGE.read_text().split()[0]) if EPHEMERAL_RANGE.exists() else 32_768
    while True:
        port = random.randrange(LOWEST_PORT, first_ephemeral)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


def wait_ready(
    url: str,
    process: subprocess.Popen[bytes],
    log: Path,
    path: str = "/readyz",
    timeout_s: float = READY_TIMEOUT_S,
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}{path}", timeout=2).status_code == 200:
                return
        time.sleep(0.3)
    raise RuntimeError(f"server not ready after {timeout_s}s:\n{log.read_text()[-4000:]}")


def wait_for(condition: Any, timeout_s: float, what: str) -> Any:
    """Poll `condition` until it returns something truthy (returned), or fail saying what was awaited."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout_s}s: {what}")


def run_tabserve(
    *args: str, env: dict[str, str] | None = None, timeout: float | None = None, cwd: Path = REPO
) -> subprocess.CompletedProcess[str]:
    """The `tabserve` command in a process of its own, as a user runs it; its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "tabserve", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


def stop(process: subprocess.Popen[bytes], timeout: float = 30) -> int:
    """SIGTERM (a graceful shutdown), then SIGKILL if it does not stop in time."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def private_home(log_dir: Path, port: int) -> str:
    """A BENTOML_HOME of the server's own that shares the models of the test run's store.

    A starting server deletes $BENTOML_HOME/task_result.db and resets the Prometheus
    directory there: two servers sharing one home clobber each other.
    """
    home = Path(tempfile.mkdtemp(prefix=f"home-{port}-", dir=log_dir))  # a port can come back in a run
    (home / "models").symlink_to(Path(os.environ["BENTOML_HOME"]) / "models", target_is_directory=True)
    return str(home)


@contextlib.contextmanager
def bentoml_server(log_dir: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """`bentoml serve service:TabularModel` in a subprocess; yields its base URL."""
    port = free_port()
    home = private_home(log_dir, port)
    log = log_dir / f"bentoml-{Path(home).name.removeprefix('home-')}.log"
    full_env = {**os.environ, "BENTOML_HOME": home, **(env or {})}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [BENTOML, "serve", "service:TabularModel", "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO,
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process, log)
        yield url
    finally:
        stop(process)
