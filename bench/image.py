"""The serving image before and after the monitoring stack left it: size and cold start.

Builds both in the same run (unless given two tags): the baseline from a git revision, by that
revision's own scripts/build-image.sh in a temporary git worktree (default b8cee15: the last
revision whose serving image carried evidently, plotly, statsmodels, faker and nltk), and the
current tree by scripts/build-image.sh (serving image + monitoring image). Same base image, same
model store. Prints `docker image inspect` sizes, and the time from `docker run ... serve` to the
first 200 from /readyz: one unmeasured start of each first (page cache), then alternating
rounds; medians and ratios. The machine is shared: trust the ratio of medians, not one round.
Usage: python bench/image.py [--rounds 15] [--baseline-ref b8cee15] [--tags OLD NEW]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.containers import docker, serve, wait_ready  # noqa: E402
from tests.servers import BENTOML, free_port  # noqa: E402

BASELINE_REF = "b8cee15"  # serving image with the monitoring stack: 1.92 GB
BASELINE_TAG = "tabserve:bench-baseline"
CURRENT_TAG = "tabserve:bench-current"
MONITORING_TAG = "tabserve-monitoring:bench-current"
BUILD_TIMEOUT_S = 1800
CGROUP = Path("/sys/fs/cgroup")


def build(tree: Path, tag: str) -> None:
    """That tree's scripts/build-image.sh, with this environment's Python and bentoml."""
    env = {**os.environ, "TAG": tag, "PY": sys.executable, "BENTOML": BENTOML}
    print(f"building {tag} from {tree} ...", flush=True)
    subprocess.run(
        [str(tree / "scripts" / "build-image.sh")],
        cwd=tree,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=BUILD_TIMEOUT_S,
    )


def build_baseline(ref: str, tag: str) -> None:
    with tempfile.TemporaryDirectory(prefix="tabserve-baseline-") as folder:
        tree = Path(folder) / "tree"
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), ref], cwd=REPO, check=True)
        try:
            build(tree, tag)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO, check=False)


def size_mb(tag: str) -> float:
    return int(docker("image", "inspect", "-f", "{{.Size}}", tag).stdout.strip()) / 1e6


def cpu_s(name: str) -> float:
    """CPU time the container has used: its cgroup's counter (cgroup v1 or v2, cgroupfs driver)."""
    container = docker("inspect", "-f", "{{.Id}}", name).stdout.strip()
    v1 = CGROUP / "cpuacct" / "docker" / container / "cpuacct.usage"
    if v1.exists():
        return int(v1.read_text()) / 1e9
    for folder in (CGROUP / "docker" / container, CGROUP / "system.slice" / f"docker-{container}.scope"):
        if (folder / "cpu.stat").exists():
            usage = (folder / "cpu.stat").read_text().split("\n")[0].split()
            return int(usage[1]) / 1e6  # usage_usec
    raise RuntimeError(f"no CPU counter for container {name} under {CGROUP}")


def cold_start(tag: str) -> tuple[float, float]:
    """Seconds from `docker run` to the first 200 from /readyz, and the CPU seconds spent by then."""
    name = f"tabserve-bench-{uuid.uuid4().hex[:8]}"
    start = time.monotonic()
    try:
        wait_ready(name, serve(name, tag, free_port()))
        return time.monotonic() - start, cpu_s(name)
    finally:
        docker("rm", "-f", name, check=False)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--baseline-ref", default=BASELINE_REF)
    parser.add_argument("--tags", nargs=2, metavar=("OLD", "NEW"), help="measure these; build nothing")
    args = parser.parse_args()
    monitoring: str | None = None
    if args.tags:
        old, new = args.tags
    else:
        old, new, monitoring = BASELINE_TAG, CURRENT_TAG, MONITORING_TAG
        build_baseline(args.baseline_ref, old)
        build(REPO, new)

    for tag in (old, new):
        cold_start(tag)  # unmeasured: the first start reads the image from disk
    wall: dict[str, list[float]] = {old: [], new: []}
    cpu: dict[str, list[float]] = {old: [], new: []}
    print(f"{'round':<6} {'old s':>7} {'new s':>7} {'new/old':>8} {'old cpu s':>10} {'new cpu s':>10}")
    for index in range(args.rounds):
        for tag in (old, new) if index % 2 == 0 else (new, old):
            seconds, cpu_seconds = cold_start(tag)
            wall[tag].append(seconds)
            cpu[tag].append(cpu_seconds)
        ratio = wall[new][-1] / wall[old][-1]
        print(
            f"{index + 1:<6} {wall[old][-1]:>7.2f} {wall[new][-1]:>7.2f} {ratio:>7.2f}x"
            f" {cpu[old][-1]:>10.2f} {cpu[new][-1]:>10.2f}"
        )

    old_mb, new_mb = size_mb(old), size_mb(new)
    old_s, new_s = statistics.median(wall[old]), statistics.median(wall[new])
    old_cpu, new_cpu = statistics.median(cpu[old]), statistics.median(cpu[new])
    load = os.getloadavg()[0]
    print(f"\nmedians of {args.rounds} alternating rounds; load average {load:.1f} on {os.cpu_count()} cores")
    print("| image | tag | size (MB) | cold start to /readyz (s) | CPU by then (s) |")
    print("|---|---|---|---|---|")
    print(f"| serving, before | `{old}` | {old_mb:,.0f} | {old_s:.2f} | {old_cpu:.2f} |")
    print(f"| serving, now | `{new}` | {new_mb:,.0f} | {new_s:.2f} | {new_cpu:.2f} |")
    print(f"| now / before | | {new_mb / old_mb:.2f}x | {new_s / old_s:.2f}x | {new_cpu / old_cpu:.2f}x |")
    if monitoring:
        print(f"| monitoring, now (serving + extra) | `{monitoring}` | {size_mb(monitoring):,.0f} | | |")


if __name__ == "__main__":
    main()
