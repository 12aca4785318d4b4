"""Wide-table drift benchmark: `tabserve monitor` over 1,000,000 logged rows x 200 features.

The table: 150 numeric and 50 categorical features, 5 of the categoricals with thousands of
distinct values (Zipf-like: a few common, a long tail). A classifier is trained on a small
generated table (`tabserve train --data CSV --target y`); the log gets the rows through the
prediction writer's bulk insert (tabserve/predictions/bulk_insert.py) with a known shift: num_0
+1 standard deviation, cat_0 (low cardinality) forced to one value, hc_0 (high cardinality)
moved onto values the reference never saw. The job must report exactly those three (and may
report the prediction).

Each job is a subprocess; wall time and peak RSS are its own (GNU time's maximum resident set
of the process and its waited-for children, i.e. the whole tree). The baseline is the job of
a git revision (`--baseline-ref`, default 092c5cd: main before this work) run from a detached
worktree on the same log, stopped at `--cap` seconds ('>N s' then). `--work DIR` keeps the model
and the log: a second run reuses them and only runs the jobs. Usage (`make bench-wide WIDE_ARGS=...`):
  python bench/wide_drift.py [--rows 1000000] [--features 200] [--baseline-ref REF] [--cap 600] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
CHUNK = 20_000
POOL_ROWS = 100_000  # distinct live feature rows, each logged ~rows/POOL_ROWS times
HIGH_CARDINALITY, HIGH_CARDINALITY_VALUES = 5, 5_000
LOW_CARDINALITY_VALUES = 12
CATEGORICAL_SHARE = 0.25
SHIFTED = ("num_0", "cat_0", "hc_0")
TIME = "/usr/bin/time"
BASELINE_REF = "092c5cd"  # main before the wide-table work (issue 15): the job the table compares with


def generate(rows: int, features: int, seed: int, shifted: bool = False) -> pd.DataFrame:
    """Pure: the wide table (and its target `y`); `shifted` applies the known shift."""
    rng = np.random.default_rng(seed)
    categorical = int(features * CATEGORICAL_SHARE)
    numeric = features - categorical
    columns: dict[str, np.ndarray] = {}
    for i in range(numeric):
        columns[f"num_{i}"] = rng.normal(i % 7, 1 + i % 3, rows).round(4)
    weights = 1 / np.arange(1, HIGH_CARDINALITY_VALUES + 1) ** 1.1  # Zipf-like
    weights /= weights.sum()
    for i in range(HIGH_CARDINALITY):
        codes = rng.choice(HIGH_CARDINALITY_VALUES, rows, p=weights)
        columns[f"hc_{i}"] = np.char.add(f"h{i}_", codes.astype(str)).astype(object)
    for i in range(categorical - HIGH_CARDINALITY):
        codes = rng.integers(0, LOW_CARDINALITY_VALUES, rows)
        columns[f"cat_{i}"] = np.char.add("c", codes.astype(str)).astype(object)
    frame = pd.DataFrame(columns)
    logit = frame["num_0"] - 0.5 * frame["num_1"] + (frame["cat_0"] == "c1") * 1.5 - 0.2
    frame["y"] = np.where(rng.random(rows) < 1 / (1 + np.exp(-logit)), "yes", "no")
    if shifted:
        frame["num_0"] = frame["num_0"] + 1.0
        frame["cat_0"] = "c3"
        # hc_0: half the rows take values never seen at training (new products, new cities)
        unseen = rng.random(rows) < 0.5
        frame.loc[unseen, "hc_0"] = np.char.add("new_", rng.integers(0, 2_000, unseen.sum()).astype(str))
    return frame


def train(work: Path, features: int, env: dict[str, str]) -> str:
    data = work / "wide.csv"
    generate(8_000, features, seed=1).to_csv(data, index=False)
    config = work / "train.yaml"
    config.write_text(
        "training:\n  test_size: 0.5\n  importance_rows: 300\n  importance_repeats: 1\n"
        "  classifier:\n    estimator: sklearn.ensemble.HistGradientBoostingClassifier\n"
        "    params: {max_iter: 30}\n"
    )
    subprocess.run(
        [sys.executable, "-m", "tabserve", "train", "--data", str(data), "--target", "y", "--name", "wide"],
        cwd=REPO,
        env={**env, "TABSERVE_CONFIG": str(config)},
        check=True,
        capture_output=True,
    )
    return "wide:latest"


def fill_log(database: Path, rows: int, features: int) -> str:
    """`rows` logged predictions of the shifted table, through the writer's bulk insert."""
    from tabserve.model_store import get_model
    from tabserve.predictions.bulk_insert import insert_rows
    from tabserve.predictions.migration import upgrade as upgrade_schema
    from tabserve.predictions.store import make_engine

    stored = get_model("wide:latest")
    pool = generate(min(POOL_ROWS, rows), features, seed=2, shifted=True).drop(columns="y")
    predicted = stored.load_predictor().predict_frame(pool)["prediction"].tolist()
    records = pool.to_dict("records")
    engine = make_engine(f"sqlite:///{database}")
    upgrade_schema(engine)
    now = datetime.now(UTC)
    for start in range(0, rows, CHUNK):
        batch = [
            {
                "request_id": uuid.uuid4().hex,
                "ts": now,
                "model": stored.tag,
                "variant": "default",
                "features": records[i % len(records)],
                "prediction": predicted[i % len(records)],
                "probabilities": None,
            }
            for i in range(start, min(rows, start + CHUNK))
        ]
        insert_rows(engine, batch)
        print(f"\rlogged {start + len(batch):,}/{rows:,} rows", end="", flush=True)
    print()
    engine.dispose()
    return stored.tag


