"""Explanations' cost, in-process: per-row latency and rows/s of `Explainer.explain_frame` beside
the same rows' `Predictor.predict_frame` (what `/predict` spends in the model), for the default
model (HistGradientBoosting, breast-cancer data) and a 300-tree RandomForest, one native thread.

Medians of `--repeats` timings for batches of 1 and `--rows` rows. HTTP is left out: `/explain`
adds the same routing, validation and logging as `/predict_batch`. Run it on a quiet machine;
figures go to docs/benchmarks.md with the load average printed here.
Usage: python bench/explanations.py [--rows 100] [--repeats 7]
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
# Not bench/ itself first: bench/profile.py would shadow the standard library's `profile`
# (shap imports pyspark, which imports cProfile).
sys.path[:] = [str(REPO), *(p for p in sys.path if Path(p or ".").resolve() != REPO / "bench")]

ESTIMATORS = {
    "HistGradientBoosting (default)": ("sklearn.ensemble.HistGradientBoostingClassifier", {}),
    "RandomForest, 300 trees": (
        "sklearn.ensemble.RandomForestClassifier",
        {"n_estimators": 300, "random_state": 0},
    ),
}


def fitted(estimator: str, params: dict[str, Any]) -> tuple[Any, Any]:
    from tabserve.datasets import builtin_breast_cancer
    from tabserve.pipeline import build_pipeline, make_estimator
    from tabserve.predictor import Predictor
    from tabserve.schema import coerce_frame, infer_schema
    from tabserve.settings import EstimatorSettings

    frame = builtin_breast_cancer()
    target = frame.pop("diagnosis")
    schema = infer_schema(frame)
    features = coerce_frame(frame, schema)
    pipeline = build_pipeline(
        schema, make_estimator(EstimatorSettings(estimator=estimator, params=params), "classification"), 50
    )
    pipeline.fit(features, target)
    return Predictor(pipeline, schema, tag="bench:1", classes=tuple(pipeline.classes_.tolist())), features


def median_seconds(call: Any, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    from threadpoolctl import threadpool_limits

    from tabserve.explanations.explainer import Explainer
    from tabserve.settings import ExplanationSettings

    print(f"load average at start: {os.getloadavg()}")
    columns = f"{'model':<32} {'rows':>5} {'predict ms':>11} {'explain ms':>11} {'ratio':>7}"
    print(f"{columns} {'explained rows/s':>17}")
    with threadpool_limits(limits=1):
        for name, (estimator, params) in ESTIMATORS.items():
            predictor, features = fitted(estimator, params)
            explainer = Explainer(predictor, features, ExplanationSettings())
            for rows in (1, args.rows):
                batch = features.iloc[:rows].reset_index(drop=True)
                explainer.explain_frame(batch)  # warm: first-call costs are not per row
                predict = median_seconds(
                    functools.partial(predictor.predict_frame, batch, True), args.repeats
                )
                explain = median_seconds(functools.partial(explainer.explain_frame, batch), args.repeats)
                print(
                    f"{name:<32} {rows:>5} {predict * 1000:>11.2f} {explain * 1000:>11.2f}"
                    f" {explain / predict:>6.1f}x {rows / explain:>17.0f}"
                )
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
