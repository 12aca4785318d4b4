"""`python -m tabserve score|stream`: offline batch scoring and the stream worker."""

from __future__ import annotations

from tabserve.bento_env import use_bento_model_store

use_bento_model_store()  # before anything imports bentoml

# ruff: noqa: E402

import argparse
import logging
import sys

from tabserve.cli_errors import run_reporting_errors
from tabserve.cpu_budget import limit_process_threads
from tabserve.file_scoring import DEFAULT_CHUNK_ROWS
from tabserve.model_store import get_model
from tabserve.settings import load_settings


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tabserve", description=__doc__)
    parser.add_argument("--config", help="configuration file (default: configuration.yaml)")
    commands = parser.add_subparsers(dest="command", required=True)
    score = commands.add_parser("score", help="score CSV/Parquet files (a file, a directory or a glob)")
    score.add_argument("input")
    score.add_argument("output", help="a file for one input, a directory for several")
    score.add_argument("--model", help="model tag (default: the served one)")
    score.add_argument("--engine", choices=["local", "spark"], default="local")
    score.add_argument("--strict", action="store_true", help="fail on the first bad row")
    score.add_argument("--chunk-rows", type=int, default=DEFAULT_CHUNK_ROWS)
    score.add_argument("--spark-master", default=None, help="Spark master URL (default: local[*])")
    score.add_argument("--quiet", action="store_true", help="no progress bar")
    stream = commands.add_parser("stream", help="score a Redis stream continuously (SIGTERM stops it)")
    stream.add_argument("--model", help="model tag (default: the served one)")
    stream.add_argument("--consumer", help="consumer name in the group (default: host-pid)")
    return parser.parse_args(argv)


def score(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    tag = args.model or settings.served_tag
    get_model(tag)  # a missing or altered model ends here, before anything else is logged
    limit_process_threads(settings.serving.threads_per_worker)  # Spark's executors limit their own
    if args.engine == "spark":
        from tabserve.spark_scoring import score_spark

        rows = score_spark(settings, tag, args.input, args.output, args.strict, args.spark_master)
        print(f"scored {rows} rows with Spark into {args.output}")
        return 0
    from tabserve.batch_scoring import score_local

    report = score_local(settings, tag, args.input, args.output, args.strict, args.chunk_rows, not args.quiet)
    print(f"scored {report.scored}/{report.rows} rows into {args.output}; {report.bad_rows} bad row(s)")
    for message in report.errors[:20]:
        print(f"  {message}")
    return 0


def stream(args: argparse.Namespace) -> int:
    from tabserve.streaming import run_worker

    settings = load_settings(args.config)
    tag = args.model or settings.served_tag
    get_model(tag)  # a missing or altered model ends here, before anything else is logged
    limit_process_threads(settings.serving.threads_per_worker)
    run_worker(settings, tag, args.consumer)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return run_reporting_errors(lambda: score(args) if args.command == "score" else stream(args))


if __name__ == "__main__":
    sys.exit(main())
