"""`tabserve score` (CSV/Parquet files, locally or on Spark) and `tabserve stream` (the stream worker)."""

from __future__ import annotations

import argparse
from typing import Any

from tabserve.batch.file_scoring import DEFAULT_CHUNK_ROWS
from tabserve.cpu_budget import limit_process_threads
from tabserve.deployment.served import primary_model
from tabserve.model_store import get_model
from tabserve.settings import load_settings


def add_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    score = commands.add_parser(
        "score",
        parents=[common],
        help="score CSV/Parquet files (a file, a directory or a glob)",
        description="Score CSV/Parquet files with the served model; bad rows are kept with their error.",
    )
    score.add_argument("input", help="a file, a directory or a glob")
    score.add_argument("output", help="a file for one input, a directory for several")
    score.add_argument("--model", help="model tag (default: the one the deployment serves now)")
    score.add_argument("--engine", choices=["local", "spark"], default="local")
    score.add_argument("--strict", action="store_true", help="fail on the first bad row")
    score.add_argument("--sep", help="CSV inputs' delimiter: , ; | or tab (default: detected)")
    score.add_argument("--chunk-rows", type=int, default=DEFAULT_CHUNK_ROWS)
    score.add_argument("--spark-master", default=None, help="Spark master URL (default: local[*])")
    score.add_argument("--quiet", action="store_true", help="no progress bar")
    score.set_defaults(run=run_score)
    stream = commands.add_parser(
        "stream",
        parents=[common],
        help="score a Redis or Kafka stream continuously (SIGTERM stops it)",
        description="Score the configured stream in micro-batches until SIGTERM/SIGINT.",
    )
    stream.add_argument(
        "--model", help="model tag, pinned (default: the one the deployment serves, followed as it changes)"
    )
    stream.add_argument("--consumer", help="consumer name in the group (default: host-pid)")
    stream.set_defaults(run=run_stream)


def run_score(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    tag = args.model or primary_model(settings)
    get_model(tag)  # a missing or altered model ends here, before anything else is logged
    limit_process_threads(settings.serving.threads_per_worker)  # Spark's executors limit their own
    if args.engine == "spark":
        from tabserve.batch.spark_scoring import score_spark

        rows = score_spark(settings, tag, args.input, args.output, args.strict, args.spark_master)
        print(f"scored {rows} rows with Spark into {args.output} (model {tag})")
        return 0
    from tabserve.batch.local_scoring import score_local

    report = score_local(
        settings, tag, args.input, args.output, args.strict, args.chunk_rows, not args.quiet, args.sep
    )
    print(
        f"scored {report.scored}/{report.rows} rows into {args.output} (model {tag});"
        f" {report.bad_rows} bad row(s)"
    )
    for message in report.errors[:20]:
        print(f"  {message}")
    return 0


def run_stream(args: argparse.Namespace) -> int:
    from tabserve.streaming.worker import run_worker

    settings = load_settings(args.config)
    tag = args.model or primary_model(settings)
    get_model(tag)  # a missing or altered model ends here, before anything else is logged
    limit_process_threads(settings.serving.threads_per_worker)
    run_worker(settings, tag, args.consumer, follow=args.model is None)
    return 0