def run_job(
    tree: Path, env: dict[str, str], tag: str, rows: int, cap: float, reports: Path
) -> dict[str, Any]:
    """One `tabserve monitor` under GNU time: wall, peak RSS of the tree, exit code, drifted columns."""
    stats = reports / "time.txt"
    command = [TIME, "-f", "%e %M", "-o", str(stats), sys.executable, "-m", "tabserve"]
    command += ["monitor", "--quiet", "--model", tag, "--last", str(rows)]
    started = time.perf_counter()
    # its own process group: past the cap, the job's whole tree is stopped, not only GNU time
    job = subprocess.Popen(
        command,
        cwd=tree,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = job.communicate(timeout=cap)
    except subprocess.TimeoutExpired:
        os.killpg(job.pid, signal.SIGKILL)
        job.communicate()
        return {"wall": None, "peak_mb": None, "code": None, "drifted": None, "out": ""}
    wall = time.perf_counter() - started
    peak_kb = int(stats.read_text().split()[-1])
    summaries = sorted(reports.glob("*.json"))
    drifted = json.loads(summaries[-1].read_text())["drifted_features"] if summaries else None
    html = sum(path.stat().st_size for path in reports.glob("*.html")) / 2**20
    return {
        "wall": wall,
        "peak_mb": peak_kb / 1024,
        "code": job.returncode,
        "drifted": drifted,
        "html_mb": html,
        "out": output[-3000:],
    }


def job_env(work: Path, name: str, database: Path) -> tuple[dict[str, str], Path]:
    reports = work / f"reports-{name}"
    shutil.rmtree(reports, ignore_errors=True)
    reports.mkdir()
    config = work / f"monitor-{name}.yaml"
    config.write_text(f"monitoring:\n  reports_dir: {reports}\n  workspace: {reports}/ws\n")
    env = {**os.environ, "TABSERVE_CONFIG": str(config), "TABSERVE_DATABASE_URL": f"sqlite:///{database}"}
    return env, reports


def baseline_tree(ref: str, work: Path) -> Path:
    tree = work / "baseline"
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(tree), ref], cwd=REPO, check=True, capture_output=True
    )
    return tree


def cell(value: float | None, digits: int, cap: float) -> str:
    return f">{cap:.0f}" if value is None else f"{value:.{digits}f}"


def print_table(results: list[tuple[str, dict[str, Any]]], rows: int, features: int, cap: float) -> None:
    print(f"\ndrift job, {rows:,} logged rows x {features} features (shifted: {', '.join(SHIFTED)})")
    print(f"{'run':<26} {'wall s':>8} {'peak MB':>8} {'HTML MB':>8} {'exit':>5}  drifted")
    for label, r in results:
        drifted = ", ".join(r["drifted"]) if r["drifted"] is not None else "-"
        html = cell(r.get("html_mb") if r["wall"] is not None else None, 1, cap)
        print(
            f"{label:<26} {cell(r['wall'], 1, cap):>8} {cell(r['peak_mb'], 0, cap):>8} {html:>8}"
            f" {r['code'] if r['code'] is not None else '-':>5}  {drifted}"
        )
    if len(results) == 2:
        base, now = results[0][1], results[1][1]
        if base["wall"] is None:
            print(f"{'ratio (now / baseline)':<26} {'<' + format(now['wall'] / cap, '.3f'):>8}")
        else:
            print(
                f"{'ratio (now / baseline)':<26} {now['wall'] / base['wall']:>7.3f}x"
                f" {now['peak_mb'] / base['peak_mb']:>7.3f}x"
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=200)
    parser.add_argument(
        "--baseline-ref", default=BASELINE_REF, help="git revision of the baseline job ('': none)"
    )
    parser.add_argument("--cap", type=float, default=600, help="seconds after which a job is stopped")
    parser.add_argument("--work", type=Path, help="folder to keep (default: a new temporary folder)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-wide-"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ["BENTOML_HOME"] = str(work / "bentoml")
    database = work / "predictions.db"
    tag = "wide:latest"
    if database.exists():  # a kept --work folder: the same model and log, only the jobs run again
        print(f"reusing {database} ({database.stat().st_size / 2**20:,.0f} MB)")
    else:
        started = time.perf_counter()
        train(work, args.features, dict(os.environ))
        print(f"trained in {time.perf_counter() - started:.0f}s")
        started = time.perf_counter()
        tag = fill_log(database, args.rows, args.features)
        size = database.stat().st_size / 2**20
        print(f"filled the log in {time.perf_counter() - started:.0f}s ({size:,.0f} MB)")
    runs = [("now", REPO)]
    if args.baseline_ref:
        runs.insert(0, (f"baseline ({args.baseline_ref})", baseline_tree(args.baseline_ref, work)))
    results = []
    try:
        for label, tree in runs:
            env, reports = job_env(work, label.split()[0], database)
            print(f"running {label} ...", flush=True)
            results.append((label, run_job(tree, env, tag, args.rows, args.cap, reports)))
    finally:
        if args.baseline_ref:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(work / "baseline")], cwd=REPO, check=False
            )
    for label, r in results:
        if r["code"] not in (0, 1):
            print(f"--- {label} output ---\n{r['out']}")
    print_table(results, args.rows, args.features, args.cap)


if __name__ == "__main__":
    main()
