"""Monitoring benchmark: the drift job over 1,000,000 logged rows, sampled vs unsampled, side by side.

Prints wall time and peak memory of `tabserve monitor` (a subprocess each, so peaks are its own).
Usage: python bench/monitoring.py [--rows 1000000] [--no-baseline]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
CHUNK = 20_000


def fill_log(database: Path, rows: int) -> str:
    from tabserve.model_store import get_model
    from tabserve.predictions.bulk_insert import insert_rows
    from tabserve.predictions.migration import upgrade as upgrade_schema
    from tabserve.predictions.store import make_engine

    stored = get_model("breast_cancer:latest")
    predictor = stored.load_predictor()
    reference = stored.load_reference()[stored.schema.names]
    engine = make_engine(f"sqlite:///{database}")
    upgrade_schema(engine)
    rng = np.random.default_rng(0)
    now = datetime.now(UTC)
    for start in range(0, rows, CHUNK):
        frame = reference.sample(
            min(CHUNK, rows - start), replace=True, random_state=int(rng.integers(1 << 31))
        )
        frame = frame * rng.normal(1.0, 0.01, frame.shape)  # live data: near the reference, not copies
        scored = predictor.predict_frame(frame)
        features = frame.to_dict("records")
        insert_rows(
            engine,
            [
                {
                    "request_id": uuid.uuid4().hex,
                    "ts": now,
                    "model": stored.tag,
                    "variant": "default",
                    "features": feature,
                    "prediction": prediction,
                    "probabilities": None,
                }
                for feature, prediction in zip(features, scored["prediction"].tolist(), strict=True)
            ],
        )
        print(f"\rlogged {start + len(frame):,}/{rows:,} rows", end="", flush=True)
    print()
    return stored.tag


def run_job(env: dict[str, str], rows: int) -> tuple[float, float, int]:
    started = time.perf_counter()
    code = subprocess.run(
        [sys.executable, "-m", "tabserve", "monitor", "--quiet", "--last", str(rows)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
    ).returncode
    wall = time.perf_counter() - started
    # ru_maxrss of children is the largest child so far: runs go smallest-first
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return wall, peak_mb, code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--no-baseline", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-monitor-"))
    os.environ["BENTOML_HOME"] = str(work / "bentoml")
    subprocess.run([sys.executable, "-m", "tabserve", "train"], cwd=REPO, check=True, capture_output=True)
    database = work / "predictions.db"
    started = time.perf_counter()
    fill_log(database, args.rows)
    print(
        f"filled the log in {time.perf_counter() - started:.0f}s ({database.stat().st_size / 2**20:.0f} MB)"
    )
    runs = [("sampled (default: 20,000 rows)", 20_000)]
    if not args.no_baseline:
        runs.append(("baseline: every row", args.rows))
    results = []
    for label, sample in runs:
        config = work / f"config-{sample}.yaml"
        config.write_text(
            f"monitoring:\n  sample_size: {sample}\n  reports_dir: {work}/reports\n  workspace: {work}/ws\n"
        )
        env = {**os.environ, "TABSERVE_CONFIG": str(config), "TABSERVE_DATABASE_URL": f"sqlite:///{database}"}
        results.append((label, *run_job(env, args.rows)))
    print(f"\n{'run':<32} {'rows':>10} {'wall s':>8} {'peak MB':>8} {'exit':>5}")
    for label, wall, peak, code in results:
        print(f"{label:<32} {args.rows:>10,} {wall:>8.1f} {peak:>8.0f} {code:>5}")
    if len(results) == 2:
        print(
            f"{'ratio (sampled / baseline)':<32} {'':>10} {results[0][1] / results[1][1]:>7.2f}x "
            f"{results[0][2] / results[1][2]:>7.2f}x"
        )


if __name__ == "__main__":
    main()
