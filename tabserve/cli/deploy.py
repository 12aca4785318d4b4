"""`tabserve deploy`: read and change the deployment policy of a running service; A/B report.

Changes go through the service's admin API (--url, token from TABSERVE_ADMIN_TOKEN);
`report` reads the prediction-log database directly, like `tabserve monitor`.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tabserve.deployment.admin_client import AdminClient
from tabserve.errors import TabserveError
from tabserve.settings import load_settings

CHANGES = ("switch", "weights", "canary", "rollout", "promote", "rollback", "reset")


def weight_pair(text: str) -> tuple[str, float]:
    name, _, weight = text.partition("=")
    try:
        return name, float(weight)
    except ValueError:
        raise argparse.ArgumentTypeError(f"weights look like champion=70; got {text!r}") from None


def add_parser(commands_of_tabserve: Any, common: argparse.ArgumentParser) -> None:
    parser = commands_of_tabserve.add_parser(
        "deploy",
        parents=[common],
        help="deployment policy of a running service: status, switch, canary, rollout, A/B report",
        description=__doc__,
    )
    parser.set_defaults(run=run)
    parser.add_argument("--url", help="service URL (default: $TABSERVE_URL or http://127.0.0.1:3000)")
    parser.add_argument("--actor", help="who makes the change (default: user@host)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "status", parents=[common], help="the policy, the traffic shares and the rollout's progress"
    )
    events = commands.add_parser("events", parents=[common], help="the audit trail, newest first")
    events.add_argument("--limit", type=int, default=20)
    for name, help_text in {
        "switch": "blue-green: all traffic to the other variant (or --to NAME), at once",
        "weights": "A/B: a sticky split, e.g. champion=50 candidate=50",
        "canary": "canary: PERCENT of the traffic to the candidate",
        "rollout": "progressive delivery: canary steps judged by the guards, then promotion",
        "promote": "the candidate becomes the champion and takes all traffic",
        "rollback": "all traffic back to the champion (or to the variant before the last promotion)",
        "reset": "back to the policy in configuration.yaml",
    }.items():
        command = commands.add_parser(name, parents=[common], help=help_text)
        command.add_argument("--reason", required=True, help="why (kept in the audit trail)")
        if name == "switch":
            command.add_argument("--to", help="variant to switch to")
        if name == "weights":
            command.add_argument("weights", nargs="+", type=weight_pair, metavar="NAME=WEIGHT")
        if name == "canary":
            command.add_argument("percent", type=float)
    report = commands.add_parser(
        "report", parents=[common], help="A/B comparison: CLI table, HTML and JSON in reports_dir"
    )
    report.add_argument("--a", help="variant A (default: the champion)")
    report.add_argument("--b", help="variant B (default: the candidate)")
    report.add_argument(
        "--since", type=datetime.fromisoformat, help="window start, ISO time (default: 24h ago)"
    )
    report.add_argument("--until", type=datetime.fromisoformat, help="window end, ISO time")
    report.add_argument("--alpha", type=float, default=0.05, help="significance level")


def show_state(payload: dict[str, Any]) -> str:
    state, policy = payload["state"], payload["state"]["policy"]
    lines = [f"version {payload['version']}: strategy {policy['strategy']}"]
    for name, tag in payload["variants"].items():
        roles = [role for role in ("active", "champion", "candidate") if policy.get(role) == name]
        share = payload["traffic"].get(name, 0.0)
        lines.append(f"  {name:<16} {tag:<40} {share:>7.1%}  {' '.join(roles)}")
    rollout = state.get("rollout")
    if rollout:
        step = f"step {rollout['step'] + 1}/{len(rollout['steps'])} ({rollout['steps'][rollout['step']]:g}%)"
        lines.append(
            f"rollout: {rollout['state']}, {step}{': ' + rollout['reason'] if rollout['reason'] else ''}"
        )
        for guard, result in rollout.get("guards", {}).items():
            lines.append(f"  {guard:<17} {'ok' if result['ok'] else 'FIRED':<6} {result['detail']}")
    return "\n".join(lines)


def report(args: argparse.Namespace) -> int:
    from tabserve.deployment.ab_report import compare_variants, format_table, write_report
    from tabserve.deployment.store import read_state
    from tabserve.model_store import get_model
    from tabserve.predictions.migration import ensure_schema
    from tabserve.predictions.store import make_engine

    settings = load_settings(args.config)
    engine = make_engine(settings.monitoring.url)
    ensure_schema(engine)
    stored = read_state(engine)
    policy = stored[1]["policy"] if stored else settings.policy.model_dump()
    names = (args.a or policy["champion"], args.b or policy["candidate"])
    if None in names:
        raise TabserveError("name the variants to compare: --a NAME --b NAME")
    classifier = get_model(settings.served_tag).metadata.get("classes") is not None
    since = args.since or datetime.now(UTC) - timedelta(hours=24)
    comparison = compare_variants(
        engine,
        names,
        classifier,
        since,
        args.until,
        min_labels=settings.monitoring.min_labels,
        alpha=args.alpha,
    )
    print(format_table(comparison))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    json_path, html_path = write_report(comparison, Path(settings.monitoring.reports_dir), stamp)
    print(f"reports: {html_path} {json_path}")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.command == "report":
        return report(args)
    client = AdminClient(args.url, actor=args.actor)
    if args.command == "status":
        print(show_state(client.state()))
    elif args.command == "events":
        for event in client.events(args.limit):
            when, version, action = event["ts"], event["version"], event["action"]
            print(f"{when}  v{version:<4} {action:<10} {event['actor']:<24} {event['reason']}")
    else:
        fields: dict[str, Any] = {}
        if args.command == "switch" and args.to:
            fields["to"] = args.to
        if args.command == "weights":
            fields["weights"] = dict(args.weights)
        if args.command == "canary":
            fields["percent"] = args.percent
        print(show_state(client.change(args.command, args.reason, **fields)))
    return 0
