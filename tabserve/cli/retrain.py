"""`tabserve retrain`: retrain the served model on its labelled traffic and replace it only on evidence.

A challenger is trained with the champion's own recipe on the labelled rows of the prediction log
(the most recent ones held out), compared with the champion on the same held-out rows by a
paired test, and, when the decision rule accepts it, handed to the running service as a
candidate: shadow first, then the canary steps with their guards, then promotion or rollback.

Exit codes: 0 accepted and handed to the rollout (with --wait: promoted); 1 rejected (with
--wait: rolled back); 2 an error or a loop that may not run now (in flight, cooldown, no new
labels, too few labels), with one line saying why.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from tabserve.cli.deploy import utc_time
from tabserve.settings import Settings, load_settings
from tabserve.text_columns import aligned

EXAMPLES = """examples:
  tabserve retrain                          the last retrain.window_last labelled rows; hand off if accepted
  tabserve retrain --since 2026-11-01 --wait   wait for the rollout: exit 0 only on promotion
  tabserve retrain --history                the audit records of the last loops
  tabserve retrain --show ev-20261204-101500-a1b2c3   one loop's whole record (JSON)"""


def add_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "retrain",
        parents=[common],
        help="retrain on labelled traffic; a paired test decides; an accepted model is rolled out",
        description=__doc__,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--last", type=int, help="window: the last N labelled rows (default retrain.window_last)"
    )
    parser.add_argument(
        "--since", type=utc_time, help="window start, ISO time (UTC unless an offset is given)"
    )
    parser.add_argument("--until", type=utc_time, help="window end, ISO time")
    parser.add_argument("--wait", action="store_true", help="wait for the rollout: exit 0 only on promotion")
    parser.add_argument("--url", help="service URL (default: $TABSERVE_URL or http://127.0.0.1:3000)")
    parser.add_argument("--actor", help="who runs the loop (default: user@host)")
    parser.add_argument("--trigger", default="manual", help="what started the loop (kept in its record)")
    parser.add_argument("--history", action="store_true", help="list the last loops' audit records")
    parser.add_argument("--show", metavar="EVALUATION_ID", help="print one loop's audit record as JSON")
    parser.set_defaults(run=run)


def history_lines(runs: list[Any]) -> list[str]:
    rows = [("STARTED (UTC)", "EVALUATION", "STATUS", "TRIGGER", "CHAMPION", "CHALLENGER", "ROLLOUT")]
    for run in runs:
        rollout = (run.record.get("rollout") or {}).get("outcome") or "-"
        rows.append(
            (
                f"{run.started_at:%Y-%m-%d %H:%M:%S}",
                run.evaluation_id,
                run.status,
                run.trigger,
                run.champion,
                run.challenger or "-",
                rollout,
            )
        )
    return aligned(rows)


def retrain(
    settings: Settings,
    window: Any,
    trigger: str,
    *,
    url: str | None = None,
    actor: str | None = None,
    wait: bool = False,
) -> int:
    """One loop, printed; shared by `tabserve retrain` and `tabserve monitor --retrain`."""
    from tabserve.deployment.admin_client import AdminClient, default_actor
    from tabserve.deployment.served import primary_model
    from tabserve.model_store import get_model
    from tabserve.predictions.migration import ensure_schema
    from tabserve.predictions.store import make_engine
    from tabserve.retraining.handoff import Handoff
    from tabserve.retraining.loop import Request, run_loop

    engine = make_engine(settings.monitoring.url)
    try:
        ensure_schema(engine)
        champion = get_model(primary_model(settings))
        request = Request(window, trigger, actor or default_actor(), wait)
        handoff = Handoff(AdminClient(url, actor=actor))
        outcome = run_loop(
            engine,
            settings,
            champion,
            request,
            handoff,
            report=lambda line: print(line, file=sys.stderr, flush=True),
            show=lambda text: print(text, flush=True),
        )
    finally:
        engine.dispose()
    return outcome.code


def run(args: argparse.Namespace) -> int:
    from tabserve.predictions.migration import ensure_schema
    from tabserve.predictions.store import make_engine
    from tabserve.retraining.audit import find_run, recent_runs
    from tabserve.retraining.training_data import Window

    settings = load_settings(args.config)
    if args.history or args.show:
        engine = make_engine(settings.monitoring.url)
        ensure_schema(engine)
        if args.show:
            found = find_run(engine, args.show)
            if found is None:
                print(f"error: no retraining loop {args.show}", file=sys.stderr)
                return 2
            print(json.dumps({**found.record, "status": found.status}, indent=2, default=str))
        else:
            print("\n".join(history_lines(recent_runs(engine))))
        engine.dispose()
        return 0
    ranged = args.since is not None or args.until is not None
    window = Window(
        last=None if ranged else (args.last or settings.retrain.window_last),
        since=args.since,
        until=args.until,
    )
    return retrain(settings, window, args.trigger, url=args.url, actor=args.actor, wait=args.wait)
