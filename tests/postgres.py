"""Real PostgreSQL for tests: a temporary database on the local server, or a throwaway cluster."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg

ADMIN_DSN = "host=127.0.0.1 port=5432 dbname=test user=postgres"
URL = "postgresql+psycopg://postgres@127.0.0.1:{port}/{database}"
PG_BIN = next(Path("/usr/lib/postgresql").glob("*/bin"), Path("/usr/lib/postgresql/15/bin"))
OWNER = "postgres"  # the server refuses to run as root


@contextlib.contextmanager
def temporary_database() -> Iterator[str]:
    """A database of its own on the local server (port 5432), dropped afterwards."""
    name = f"tabserve_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield URL.format(port=5432, database=name)
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _as_owner(*args: str) -> None:
    subprocess.run(["runuser", "-u", OWNER, "--", *args], check=True, capture_output=True)


class ThrowawayCluster:
    """A PostgreSQL cluster on its own port that a test may stop and start again."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.dir = Path(tempfile.mkdtemp(prefix="tabserve-pg-"))
        shutil.chown(self.dir, OWNER, OWNER)
        self.data = self.dir / "data"
        _as_owner(str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", OWNER)
        self.url = URL.format(port=port, database="postgres")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        _as_owner(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.dir / "log"),
            "-w",
            "start",
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(psycopg.OperationalError):
                psycopg.connect(f"host=127.0.0.1 port={self.port} dbname=postgres user={OWNER}").close()
                return
            time.sleep(0.2)
        raise RuntimeError(f"throwaway PostgreSQL on {self.port} did not start")

    def stop(self) -> None:
        _as_owner(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def count_rows(url: str, where: str = "true") -> int:
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as connection:
        row = connection.execute(f"SELECT count(*) FROM predictions WHERE {where}").fetchone()
        return int(row[0]) if row else 0
