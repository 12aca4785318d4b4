"""Soak benchmark: does the worker's memory stay bounded under hours of mixed traffic?

Starts the real service (one worker) on a temporary model store, then:
1. burst: 12 concurrent `/predict_batch` calls of `serving.max_batch_records` records each (the
   issue's "12 concurrent large bodies"), worker RSS before, at the peak and 10 s after;
2. soak: `--connections` clients sending `/predict` (and one large batch in 50) for
   `--minutes`, printing p99 and RSS per minute; RSS growth is judged after the first minute
   (warm-up: model, batcher and caches fill), target at most 10%.
Usage: python bench/soak.py [--minutes 3] [--connections 8]. Not a speed claim: the machine is
shared and a Python load generator shares its cores with the server.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.servers import free_port, stop, wait_ready  # noqa: E402

BIN = Path(sys.executable).parent
BURST_REQUESTS = 12
BATCH_RECORDS = 10_000  # serving.max_batch_records' default
LARGE_EVERY = 50  # one large batch in this many soak requests
TARGET_GROWTH = 0.10


def worker_rss_mb(server: subprocess.Popen[bytes]) -> float:
    """RSS of the largest process under the server: the worker that holds the model."""
    children = psutil.Process(server.pid).children(recursive=True)
    return max((child.memory_info().rss for child in children), default=0) / 2**20


def records(url: str, count: int) -> list[dict[str, Any]]:
    example = httpx.get(f"{url}/docs.json").json()["components"]["schemas"]["Record"]["example"]
    return [dict(example) for _ in range(count)]


def burst(url: str, server: subprocess.Popen[bytes], batch: list[dict[str, Any]]) -> None:
    before = worker_rss_mb(server)
    peak = before
    done = threading.Event()

    def watch() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, worker_rss_mb(server))
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    body = {"records": batch}
    with ThreadPoolExecutor(BURST_REQUESTS) as pool:
        statuses = list(
            pool.map(
                lambda _: httpx.post(f"{url}/predict_batch", json=body, timeout=300).status_code,
                range(BURST_REQUESTS),
            )
        )
    done.set()
    watcher.join()
    time.sleep(10)
    after = worker_rss_mb(server)
    size_mib = len(httpx.Request("POST", url, json=body).content) / 2**20
    print(
        f"burst: {BURST_REQUESTS} x {len(batch)} records ({size_mib:.1f} MiB each), statuses {set(statuses)}"
    )
    print(f"burst: worker RSS before {before:.0f} MB, peak {peak:.0f} MB, 10 s after {after:.0f} MB")
    print(f"burst: retained {after - before:+.0f} MB")


def soak(
    url: str, server: subprocess.Popen[bytes], minutes: float, connections: int, batch: list[dict[str, Any]]
) -> None:
    record = {"record": batch[0]}
    large = {"records": batch}
    latencies: list[tuple[float, float, int]] = []  # (time, seconds, status)
    start = time.monotonic()
    stop_at = start + minutes * 60

    def client(index: int) -> None:
        with httpx.Client(timeout=120) as session:
            sent = index
            while time.monotonic() < stop_at:
                sent += 1
                path, body = ("/predict_batch", large) if sent % LARGE_EVERY == 0 else ("/predict", record)
                began = time.monotonic()
                status = session.post(f"{url}{path}", json=body).status_code
                latencies.append((began - start, time.monotonic() - began, status))

    rss = [(0.0, worker_rss_mb(server))]
    threads = [threading.Thread(target=client, args=(i,)) for i in range(connections)]
    for thread in threads:
        thread.start()
    while time.monotonic() < stop_at:
        time.sleep(min(60.0, max(stop_at - time.monotonic(), 0.1)))
        rss.append((time.monotonic() - start, worker_rss_mb(server)))
    for thread in threads:
        thread.join()
    print(f"soak: {connections} connections, {minutes:g} min, /predict + a {len(batch)}-record batch")
    print("minute  requests  errors  p99 ms   RSS MB")
    for minute in range(int(minutes + 0.999)):
        window = [
            (seconds, status) for at, seconds, status in latencies if minute * 60 <= at < (minute + 1) * 60
        ]
        if not window:
            continue
        times = sorted(seconds for seconds, _ in window)
        p99 = times[min(len(times) - 1, int(len(times) * 0.99))] * 1000
        errors = sum(status != 200 for _, status in window)
        mem = next((mb for at, mb in rss if at >= (minute + 1) * 60 - 1), rss[-1][1])
        print(f"{minute + 1:>6}  {len(window):>8}  {errors:>6}  {p99:>6.1f}  {mem:>7.0f}")
    warm = next((mb for at, mb in rss if at >= 59), rss[-1][1])
    growth = rss[-1][1] / warm - 1
    print(f"soak: RSS start {rss[0][1]:.0f} MB, after warm-up {warm:.0f} MB, end {rss[-1][1]:.0f} MB")
    print(f"soak: growth after warm-up {growth:+.1%} (target <= {TARGET_GROWTH:.0%})")
    median_ms = statistics.median(seconds for _, seconds, _ in latencies) * 1000
    print(f"soak: median latency {median_ms:.1f} ms over {len(latencies)} requests")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=float(os.environ.get("SOAK_MINUTES", 3)))
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tabserve-soak-"))
    env = {**os.environ, "BENTOML_HOME": str(work / "home")}
    subprocess.run(
        [str(BIN / "python"), "-m", "tabserve", "train"], cwd=REPO, env=env, check=True, capture_output=True
    )
    config = work / "configuration.yaml"
    config.write_text(
        f"monitoring:\n  sqlite_path: {work}/predictions.db\n  spool_dir: {work}/spool\n"
        f"serving:\n  task_dir: {work}/tasks\n"
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = work / "server.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [
                str(BIN / "bentoml"),
                "serve",
                "service:TabularModel",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            cwd=REPO,
            env={**env, "TABSERVE_CONFIG": str(config)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_ready(url, server, log)
        batch = records(url, BATCH_RECORDS)
        burst(url, server, batch)
        soak(url, server, args.minutes, args.connections, batch)
    finally:
        stop(server)
    print(f"(server log: {log})")


if __name__ == "__main__":
    main()
