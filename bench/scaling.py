"""Serving as users run it: unpinned, workers 1 and 2, concurrency up to 128, baselines side by side.

Every server runs the way `make serve` runs it (no `taskset`; `bentoml serve`, prediction log on,
SQLite) and so does wrk: server and load share the machine's cores. Side by side in the same run:
- tabserve with the thread limit on (`serving.threads_per_worker: null`, cores // workers);
- tabserve with 2 workers and the limit off (threads_per_worker = every core: what OpenMP does
  unlimited), the collapse the limit prevents; with 1 worker, also 1 thread instead of every core;
- the framework's floor: bench/trivial_service.py, a `@bentoml.api` returning a constant;
- bench/plain_app.py (FastAPI + uvicorn --workers N, the same pipeline, no limit, no log).
Ratios: tabserve against the trivial service and the plain app at the same workers and c.

Usage: python bench/scaling.py [--duration 5] [--concurrency 1,32,128] [--workers 1,2]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.serving import example_body, server, train  # noqa: E402
from tabserve.cpu_budget import available_cores  # noqa: E402

BIN = Path(sys.executable).parent
MODEL = "bench_hgb"  # the default model: HistGradientBoosting, whose predict runs OpenMP
WARM_UP_S = 2
UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def run_wrk(url: str, body: str, concurrency: int, duration: int) -> dict[str, float]:
    """wrk against POST url, unpinned; rps, p50/p99 in ms, non-2xx and socket errors."""
    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    script.write_text(
        f'wrk.method="POST"\nwrk.headers["Content-Type"]="application/json"\nwrk.body={json.dumps(body)}\n'
    )
    threads = min(2, concurrency)
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{concurrency}",
        f"-d{duration}s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    script.unlink()

    def latency(label: str) -> float:
        found = re.search(rf"{label}%\s+([\d.]+)(us|ms|s)\b", out)
        return float(found.group(1)) * UNIT_MS[found.group(2)] if found else float("nan")

    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = int(non_2xx.group(1)) if non_2xx else 0
    errors += sum(int(value) for value in sockets.groups()) if sockets else 0
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return {
        "rps": float(rps.group(1)) if rps else 0.0,
        "p50": latency("50"),
        "p99": latency("99"),
        "errors": errors,
    }


def tabserve_config(home: Path, workers: int, threads: int | None) -> Path:
    path = home / f"tabserve-{workers}-{threads}.yaml"
    path.write_text(
        f"serving:\n  workers: {workers}\n  threads_per_worker: {'null' if threads is None else threads}\n"
        f"monitoring:\n  sqlite_path: {home}/predictions-{workers}-{threads}.db\n  spool_dir: {home}/spool\n"
    )
    return path


def servers(
    home: Path, workers: int, cores: int, pipeline: Path
) -> dict[str, tuple[list[str], dict[str, str], str]]:
    """name -> (command, environment, readiness path) for one worker count."""
    bentoml = [str(BIN / "bentoml"), "serve", "--host", "127.0.0.1"]
    model = {"TABSERVE_MODEL": f"{MODEL}:latest"}
    found = {
        "tabserve": (
            [*bentoml[:2], "service:TabularModel", *bentoml[2:]],
            {**model, "TABSERVE_CONFIG": str(tabserve_config(home, workers, None))},
            "/readyz",
        ),
        "trivial": (
            [*bentoml[:2], "bench.trivial_service:Trivial", *bentoml[2:]],
            {"TRIVIAL_WORKERS": str(workers)},
            "/readyz",
        ),
        "plain": (
            [str(BIN / "uvicorn"), "bench.plain_app:app", "--host", "127.0.0.1", "--workers", str(workers)],
            {"PLAIN_MODEL_PATH": str(pipeline), "UVICORN_LOG_LEVEL": "warning"},
            "/openapi.json",
        ),
    }
    if workers > 1:
        found["tabserve, limit off"] = (
            found["tabserve"][0],
            {**model, "TABSERVE_CONFIG": str(tabserve_config(home, workers, cores))},
            "/readyz",
        )
    elif cores > 1:  # one worker gets every core by default: is one thread better anyway?
        found["tabserve, 1 thread"] = (
            found["tabserve"][0],
            {**model, "TABSERVE_CONFIG": str(tabserve_config(home, workers, 1))},
            "/readyz",
        )
    return found


def measure_all(
    home: Path, body: str, pipeline: Path, worker_counts: list[int], levels: list[int], duration: int
) -> dict[tuple[str, int, int], dict[str, float]]:
    cores = available_cores()
    results: dict[tuple[str, int, int], dict[str, float]] = {}
    for workers in worker_counts:
        for name, (command, env, ready) in servers(home, workers, cores, pipeline).items():
            log = home / f"{name.replace(', ', '-').replace(' ', '-')}-{workers}.log"
            with server(command, env, log, ready, pin=False) as url:
                run_wrk(f"{url}/predict", body, 8, WARM_UP_S)  # lets the batcher tune itself
                for concurrency in levels:
                    results[(name, workers, concurrency)] = run_wrk(
                        f"{url}/predict", body, concurrency, duration
                    )
                    print(
                        f"  {name:<20} w={workers} c={concurrency:<4} {results[(name, workers, concurrency)]}"
                    )
    return results


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "-"


def print_table(results: dict[tuple[str, int, int], dict[str, float]]) -> None:
    print(
        f"\n{'server':<20} {'w':>2} {'c':>4} | {'rps':>6} {'p50 ms':>7} {'p99 ms':>8} {'errs':>5} | "
        f"{'rps/trivial':>11} {'p99/trivial':>11} | {'rps/plain':>9} {'p99/plain':>9}"
    )
    for (name, workers, concurrency), got in results.items():
        trivial = results.get(("trivial", workers, concurrency), {})
        plain = results.get(("plain", workers, concurrency), {})
        columns = ""
        if name.startswith("tabserve"):
            columns = (
                f"{ratio(got['rps'], trivial.get('rps', 0)):>11} "
                f"{ratio(got['p99'], trivial.get('p99', 0)):>11} | "
                f"{ratio(got['rps'], plain.get('rps', 0)):>9} {ratio(got['p99'], plain.get('p99', 0)):>9}"
            )
        print(
            f"{name:<20} {workers:>2} {concurrency:>4} | {got['rps']:>6.0f} {got['p50']:>7.2f} "
            f"{got['p99']:>8.2f} {got['errors']:>5.0f} | {columns}"
        )


def print_limit_and_workers(results: dict[tuple[str, int, int], dict[str, float]], levels: list[int]) -> None:
    """Same c: the thread limit on vs off (2 workers); 2 workers vs 1 (every core, then 1 thread)."""
    pairs = {
        "2w: limit on / off": (("tabserve", 2), ("tabserve, limit off", 2)),
        "2w / 1w (all cores)": (("tabserve", 2), ("tabserve", 1)),
        "2w / 1w (1 thread)": (("tabserve", 2), ("tabserve, 1 thread", 1)),
    }
    print(f"\n{'c':>4} | " + " | ".join(f"{label:>19} rps {'p99':>6}" for label in pairs))
    for concurrency in levels:
        cells = []
        for (a_name, a_workers), (b_name, b_workers) in pairs.values():
            a, b = (
                results.get((a_name, a_workers, concurrency)),
                results.get((b_name, b_workers, concurrency)),
            )
            cells.append(
                f"{ratio(a['rps'], b['rps']):>23} {ratio(a['p99'], b['p99']):>6}" if a and b else f"{'-':>30}"
            )
        print(f"{concurrency:>4} | " + " | ".join(cells))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--duration", type=int, default=5, help="seconds per point (the machine may be shared)"
    )
    parser.add_argument("--concurrency", default="1,32,128")
    parser.add_argument("--workers", default="1,2")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: make bench-tools")
    levels = [int(value) for value in args.concurrency.split(",")]
    worker_counts = [int(value) for value in args.workers.split(",")]
    home = Path(tempfile.mkdtemp(prefix="bench-scaling-"))
    os.environ["BENTOML_HOME"] = str(home)
    try:
        pipeline = train(MODEL, None)
        body = example_body(MODEL)
        print(f"usable cores: {available_cores()}; {args.duration} s per point; server and wrk unpinned")
        results = measure_all(home, body, pipeline, worker_counts, levels, args.duration)
        print_table(results)
        print_limit_and_workers(results, levels)
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
