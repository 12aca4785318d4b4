"""The stream worker's test helpers: stream names, its configuration, a worker process, messages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.servers import REPO

REDIS_URL = "redis://127.0.0.1:6379/0"


def config(tmp_path: Path, streams: dict[str, str], batch_size: int = 64, claim_idle_ms: int = 30000) -> Path:
    path = tmp_path / f"stream-{batch_size}-{claim_idle_ms}.yaml"
    path.write_text(
        f"streaming:\n  redis_url: {REDIS_URL}\n  input_stream: {streams['input']}\n"
        f"  output_stream: {streams['output']}\n  dead_letter_stream: {streams['dead']}\n"
        f"  group: g\n  batch_size: {batch_size}\n  block_ms: 200\n  claim_idle_ms: {claim_idle_ms}\n"
        f"monitoring:\n  spool_dir: {tmp_path}/spool\n"
    )
    return path


def start_worker(cfg: Path, env: dict[str, str], name: str, log: Path, *args: str) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "tabserve", "--config", str(cfg), "stream", "--consumer", name, *args],
            cwd=REPO,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def push(client: Any, stream: str, records: list[dict[str, Any]]) -> list[str]:
    pipe = client.pipeline(transaction=False)
    for record in records:
        pipe.xadd(stream, {"record": json.dumps(record)})
    return [item.decode() for item in pipe.execute()]


def outputs(client: Any, stream: str) -> list[dict[str, str]]:
    return [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in client.xrange(stream)]


def wait_until(check: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError("timed out")
