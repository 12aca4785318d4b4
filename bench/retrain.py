"""Retraining benchmark: one loop over 100,000 labelled logged rows, time and peak memory per phase.

Side by side in the same run: `tabserve train` on the same rows written as a CSV (what a person
retraining by hand runs), each in a process of its own so each peak is its own. The loop is the
real `tabserve retrain` on a census-like table (14 features) whose relation changed after
deployment: the data, train, evaluate (paired tests, bootstrap) and save phases run; the hand-off
goes to an address where no service listens, so the run ends there (exit 2) after its phases
are recorded in the loop's audit record, which this script prints.

Usage: python bench/retrain.py [--rows 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
GNU_TIME = "/usr/bin/time"  # `make bench-tools` installs it
sys.path[0] = str(REPO)  # not bench/: its profile.py would shadow the standard library's


def run(
    argv: list[str], env: dict[str, str], peak_file: Path
) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    """A command in a process of its own: wall seconds, its own peak RSS (MB, GNU time), its output."""
    started = time.perf_counter()
    done = subprocess.run(
        [GNU_TIME, "-f", "%M", "-o", str(peak_file), *argv],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    return seconds, int(peak_file.read_text().split()[-1]) / 1024, done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-retrain-"))
    os.environ["BENTOML_HOME"] = str(work / "bentoml")
    from tabserve.predictions.migration import upgrade
    from tabserve.predictions.store import make_engine
    from tests.census import census_drifted, log_labelled, train_census_model

    champion = train_census_model(work)
    database = work / "log.db"
    url = f"sqlite:///{database}"
    upgrade(make_engine(url))
    drifted = census_drifted(args.rows, seed=7)
    started = time.perf_counter()
    log_labelled(champion, url, drifted, seconds_apart=0.01)
    print(f"logged and labelled {args.rows:,} rows in {time.perf_counter() - started:.1f} s", flush=True)
    config = work / "configuration.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "serving": {"model": champion.tag},
                "monitoring": {"sqlite_path": str(database)},
                "retrain": {"window_last": args.rows, "cooldown_minutes": 0},
            }
        )
    )
    env = {**os.environ, "TABSERVE_CONFIG": str(config), "TABSERVE_URL": "http://127.0.0.1:9"}
    tabserve = [sys.executable, "-m", "tabserve"]
    loop_s, loop_mb, loop = run([*tabserve, "retrain"], env, work / "loop.peak")
    csv = work / "by_hand.csv"
    drifted.to_csv(csv, index=False)
    by_hand = [*tabserve, "train", "--data", str(csv), "--target", "label", "--name", "by_hand"]
    train_s, train_mb, trained = run(by_hand, env, work / "train.peak")
    if trained.returncode != 0:
        sys.exit(trained.stderr)
    show = subprocess.run(
        [*tabserve, "retrain", "--history"], cwd=REPO, env=env, capture_output=True, text=True, check=True
    )
    evaluation = show.stdout.splitlines()[1].split()[2]
    shown = subprocess.run(
        [*tabserve, "retrain", "--show", evaluation],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    record = json.loads(shown.stdout)
    print(loop.stdout)
    print(f"loop exit {loop.returncode} ({loop.stderr.strip().splitlines()[-1]})")
    print(f"\n{'phase':10} {'seconds':>8} {'peak RSS MB':>12}")
    for phase, measured in record["phases"].items():
        print(f"{phase:10} {measured['seconds']:8.2f} {measured['peak_rss_mb']:12.0f}")
    print(f"\nwhole loop (process):  {loop_s:6.1f} s, peak {loop_mb:6.0f} MB")
    print(f"tabserve train (same rows, CSV): {train_s:6.1f} s, peak {train_mb:6.0f} MB")
    print(f"ratio loop / train: {loop_s / train_s:.2f}x time")
    print(f"load average: {os.getloadavg()}")


if __name__ == "__main__":
    main()
