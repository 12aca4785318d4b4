"""Streaming benchmark: messages/s of one worker, micro-batched vs one message at a time.

Each run pushes N messages to a fresh Redis stream, starts `python -m tabserve stream` and
times until N results are on the output stream (worker start-up excluded: the clock starts at
its first result).
Usage: python bench/streaming.py [--messages 20000]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import redis

REPO = Path(__file__).resolve().parent.parent
REDIS_URL = "redis://127.0.0.1:6379/0"


def run(work: Path, records: list[str], batch_size: int, messages: int) -> float:
    client: Any = redis.Redis.from_url(REDIS_URL)
    prefix = f"bench:{uuid.uuid4().hex[:8]}"
    source, sink = f"{prefix}:in", f"{prefix}:out"
    pipe = client.pipeline(transaction=False)
    for i in range(messages):
        pipe.xadd(source, {"record": records[i % len(records)]})
    pipe.execute()
    config = work / f"stream-{batch_size}.yaml"
    config.write_text(
        f"streaming:\n  input_stream: {source}\n  output_stream: {sink}\n"
        f"  dead_letter_stream: {prefix}:dead\n"
        f"  batch_size: {batch_size}\n  max_wait_ms: 5\nmonitoring:\n  log_predictions: false\n"
    )
    worker = subprocess.Popen(
        [sys.executable, "-m", "tabserve", "--config", str(config), "stream"],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while client.xlen(sink) == 0:
            time.sleep(0.01)
        started, first = time.perf_counter(), client.xlen(sink)
        while client.xlen(sink) < messages:
            time.sleep(0.01)
        rate = (messages - first) / (time.perf_counter() - started)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
        client.delete(source, sink, f"{prefix}:dead", f"{source}:request-id-secret")
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=20_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-stream-"))
    os.environ["BENTOML_HOME"] = str(work / "bentoml")
    subprocess.run([sys.executable, "-m", "tabserve", "train"], cwd=REPO, check=True, capture_output=True)
    sys.path.insert(0, str(REPO))
    from tabserve.model_store import get_model

    stored = get_model("breast_cancer:latest")
    frame = stored.load_reference()[stored.schema.names]
    records = [json.dumps({str(k): float(v) for k, v in row.items()}) for row in frame.to_dict("records")]
    one = run(work, records, 1, min(args.messages, 3000))
    batched = run(work, records, 256, args.messages)
    print(f"{'worker':<28} {'messages/s':>11}")
    print(f"{'one message at a time':<28} {one:>11,.0f}")
    print(f"{'micro-batches of 256':<28} {batched:>11,.0f}")
    print(f"{'ratio':<28} {batched / one:>10.1f}x")


if __name__ == "__main__":
    main()
