"""Where a worker's time goes under load: py-spy samples the service worker while wrk drives /predict.

One worker (prediction log on, SQLite), unpinned: shares of its samples, not absolute speed, are
the result, and a server pinned to a core other processes share may take minutes to start.
Prints the share of the worker's busy samples by owner (the innermost frame outside the standard
library: a package, or one of our modules) and by named cost centre (a frame anywhere in the
stack), and keeps the raw stacks (`--out`, collapsed format: open in speedscope or flamegraph.pl).
Threads blocked in a wait (thread pools, the log writer between flushes) are not work: py-spy
counts some of them as busy, so samples whose innermost frame is a wait are left out.
Needs py-spy (`make profile` installs it into .venv).
Usage: python bench/profile.py [--duration 20] [--concurrency 32] [--config extra.yaml] [--out FILE]
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.deployment import descendants  # noqa: E402
from bench.serving import BIN, READY_TIMEOUT_S, example_body, run_wrk, train  # noqa: E402
from tests.servers import free_port, stop, wait_ready  # noqa: E402

MODEL = "bench_hgb"
WORKER_MARK = b"_bentoml_impl.worker"
STDLIB = sysconfig.get_paths()["stdlib"]
BENTOML_PACKAGES = ("bentoml", "_bentoml_impl", "_bentoml_sdk")
IDLE_LEAF = re.compile(r"^(Condition\.wait|Event\.wait|Queue\.get|Thread\.join|\w*Selector\.select) ")
FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^:()]*)(?::\d+)?\)$")
# name -> pattern on "function (file)": a sample counts if any frame of its stack matches.
COST_CENTRES = {
    "response model schema (IOMixin.mime_type)": r"\bmime_type \(",
    "OpenTelemetry (its frames)": r"/opentelemetry/",
    "traffic metrics middleware (its frames)": r"bentoml/_internal/server/http/instruments\.py",
    "prediction log (writer thread and log())": r"/tabserve/predictions/",
    "model (Predictor.predict_records)": r"\bpredict_records \(",
    "request parsing (from_http_request)": r"\bfrom_http_request \(",
    "response (to_http_response)": r"\bto_http_response \(",
    "batcher": r"/tabserve/serving/batcher\.py",
}


def owner(file: str) -> str:
    """Pure: who a frame's file belongs to: a site-packages package, one of our modules, or stdlib."""
    if "site-packages/" in file:
        parts = file.split("site-packages/", 1)[1].removesuffix(".py").split("/")
        if parts[0] in BENTOML_PACKAGES:  # which part of BentoML: its server, io models, ...
            return ".".join(part for part in parts[:5] if part != "__init__")
        return parts[0]
    if "/tabserve/" in file or file.startswith("tabserve/"):
        return "tabserve." + file.rsplit("tabserve/", 1)[1].removesuffix(".py").replace("/", ".")
    if file.startswith(STDLIB):
        return "stdlib"
    return Path(file).stem


def summarise(raw: str) -> tuple[int, collections.Counter[str], collections.Counter[str]]:
    """Pure: (busy samples, per owner of the innermost non-stdlib frame, per cost centre); waits left out."""
    owners: collections.Counter[str] = collections.Counter()
    centres: collections.Counter[str] = collections.Counter()
    total = 0
    patterns = {name: re.compile(pattern) for name, pattern in COST_CENTRES.items()}
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count, frames = int(count_text), stack.split(";")
        if IDLE_LEAF.match(frames[-1]):
            continue
        total += count
        found = "stdlib"
        for frame in reversed(frames):
            match = FRAME.match(frame)
            who = owner(match.group("file")) if match else "unknown"
            if who != "stdlib":
                found = who
                break
        owners[found] += count
        for name, pattern in patterns.items():
            if any(pattern.search(frame) for frame in frames):
                centres[name] += count
    return total, owners, centres


def worker_pid(server_pid: int, timeout_s: float = 30) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for pid in descendants(server_pid):
            try:
                if WORKER_MARK in Path(f"/proc/{pid}/cmdline").read_bytes():
                    return pid
            except OSError:
                continue
        time.sleep(0.2)
    raise RuntimeError("no service worker found")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=20, help="seconds sampled")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--config", type=Path, help="a configuration file for the service")
    parser.add_argument("--out", type=Path, default=Path("profile.txt"), help="raw stacks (collapsed)")
    parser.add_argument("--rate", type=int, default=250, help="samples per second")
    args = parser.parse_args()
    py_spy = shutil.which("py-spy", path=str(BIN)) or shutil.which("py-spy")
    if py_spy is None or not shutil.which("wrk"):
        sys.exit("py-spy or wrk is missing: make profile installs both")
    home = Path(tempfile.mkdtemp(prefix="bench-profile-"))
    os.environ["BENTOML_HOME"] = str(home)
    config = args.config or home / "profile.yaml"
    if args.config is None:
        monitoring = f"monitoring:\n  sqlite_path: {home}/predictions.db\n  spool_dir: {home}/spool\n"
        config.write_text(f"serving:\n  workers: 1\n{monitoring}")
    try:
        train(MODEL, None)
        body = example_body(MODEL)
        port, log = free_port(), home / "server.log"
        env = {**os.environ, "TABSERVE_MODEL": f"{MODEL}:latest", "TABSERVE_CONFIG": str(config)}
        command = [str(BIN / "bentoml"), "serve", "service:TabularModel"]
        with log.open("wb") as out:
            process = subprocess.Popen(
                [*command, "--host", "127.0.0.1", "--port", str(port)],
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_ready(url, process, log, timeout_s=READY_TIMEOUT_S)
            run_wrk(f"{url}/predict", body, 8, 2)  # warm-up
            sample = ["--duration", str(args.duration), "--rate", str(args.rate), "--nonblocking"]
            output = ["--format", "raw", "--full-filenames", "--output", str(args.out)]
            sampler = subprocess.Popen(
                [py_spy, "record", "--pid", str(worker_pid(process.pid)), *sample, *output],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            load = run_wrk(f"{url}/predict", body, args.concurrency, args.duration + 1)
            sampler.wait(timeout=60)
        finally:
            stop(process)
        total, owners, centres = summarise(args.out.read_text())
        print(f"c={args.concurrency}, {args.duration} s: {load['rps']:.0f} rps, p99 {load['p99']:.1f} ms")
        print(f"load average {Path('/proc/loadavg').read_text().split()[:3]}; {total} busy samples")
        print(f"\n{'owner of the innermost non-stdlib frame':<48} {'share':>6}")
        for name, count in owners.most_common(15):
            print(f"{name:<48} {count / total:>6.1%}")
        print(f"\n{'cost centre (a frame anywhere in the stack)':<48} {'share':>6}")
        for name in COST_CENTRES:
            print(f"{name:<48} {centres[name] / total:>6.1%}")
        print(f"\nraw stacks: {args.out}")
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
