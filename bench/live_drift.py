"""Live drift's cost: one refresh at 10,000 rows x the default model's 30 features, and the service's
throughput and p99 at c=32 with the refresher off and on, side by side in alternating rounds.

Part 1 (in-process): the log holds 10,000 rows of the default model (SQLite, and PostgreSQL when
`--postgres URL` is given); prints the median time of one refresh and its parts (read + parse,
PSI of 30 features and the prediction, estimated quality).
Part 2 (`bench/serving.py`'s rounds: server on core 0, wrk on core 1): the refresher off, and on
with `--interval` seconds (default 5, 60x the shipped 300 s: an upper bound on its cost).
Usage: python bench/live_drift.py [--rows 10000] [--rounds 5] [--duration 10] [--postgres URL]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.serving import alternate, train  # noqa: E402

MODEL = "bench_hgb"  # the name bench/serving.py's rounds serve
REFRESHES = 7


def fill_log(url: str, rows: int) -> None:
    """`rows` logged predictions of the default model, near its reference (not copies)."""
    from tabserve.model_store import get_model
    from tabserve.predictions.bulk_insert import insert_rows
    from tabserve.predictions.migration import ensure_schema
    from tabserve.predictions.store import make_engine

    stored = get_model(f"{MODEL}:latest")
    predictor = stored.load_predictor()
    rng = np.random.default_rng(0)
    frame = stored.load_reference()[stored.schema.names].sample(rows, replace=True, random_state=0)
    frame = frame * rng.normal(1.0, 0.01, frame.shape)
    results = predictor.results_from_frame(predictor.predict_frame(frame))
    now = datetime.now(UTC)
    engine = make_engine(url)
    ensure_schema(engine)
    insert_rows(
        engine,
        [
            {
                "request_id": uuid.uuid4().hex,
                "ts": now,
                "model": stored.tag,
                "variant": "default",
                "features": features,
                "prediction": result["prediction"],
                "probabilities": result["probabilities"],
            }
            for features, result in zip(frame.to_dict("records"), results, strict=True)
        ],
    )
    engine.dispose()


def time_refresh(url: str, rows: int) -> None:
    from tabserve.model_store import get_model
    from tabserve.monitoring.live_metrics import (
        LiveDriftRefresher,
        live_gauges,
        read_live_window,
        variant_metrics,
    )
    from tabserve.predictions.store import make_engine
    from tabserve.settings import LiveDriftSettings

    stored = get_model(f"{MODEL}:latest")
    engine = make_engine(url)
    refresher = LiveDriftRefresher(
        engine, {"default": stored}, LiveDriftSettings(window_rows=rows), live_gauges()
    )
    refresher.refresh()  # builds the bins once (the reference sample)
    whole, read, compute = [], [], []
    for _ in range(REFRESHES):
        started = time.perf_counter()
        refresher.refresh()
        whole.append(time.perf_counter() - started)
        started = time.perf_counter()
        window = read_live_window(engine, stored.tag, "default", rows)
        read.append(time.perf_counter() - started)
        started = time.perf_counter()
        variant_metrics(stored, refresher.baseline("default"), window)
        compute.append(time.perf_counter() - started)
    engine.dispose()
    median_ms = {
        name: statistics.median(values) * 1000
        for name, values in (("refresh", whole), ("read", read), ("compute", compute))
    }
    print(
        f"{url.split(':')[0]:<22} {len(window):>6} rows x {len(stored.schema.names)} features: refresh "
        f"{median_ms['refresh']:.0f} ms (read + parse {median_ms['read']:.0f} ms, PSI + estimate "
        f"{median_ms['compute']:.0f} ms), median of {REFRESHES}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--interval", type=float, default=5.0, help="refresher on: seconds between refreshes")
    parser.add_argument(
        "--postgres", help="also time a refresh against this PostgreSQL URL (a scratch database)"
    )
    parser.add_argument("--skip-serving", action="store_true")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="bench-live-drift-"))
    os.environ["BENTOML_HOME"] = str(home)
    train(MODEL, None)
    sqlite_url = f"sqlite:///{home}/predictions.db"  # the file bench/serving.py's rounds log into
    fill_log(sqlite_url, args.rows)
    print(f"\none refresh, window {args.rows:,} rows")
    time_refresh(sqlite_url, args.rows)
    if args.postgres:
        fill_log(args.postgres, args.rows)
        time_refresh(args.postgres, args.rows)
    if not args.skip_serving:
        on = f"live_drift: {{interval_s: {args.interval}, window_rows: {args.rows}}}"
        alternate(
            home,
            args.duration,
            args.rounds,
            f"live drift refresher (every {args.interval:g} s, {args.rows} rows)",
            {"off": "live_drift: {enabled: false}", "on": on},
        )


if __name__ == "__main__":
    main()
