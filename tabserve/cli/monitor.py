"""`tabserve monitor`: drift and quality of the served models against their reference; exit 0 OK, 1 alarm.

By default every variant the deployment serves now (the stored state: after a promotion, the new
champion) is monitored and named apart; the exit code is the worst of them. Run once (cron, a
Kubernetes CronJob) or with --every on a schedule (each run reads the deployment state again).
"""

from __future__ import annotations

import argparse
import re
import time
from datetime import datetime
from typing import Any

from tabserve.cli.errors import run_reporting_errors
from tabserve.settings import Settings, load_settings

EVERY_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_every(text: str) -> float:
    match = re.fullmatch(r"(\d+)([smhd])", text)
    if not match:
        raise argparse.ArgumentTypeError(
            f"--every takes a number and a unit (s, m, h, d), e.g. 15m; got {text!r}"
        )
    return int(match.group(1)) * EVERY_UNITS[match.group(2)]


def add_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "monitor",
        parents=[common],
        help="drift and quality of the served model (exit 1 on an alarm)",
        description=__doc__,
    )
    parser.add_argument(
        "--model", help="model tag (default: every model the deployment serves now, each variant apart)"
    )
    parser.add_argument(
        "--last", type=int, help="window: the last N logged rows (default monitoring.window_last)"
    )
    parser.add_argument("--since", type=datetime.fromisoformat, help="window start, ISO time")
    parser.add_argument("--until", type=datetime.fromisoformat, help="window end, ISO time")
    parser.add_argument("--every", type=parse_every, help="run on a schedule, e.g. 15m (until stopped)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument(
        "--retrain",
        action="store_true",
        help="on an alarm, run the retraining loop (`tabserve retrain`; also retrain.trigger: alarm)",
    )
    parser.add_argument("--url", help="with --retrain: service URL (default: $TABSERVE_URL)")
    parser.set_defaults(run=run)


def check(args: argparse.Namespace) -> int:
    from tabserve.deployment.served import served_models
    from tabserve.monitoring.job import Window, exit_code, run_job
    from tabserve.monitoring.table import format_table

    settings = load_settings(args.config)
    ranged = args.since is not None or args.until is not None
    window = Window(
        last=None if ranged else (args.last or settings.monitoring.window_last),
        since=args.since,
        until=args.until,
    )
    targets: list[tuple[str | None, str]] = (
        [(None, args.model)] if args.model else list(served_models(settings).items())
    )
    codes = []
    alarms: str | None = None
    for variant, tag in targets:
        output = run_job(tag, window, settings.monitoring, progress=not args.quiet, variant=variant)
        print(format_table(output), flush=True)
        codes.append(exit_code(output.result))
        if codes[-1] == 1 and alarms is None:
            alarms = f"monitor alarm on {tag}" + (f" (variant {variant})" if variant else "")
    if alarms is not None and (args.retrain or settings.retrain.trigger == "alarm"):
        retrain_on_alarm(settings, alarms, args.url)
    return max(codes)


def retrain_on_alarm(settings: Settings, trigger: str, url: str | None) -> None:
    """The loop after an alarm; its refusal (cooldown, no new labels...) is printed, not raised:
    the monitor's own exit code (1, the alarm) is what a scheduler acts on."""
    from tabserve.cli.retrain import retrain
    from tabserve.errors import TabserveError
    from tabserve.retraining.training_data import Window

    print(f"retraining: {trigger}", flush=True)
    try:
        code = retrain(settings, Window(last=settings.retrain.window_last), trigger, url=url)
    except TabserveError as error:
        print(f"retraining stopped: {error}", flush=True)
        return
    print(f"retraining: exit code {code} ({'accepted' if code == 0 else 'rejected'})", flush=True)


def run(args: argparse.Namespace) -> int:
    if args.every is None:
        return check(args)
    while True:  # a scheduler loop: each run's exit code is printed, the loop goes on
        started = time.monotonic()
        print(f"exit code {run_reporting_errors(lambda: check(args))}", flush=True)
        time.sleep(max(0.0, args.every - (time.monotonic() - started)))
