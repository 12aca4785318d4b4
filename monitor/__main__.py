"""Entry point: parse arguments, run the monitoring job once or on a schedule, exit 0/1/2."""

from __future__ import annotations

from tabserve.bento_env import use_bento_model_store

use_bento_model_store()  # before anything imports bentoml

# ruff: noqa: E402

import argparse
import logging
import re
import sys
import time
from datetime import datetime

from tabserve.cli_errors import run_reporting_errors
from tabserve.monitoring import Window, exit_code, format_table, run_job
from tabserve.settings import load_settings

EVERY_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_every(text: str) -> float:
    match = re.fullmatch(r"(\d+)([smhd])", text)
    if not match:
        raise argparse.ArgumentTypeError(
            f"--every takes a number and a unit (s, m, h, d), e.g. 15m; got {text!r}"
        )
    return int(match.group(1)) * EVERY_UNITS[match.group(2)]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m monitor", description=__doc__)
    parser.add_argument("--config", help="configuration file (default: configuration.yaml)")
    parser.add_argument("--model", help="model tag (default: the served one)")
    parser.add_argument(
        "--last", type=int, help="window: the last N logged rows (default monitoring.window_last)"
    )
    parser.add_argument("--since", type=datetime.fromisoformat, help="window start, ISO time")
    parser.add_argument("--until", type=datetime.fromisoformat, help="window end, ISO time")
    parser.add_argument("--every", type=parse_every, help="run on a schedule, e.g. 15m (until stopped)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def run_once(args: argparse.Namespace) -> int:
    return run_reporting_errors(lambda: check(args))


def check(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    ranged = args.since is not None or args.until is not None
    window = Window(
        last=None if ranged else (args.last or settings.monitoring.window_last),
        since=args.since,
        until=args.until,
    )
    output = run_job(args.model or settings.served_tag, window, settings.monitoring, progress=not args.quiet)
    print(format_table(output))
    return exit_code(output.result)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.every is None:
        return run_once(args)
    while True:  # a scheduler loop: each run's exit code is printed, the loop goes on
        started = time.monotonic()
        print(f"exit code {run_once(args)}", flush=True)
        time.sleep(max(0.0, args.every - (time.monotonic() - started)))


if __name__ == "__main__":
    sys.exit(main())
