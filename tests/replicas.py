"""Replicas for tests: `bentoml serve` processes that can be killed outright and started again.

Each replica is what one machine or pod runs: its own port, its own BENTOML_HOME and its own
local folder (spool, journal), configured by its own file, and one PostgreSQL shared by all.
Unlike `tests.servers.bentoml_server`, a replica keeps its home and folder across a restart,
the way a pod keeps its volume: whatever a killed replica left on disk is there when it is back.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psutil

from tests.servers import BENTOML, REPO, free_port, private_home, stop, wait_ready

KILL_WAIT_S = 10


def _tree(pid: int) -> list[psutil.Process]:
    """The server and every process under it.

    BentoML's process manager starts each worker in a session of its own (setsid), so a signal
    to the server's process group does not reach them: the tree is found by parent ids instead.
    """
    with contextlib.suppress(psutil.NoSuchProcess):
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    return []


def _kill_all(processes: list[psutil.Process]) -> None:
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    psutil.wait_procs(processes, timeout=KILL_WAIT_S)


class Replica:
    """One `bentoml serve`: the server process and its workers."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, "BENTOML_HOME": private_home(folder, self.port), **env}
        self.url = f"http://127.0.0.1:{self.port}"
        self.address = f"127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        """Start (or restart, on the same port, home and folder) and wait until it is ready."""
        self.starts += 1
        log = self.folder / f"bentoml-{self.port}-{self.starts}.log"
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [BENTOML, "serve", "service:TabularModel", "--host", "127.0.0.1", "--port", str(self.port)],
                cwd=REPO,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        wait_ready(self.url, self.process, log)

    def kill(self) -> None:
        """SIGKILL to the server and every worker at once: no drain, no shutdown hook, as a crash."""
        assert self.process is not None
        _kill_all(_tree(self.process.pid))
        self.process.wait(KILL_WAIT_S)

    def stop(self) -> int:
        """A graceful stop (SIGTERM, the queue drained); SIGKILL to whatever is left if it hangs."""
        if self.process is None:
            return 0
        tree = _tree(self.process.pid)
        code = stop(self.process)
        _kill_all(tree)  # no worker outlives its server
        return code


@contextlib.contextmanager
def replicas(folder: Path, envs: list[dict[str, str]]) -> Iterator[list[Replica]]:
    """Started replicas, one per environment; every one stopped at the end, even on failure."""
    started = [Replica(folder / f"replica-{index}", env) for index, env in enumerate(envs)]
    try:
        # One after the other: side by side on a loaded 2-core machine, both passed the ready
        # timeout (90 s) where one alone takes ~30 s.
        for replica in started:
            replica.start()
        yield started
    finally:
        for replica in started:
            replica.stop()
