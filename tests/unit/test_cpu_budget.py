"""Cores, workers and native threads: the pure rules on given inputs, the limit in real threads."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tabserve.cpu_budget import (
    auto_workers,
    cgroup_cpu_quota,
    cgroup_folders,
    quota_from_cfs,
    quota_from_cpu_max,
    threads_per_worker,
    usable_cores,
)


@pytest.mark.parametrize(
    ("text", "cores"), [("max 100000\n", None), ("150000 100000\n", 1.5), ("200000 100000", 2.0)]
)
def test_cgroup_v2_cpu_max(text: str, cores: float | None) -> None:
    assert quota_from_cpu_max(text) == cores


def test_cgroup_v1_cfs_quota() -> None:
    assert quota_from_cfs("-1\n", "100000\n") is None
    assert quota_from_cfs("50000", "100000") == 0.5
    assert quota_from_cfs("400000", "100000") == 4.0


@pytest.mark.parametrize(
    ("affinity", "quota", "cores"),
    [(4, None, 4), (4, 1.5, 1), (2, 0.5, 1), (8, 3.0, 3), (2, 16.0, 2), (1, None, 1)],
)
def test_usable_cores_is_the_cpu_set_capped_by_the_floored_quota(
    affinity: int, quota: float | None, cores: int
) -> None:
    assert usable_cores(affinity, quota) == cores


@pytest.mark.parametrize(
    ("cores", "workers", "setting", "threads"),
    [(2, 1, None, 2), (2, 2, None, 1), (2, 4, None, 1), (16, 4, None, 4), (16, 3, None, 5), (2, 2, 3, 3)],
)
def test_threads_per_worker_share_the_cores_unless_set(
    cores: int, workers: int, setting: int | None, threads: int
) -> None:
    assert threads_per_worker(cores, workers, setting) == threads


def test_auto_workers_is_one_per_core() -> None:
    assert [auto_workers(cores) for cores in (1, 2, 8)] == [1, 2, 8]


def test_cgroup_folders_follow_proc_self_cgroup() -> None:
    root = Path("/cg")
    v1 = "4:cpu,cpuacct:/docker/abc\n3:memory:/docker/abc\n"
    assert cgroup_folders(v1, root)[0] == root / "cpu,cpuacct" / "docker/abc"
    assert cgroup_folders("0::/user.slice/x\n", root)[:2] == [
        root / "user.slice/x",
        root / "unified/user.slice/x",
    ]
    assert root in cgroup_folders("", root)  # inside a container: the root


def test_the_tightest_quota_is_found_in_a_cgroup_tree(tmp_path: Path) -> None:
    proc = tmp_path / "cgroup"
    proc.write_text("0::/pod/app\n")
    (tmp_path / "pod" / "app").mkdir(parents=True)
    (tmp_path / "pod" / "app" / "cpu.max").write_text("250000 100000\n")
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_quota(tmp_path, proc) == 2.5
    (tmp_path / "cpu.max").write_text("100000 100000\n")
    assert cgroup_cpu_quota(tmp_path, proc) == 1.0
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert cgroup_cpu_quota(v1, tmp_path / "missing") is None


# Run in a child process: the limit is process state, and OpenMP's is per thread.
PER_THREAD_LIMIT = textwrap.dedent(
    """
    import json, threading
    import sklearn.ensemble  # loads OpenMP
    from tabserve.cpu_budget import apply_in_this_thread, limit_native_threads, native_thread_counts

    seen = {}
    def plain(): seen["thread_without"] = native_thread_counts()["openmp"]
    def scoring(): apply_in_this_thread(); seen["thread_with"] = native_thread_counts()["openmp"]
    seen["before"] = native_thread_counts()["openmp"]
    limit_native_threads(1)
    seen["main"] = native_thread_counts()["openmp"]
    for target in (plain, scoring):
        thread = threading.Thread(target=target); thread.start(); thread.join()
    print(json.dumps(seen))
    """
)


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs 2 cores to see a limit")
def test_the_limit_reaches_every_scoring_thread_not_only_the_one_that_set_it() -> None:
    import json

    done = subprocess.run(
        [sys.executable, "-c", PER_THREAD_LIMIT],
        capture_output=True,
        text=True,
        check=True,
        env={name: value for name, value in os.environ.items() if name != "OMP_NUM_THREADS"},
    )
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    cores = len(os.sched_getaffinity(0))
    # OpenMP's limit is per thread: a new thread starts from the default, hence apply_in_this_thread.
    assert seen == {"before": cores, "main": 1, "thread_without": cores, "thread_with": 1}
