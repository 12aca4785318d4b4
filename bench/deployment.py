"""Deployment benchmark: what routing and shadows cost the response, and what a variant costs in memory.

Server on core 0 (one worker), wrk on core 1. Scenarios, side by side with the single-variant
baseline (same model, same prediction log):
- ab 50/50 (two variants; no sticky key, so a random draw per request);
- shadow of the same model (the shadow does as much work as the answer);
- shadow of a model that sleeps 50 ms per call (stalled shadow: the queue fills, records drop);
- shadow of a model that raises on every call.
Also the worker's resident memory with one and with two variants loaded.
Usage: python bench/deployment.py [--duration 10]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.serving import BIN, example_body, run_wrk, server, train  # noqa: E402

CONCURRENCY = (8, 32)
TOKEN = "bench"
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def worker_rss_mb(server_pid: int) -> float:
    """Resident memory of the service worker (the process that loads the models)."""
    for pid in descendants(server_pid):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
        except OSError:
            continue
        if b"_bentoml_impl.worker" in cmdline:
            return pages * PAGE_KB / 1024
    return float("nan")


def scenario_config(home: Path, name: str, deployment: dict[str, Any] | None) -> Path:
    config: dict[str, Any] = {
        "monitoring": {"sqlite_path": f"{home}/{name}.db", "spool_dir": f"{home}/spool"}
    }
    if deployment:
        config["deployment"] = deployment
    path = home / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=10)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: apt-get install wrk")
    home = Path(tempfile.mkdtemp(prefix="bench-deploy-"))
    os.environ["BENTOML_HOME"] = str(home)
    from tabserve.model_store import get_model
    from tests.faults import failing_variant, slow_variant

    train("bench_hgb", None)
    base = get_model("bench_hgb:latest")
    slow, failing = slow_variant(base, delay_s=0.05), failing_variant(base)
    body = example_body("bench_hgb")

    def shadow_of(tag: str) -> dict[str, Any]:
        return {
            "variants": {"champion": base.tag, "shadow": tag},
            "policy": {"strategy": "shadow", "champion": "champion", "candidate": "shadow"},
        }

    scenarios: dict[str, dict[str, Any] | None] = {
        "single (baseline)": None,
        "ab 50/50": {
            "variants": {"a": base.tag, "b": base.tag},
            "policy": {"strategy": "ab", "weights": {"a": 1, "b": 1}},
        },
        "shadow, same model": shadow_of(base.tag),
        "shadow, 50 ms stall": shadow_of(slow.tag),
        "shadow, raising": shadow_of(failing.tag),
    }
    bento_cmd = [str(BIN / "bentoml"), "serve", "service:TabularModel", "--host", "127.0.0.1"]
    results: dict[str, dict[int, dict[str, float]]] = {}
    memory: dict[str, float] = {}
    dropped: dict[str, int] = {}
    for index, (label, deployment) in enumerate(scenarios.items()):
        env = {
            "TABSERVE_CONFIG": str(scenario_config(home, f"s{index}", deployment)),
            "TABSERVE_ADMIN_TOKEN": TOKEN,
        }
        if deployment is None:
            env["TABSERVE_MODEL"] = base.tag
        with server(bento_cmd, env, home / f"s{index}.log") as url:
            memory[label] = worker_rss_mb(_server_pid(url))
            run_wrk(f"{url}/predict", body, 8, 2)  # warm-up
            results[label] = {c: run_wrk(f"{url}/predict", body, c, args.duration) for c in CONCURRENCY}
            state = httpx.get(f"{url}/admin/state", headers={"Authorization": f"Bearer {TOKEN}"}).json()
            dropped[label] = int(state["shadow_dropped"])
    baseline = results["single (baseline)"]
    print(
        f"\n{'scenario':<20} {'c':>3} | {'rps':>6} {'p50 ms':>7} {'p99 ms':>7} {'errs':>5} | "
        f"{'rps ratio':>9} {'p50 ratio':>9} {'p99 ratio':>9} | {'shadow dropped':>14}"
    )
    for label, by_c in results.items():
        for c, row in by_c.items():
            base_row = baseline[c]
            print(
                f"{label:<20} {c:>3} | {row['rps']:>6.0f} {row['p50']:>7.2f} {row['p99']:>7.2f} "
                f"{row['errors']:>5.0f} | "
                f"{row['rps'] / base_row['rps']:>8.2f}x {row['p50'] / base_row['p50']:>8.2f}x "
                f"{row['p99'] / base_row['p99']:>8.2f}x | {dropped[label]:>14}"
            )
    print(f"\n{'scenario':<20} | worker RSS after start-up (MB)")
    for label, rss in memory.items():
        print(f"{label:<20} | {rss:>8.0f}")
    print(f"model on disk: {sum(f.stat().st_size for f in base.path.rglob('*') if f.is_file()) / 1e6:.2f} MB")
    shutil.rmtree(home, ignore_errors=True)


def _server_pid(url: str) -> int:
    """The `bentoml serve` process listening on the URL's port (our child)."""
    port = url.rsplit(":", 1)[1]
    for pid in descendants(os.getpid()):
        try:
            if port.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
        except OSError:
            continue
    raise RuntimeError(f"no server process for {url}")


if __name__ == "__main__":
    main()
