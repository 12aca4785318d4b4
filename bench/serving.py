"""Serving benchmark: BentoML service vs a plain FastAPI app, same pipeline, side by side.

Server on core 0 (one worker), load from core 1 with wrk. Prints rps, p50, p99 and ratios.
Usage: python bench/serving.py [--duration 10] [--models default,forest] [--journal-overhead]
Only the journal's cost: --models none --skip-logging-overhead --journal-overhead --duration 5
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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.servers import free_port, stop, wait_ready  # noqa: E402

CONCURRENCY = (1, 8, 32)
FOREST_CONFIG = """
training:
  classifier:
    estimator: sklearn.ensemble.RandomForestClassifier
    params: {n_estimators: 100, random_state: 0}
"""
BIN = Path(sys.executable).parent
READY_TIMEOUT_S = 600  # a shared machine's load can slow a start (scipy's import) past the tests' limit


def run_wrk(url: str, body: str, concurrency: int, duration: int) -> dict[str, float]:
    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    script.write_text(
        f'wrk.method="POST"\nwrk.headers["Content-Type"]="application/json"\nwrk.body={json.dumps(body)}\n'
    )
    out = subprocess.run(
        [
            "taskset",
            "-c",
            "1",
            "wrk",
            "-t1",
            f"-c{concurrency}",
            f"-d{duration}s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    script.unlink()

    def latency(label: str) -> float:
        value, unit = re.search(rf"{label}%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50": latency("50"),
        "p99": latency("99"),
        "errors": float(errors.group(1)) if errors else 0.0,
    }


@contextmanager
def server(
    command: list[str], env: dict[str, str], log: Path, ready_path: str | None = None, pin: bool = True
) -> Iterator[str]:
    """A server on a free port; `pin`: on core 0 (the load generator gets core 1)."""
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*(["taskset", "-c", "0"] if pin else []), *command, "--port", str(port)],
            cwd=REPO,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    ready = ready_path or ("/openapi.json" if "uvicorn" in command[0] else "/readyz")
    try:
        wait_ready(url, process, log, path=ready, timeout_s=READY_TIMEOUT_S)
        yield url
    finally:
        stop(process)


def measure(url: str, body: str, duration: int) -> dict[int, dict[str, float]]:
    run_wrk(f"{url}/predict", body, 8, 2)  # warm-up (lets the batcher train its optimizer)
    return {c: run_wrk(f"{url}/predict", body, c, duration) for c in CONCURRENCY}


def train(name: str, config: Path | None) -> Path:
    args = [str(BIN / "python"), "-m", "tabserve", "train", "--name", name]
    if config:
        args += ["--config", str(config)]
    subprocess.run(args, cwd=REPO, check=True, capture_output=True)
    from tabserve.model_store import PIPELINE_FILE, get_model

    return get_model(f"{name}:latest").path / PIPELINE_FILE


def example_body(name: str) -> str:
    from tabserve.model_store import get_model

    stored = get_model(f"{name}:latest")
    row = stored.load_reference()[stored.schema.names].iloc[0]
    return json.dumps({"record": {key: float(value) for key, value in row.items()}})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--models", default="default,forest", help="'none': only the logging overhead")
    parser.add_argument("--skip-logging-overhead", action="store_true")
    parser.add_argument("--journal-overhead", action="store_true", help="also: the journal off vs on")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds of the overhead runs")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: apt-get install wrk")
    home = Path(tempfile.mkdtemp(prefix="bench-home-"))
    os.environ["BENTOML_HOME"] = str(home)
    forest_config = home / "forest.yaml"
    forest_config.write_text(FOREST_CONFIG)
    models = {"default": ("bench_hgb", None), "forest": ("bench_forest", forest_config)}
    rows = []
    for label in [name for name in args.models.split(",") if name and name != "none"]:
        name, config = models[label]
        pipeline_path = train(name, config)
        body = example_body(name)
        bento_cmd = [str(BIN / "bentoml"), "serve", "service:TabularModel", "--host", "127.0.0.1"]
        plain_cmd = [
            str(BIN / "uvicorn"),
            "bench.plain_app:app",
            "--host",
            "127.0.0.1",
            "--workers",
            "1",
            "--log-level",
            "warning",
        ]
        with server(bento_cmd, {"TABSERVE_MODEL": f"{name}:latest"}, home / f"{name}-bento.log") as url:
            bento = measure(url, body, args.duration)
        with server(plain_cmd, {"PLAIN_MODEL_PATH": str(pipeline_path)}, home / f"{name}-plain.log") as url:
            plain = measure(url, body, args.duration)
        for c in CONCURRENCY:
            rows.append((label, c, bento[c], plain[c]))
    print(
        f"\n{'model':<8} {'c':>3} | {'bentoml rps':>11} {'p50 ms':>7} {'p99 ms':>7} {'errs':>5} | "
        f"{'plain rps':>9} {'p50 ms':>7} {'p99 ms':>7} | {'rps ratio':>9} {'p99 ratio':>9}"
    )
    for label, c, b, p in rows:
        print(
            f"{label:<8} {c:>3} | {b['rps']:>11.0f} {b['p50']:>7.2f} {b['p99']:>7.2f} {b['errors']:>5.0f} | "
            f"{p['rps']:>9.0f} {p['p50']:>7.2f} {p['p99']:>7.2f} | "
            f"{b['rps'] / p['rps']:>8.2f}x {b['p99'] / p['p99']:>8.2f}x"
        )
    if not args.skip_logging_overhead:
        print_logging_overhead(home, args.duration, args.rounds)
    if args.journal_overhead:
        print_journal_overhead(home, args.duration, args.rounds)
    shutil.rmtree(home, ignore_errors=True)


def print_logging_overhead(home: Path, duration: int, rounds: int = 3) -> None:
    """The default model with the prediction log on (SQLite) and off, c=32."""
    alternate(home, duration, rounds, "prediction-log overhead", {"off": "log_predictions: false", "on": ""})


def print_journal_overhead(home: Path, duration: int, rounds: int = 5) -> None:
    """The prediction log on, its kill -9 journal off and on (`monitoring.journal`), c=32."""
    alternate(
        home, duration, rounds, "journal overhead (log on)", {"off": "journal: false", "on": "journal: true"}
    )


def alternate(home: Path, duration: int, rounds: int, title: str, settings: dict[str, str]) -> None:
    """Two monitoring settings ("off", "on") measured in alternating rounds; the median ratio is the result.

    Run-to-run noise here is a few percent, as large as the effect: hence rounds, side by side.
    """
    name = "bench_hgb"
    from tabserve.model_store import model_exists

    if not model_exists(f"{name}:latest"):
        train(name, None)
    body = example_body(name)
    bento_cmd = [str(BIN / "bentoml"), "serve", "service:TabularModel", "--host", "127.0.0.1"]
    print(f"\n{title}, default model, c=32, {rounds} alternating rounds of {duration}s")
    print(f"{'round':<6} {'off rps':>8} {'on rps':>8} {'on/off':>7} {'off p99':>8} {'on p99':>8}")
    ratios = []
    for round_index in range(1, rounds + 1):
        measured = {}
        for label, extra in settings.items():
            config = home / f"monitoring-{label}.yaml"
            config.write_text(
                f"monitoring:\n  sqlite_path: {home}/predictions.db\n  spool_dir: {home}/spool\n"
                + (f"  {extra}\n" if extra else "")
            )
            env = {"TABSERVE_MODEL": f"{name}:latest", "TABSERVE_CONFIG": str(config)}
            with server(bento_cmd, env, home / f"monitoring-{label}.log") as url:
                run_wrk(f"{url}/predict", body, 8, 2)
                measured[label] = run_wrk(f"{url}/predict", body, 32, duration)
        off, on = measured["off"], measured["on"]
        ratios.append(on["rps"] / off["rps"])
        print(
            f"{round_index:<6} {off['rps']:>8.0f} {on['rps']:>8.0f} {ratios[-1]:>6.3f}x "
            f"{off['p99']:>8.2f} {on['p99']:>8.2f}"
        )
    print(f"{'median':<6} {'':>8} {'':>8} {sorted(ratios)[len(ratios) // 2]:>6.3f}x")


if __name__ == "__main__":
    main()
