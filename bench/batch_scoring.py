"""Batch-scoring benchmark: `python -m tabserve score` vs a naive pandas script, side by side.

1. Throughput on 1,000,000 rows (CSV and Parquet): rows/s of each, and the ratio (target >= 0.8).
2. Peak memory of `python -m tabserve score` on 100,000 and 5,000,000 rows (target ratio <= 1.5).
Usage: python bench/batch_scoring.py [--rows 1000000] [--big-rows 5000000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def make_input(path: Path, rows: int) -> None:
    from tabserve.model_store import get_model

    stored = get_model("breast_cancer:latest")
    reference = stored.load_reference()[stored.schema.names]
    rng = np.random.default_rng(0)
    chunk = 500_000
    for start in range(0, rows, chunk):
        size = min(chunk, rows - start)
        frame = reference.sample(size, replace=True, random_state=int(rng.integers(1 << 31))).reset_index(
            drop=True
        )
        frame = frame * rng.normal(1.0, 0.01, frame.shape)
        if path.suffix == ".parquet":
            frame.to_parquet(path.with_name(f"{path.stem}-{start:09d}.parquet"))
        else:
            frame.to_csv(path, mode="a" if start else "w", header=not start, index=False)
    if path.suffix == ".parquet":  # one file, written in row groups, as real exports are
        import pyarrow.parquet as pq

        parts = sorted(path.parent.glob(f"{path.stem}-*.parquet"))
        with pq.ParquetWriter(path, pq.read_schema(parts[0])) as writer:
            for part in parts:
                writer.write_table(pq.read_table(part))
                part.unlink()


def timed(command: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one command, measured by GNU time's -f %M."""
    started = time.perf_counter()
    result = subprocess.run(
        ["/usr/bin/time", "-f", "%M", *command], cwd=REPO, capture_output=True, text=True, check=True
    )
    wall = time.perf_counter() - started
    return wall, int(result.stderr.strip().splitlines()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--small-rows", type=int, default=100_000)
    parser.add_argument("--big-rows", type=int, default=5_000_000)
    parser.add_argument("--memory-only", action="store_true", help="skip the throughput comparison")
    args = parser.parse_args()
    if not Path("/usr/bin/time").exists():
        sys.exit("GNU time is missing: apt-get install time")
    work = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    os.environ["BENTOML_HOME"] = str(work / "bentoml")
    subprocess.run([sys.executable, "-m", "tabserve", "train"], cwd=REPO, check=True, capture_output=True)
    from tabserve.model_store import PIPELINE_FILE, get_model

    pipeline = str(get_model("breast_cancer:latest").path / PIPELINE_FILE)
    ours = [sys.executable, "-m", "tabserve", "score"]
    print(
        f"{'input':<24} {'naive rows/s':>12} {'ours rows/s':>12} {'ratio':>7} {'naive MB':>9} {'ours MB':>8}"
    )
    for suffix in () if args.memory_only else (".csv", ".parquet"):
        source = work / f"rows{suffix}"
        make_input(source, args.rows)
        naive_s, naive_mb = timed(
            [sys.executable, "bench/naive_score.py", pipeline, str(source), str(work / f"n{suffix}")]
        )
        ours_s, ours_mb = timed([*ours, str(source), str(work / f"o{suffix}"), "--quiet"])
        print(
            f"{f'{args.rows:,} rows {suffix}':<24} "
            f"{args.rows / naive_s:>12,.0f} {args.rows / ours_s:>12,.0f} "
            f"{naive_s / ours_s:>6.2f}x {naive_mb:>9.0f} {ours_mb:>8.0f}"
        )
    peaks = {}
    for rows in (args.small_rows, args.big_rows):
        source = work / f"mem-{rows}.parquet"
        make_input(source, rows)
        _, peaks[rows] = timed([*ours, str(source), str(work / f"mem-out-{rows}.parquet"), "--quiet"])
        source.unlink()
    print("\npeak memory of `python -m tabserve score` (Parquet in and out)")
    for rows, peak in peaks.items():
        print(f"{rows:>12,} rows {peak:>8.0f} MB")
    print(f"{'ratio':>17} {peaks[args.big_rows] / peaks[args.small_rows]:>8.2f}x")


if __name__ == "__main__":
    main()
