"""How many cores this process may use, how many workers fit, and how many native threads each gets.

Why: HistGradientBoosting's predict runs OpenMP with one thread per core it can see, so N
workers on N cores ran N×N busy threads (measured on 2 cores, c=64: 1 worker 1,502 rps,
2 workers 202 rps). Every scoring process therefore limits its OpenMP and BLAS pools to
`cores // workers` (at least 1) with threadpoolctl, or to `serving.threads_per_worker`.

OpenMP's limit is per thread (`omp_set_num_threads` sets the calling thread's value; a new
thread starts from the process default, one per core): `limit_native_threads` sets the
process's target and applies it to the calling thread; every scoring entry point calls
`apply_in_this_thread`, which applies it once per thread (a thread-local check afterwards).
"""

from __future__ import annotations

import logging
import math
import os
import threading
from pathlib import Path

from threadpoolctl import threadpool_info, threadpool_limits

logger = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")
NO_QUOTA = "max"  # cgroup v2 cpu.max when unlimited; v1 writes -1

_target: int | None = None  # this process's native threads per scoring thread; None = not limited
_local = threading.local()
_seen_lock = threading.Lock()
_seen_in_scoring_threads: dict[str, int] = {}  # what scoring threads' pools use: largest per kind


def quota_from_cpu_max(text: str) -> float | None:
    """cgroup v2 `cpu.max` ("QUOTA PERIOD", QUOTA may be "max") -> cores, or None if unlimited."""
    parts = text.split()
    if len(parts) != 2 or parts[0] == NO_QUOTA:
        return None
    return int(parts[0]) / int(parts[1])


def quota_from_cfs(quota_text: str, period_text: str) -> float | None:
    """cgroup v1 `cpu.cfs_quota_us` and `cpu.cfs_period_us` -> cores, or None if unlimited (-1)."""
    quota, period = int(quota_text), int(period_text)
    return None if quota <= 0 or period <= 0 else quota / period


def usable_cores(affinity: int, quota: float | None) -> int:
    """Cores the process may keep busy: its CPU set, capped by the CPU quota (floored), at least 1.

    Floored: a quota of 1.5 cores with 2 busy threads is throttled every period.
    """
    cores = affinity if quota is None else min(affinity, math.floor(quota))
    return max(1, cores)


def auto_workers(cores: int) -> int:
    """`serving.workers: null`: one worker per usable core (measured: README "Workers")."""
    return max(1, cores)


def threads_per_worker(cores: int, workers: int, setting: int | None = None) -> int:
    """Native threads per worker: the setting if given, else the cores shared by the workers, at least 1."""
    if setting is not None:
        return setting
    return max(1, cores // max(1, workers))


def cgroup_folders(proc_cgroup: str, root: Path = CGROUP_ROOT) -> list[Path]:
    """Where this process's CPU quota files may be (from /proc/self/cgroup): its own cgroup, then the root.

    Inside a container the process's cgroup is usually mounted at the root.
    """
    candidates: list[Path] = []
    for line in proc_cgroup.splitlines():
        _hierarchy, controllers, path = line.split(":", 2)
        relative = path.lstrip("/")
        if controllers == "":  # v2 unified hierarchy
            candidates += [root / relative, root / "unified" / relative]
        elif "cpu" in controllers.split(","):
            candidates.append(root / controllers / relative)
    return list(dict.fromkeys([*candidates, root, root / "cpu", root / "cpu,cpuacct"]))


def cgroup_cpu_quota(root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> float | None:
    """The tightest CPU quota found for this process (v2 `cpu.max` or v1 CFS), in cores."""
    own = proc_cgroup.read_text() if proc_cgroup.is_file() else ""
    quotas: list[float] = []
    for folder in cgroup_folders(own, root):
        found: float | None = None
        try:
            if (folder / "cpu.max").is_file():
                found = quota_from_cpu_max((folder / "cpu.max").read_text())
            elif (folder / "cpu.cfs_quota_us").is_file():
                found = quota_from_cfs(
                    (folder / "cpu.cfs_quota_us").read_text(), (folder / "cpu.cfs_period_us").read_text()
                )
        except (OSError, ValueError):
            continue  # unreadable or odd: no quota from this file
        if found is not None:
            quotas.append(found)
    return min(quotas, default=None)


def available_cores() -> int:
    """Cores this process may use: `os.sched_getaffinity` capped by the cgroup CPU quota."""
    return usable_cores(len(os.sched_getaffinity(0)), cgroup_cpu_quota())


def limit_native_threads(threads: int) -> None:
    """Set this process's native-thread limit and apply it to the calling thread (BLAS: process-wide)."""
    global _target
    changed, _target = _target != threads, threads
    threadpool_limits(limits=threads)
    _local.applied = threads
    if changed:
        logger.info("native thread pools (OpenMP, BLAS) limited to %d thread(s) per scoring thread", threads)


def limit_process_threads(setting: int | None) -> int:
    """A single-worker scoring process (`score`, `stream`): all its usable cores, or the setting."""
    threads = threads_per_worker(available_cores(), 1, setting)
    limit_native_threads(threads)
    return threads


def apply_in_this_thread() -> None:
    """Called before scoring: apply the process's limit to the calling thread, once per thread.

    What the thread's pools then use is recorded (`scoring_thread_counts`): a running worker
    can show the limit its scoring threads actually run with.
    """
    if _target is not None and getattr(_local, "applied", None) != _target:
        threadpool_limits(limits=_target)
        _local.applied = _target
        counts = native_thread_counts()
        with _seen_lock:
            for kind, threads in counts.items():
                _seen_in_scoring_threads[kind] = max(_seen_in_scoring_threads.get(kind, 0), threads)


def scoring_thread_counts() -> dict[str, int]:
    """Native pool sizes of the threads that have scored since the limit was set (largest per kind)."""
    with _seen_lock:
        return dict(_seen_in_scoring_threads)


def native_thread_counts() -> dict[str, int]:
    """What the calling thread's native pools would use now: {"openmp": n, "blas": n} (largest per kind)."""
    counts: dict[str, int] = {}
    for pool in threadpool_info():
        kind = str(pool["user_api"])
        counts[kind] = max(counts.get(kind, 0), int(pool["num_threads"]))
    return counts
