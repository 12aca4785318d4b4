"""The journal's cost on the request path: `PredictionLogger.log()` with the journal off vs on.

In-process, no HTTP: one-row batches (as `/predict` hands them over) into a SQLite log,
alternating off/on for several rounds; prints microseconds per call, the median ratio, and the
share of a request's time at the serving benchmark's ~1,250 rps (800 us a request).
It overstates the cost: the journal's `os.write` releases the GIL, and the log's writer thread,
busy inserting the same rows, may hold it for up to a switch interval (the serving benchmark is
the end-to-end figure).
Usage: python bench/journal.py [--calls 5000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tabserve.predictions.logger import PredictionLogger  # noqa: E402
from tests.factories import prediction_rows  # noqa: E402

REQUEST_US = 800.0  # one request's time at ~1,250 rps (README, Benchmarks)
FEATURES = 30  # the breast-cancer model's record


def per_call_us(journal: bool, calls: int, folder: Path) -> float:
    logger = PredictionLogger(f"sqlite:///{folder / 'p.db'}", folder / "spool", journal=journal)
    batches = [prediction_rows(f"{journal}-{i}-", 0, 1) for i in range(calls)]
    for batch in batches:
        batch[0]["features"] = {f"f{k}": float(k) for k in range(FEATURES)}
    start = time.perf_counter()
    for batch in batches:
        logger.log(batch)
    elapsed = time.perf_counter() - start
    logger.close()
    return elapsed / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(f"log() of one {FEATURES}-feature row, {args.calls} calls, {args.rounds} alternating rounds")
    print(f"{'round':<6} {'off us':>8} {'on us':>8} {'on/off':>7} {'added us':>9}")
    added = []
    ratios = []
    for round_index in range(1, args.rounds + 1):
        with tempfile.TemporaryDirectory() as folder:
            off = per_call_us(False, args.calls, Path(folder))
        with tempfile.TemporaryDirectory() as folder:
            on = per_call_us(True, args.calls, Path(folder))
        added.append(on - off)
        ratios.append(on / off)
        print(f"{round_index:<6} {off:>8.1f} {on:>8.1f} {on / off:>6.2f}x {on - off:>9.1f}")
    median_added = statistics.median(added)
    print(f"{'median':<6} {'':>8} {'':>8} {statistics.median(ratios):>6.2f}x {median_added:>9.1f}")
    share = median_added / REQUEST_US
    print(f"added per request at {REQUEST_US:.0f} us a request: {share:.1%} of throughput")


if __name__ == "__main__":
    main()
