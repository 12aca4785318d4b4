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
from tabserve.text_columns import aligned

DEFAULT_HOURS = 24
CHANGES = ("switch", "weights", "canary", "rollout", "promote", "rollback", "reset")


def weight_pair(text: str) -> tuple[str, float]:
    name, _, weight = text.partition("=")
    try:
        return name, float(weight)
    except ValueError:
        raise argparse.ArgumentTypeError(f"weights look like champion=70; got {text!r}") from None


def utc_time(text: str) -> datetime:
    """An ISO time; without an offset it is UTC (the log's times are)."""
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


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
    candidate = commands.add_parser(
        "candidate",
        parents=[common],
        help="add a model of the store as the candidate, shadow it, then roll it out (no restart)",
        description="Every worker and replica loads the model; the rollout starts with a shadow "
        "stage, then the canary steps; guards promote or roll back on their own.",
    )
    candidate.add_argument("model", metavar="TAG", help="NAME:VERSION in the model store")
    candidate.add_argument("--reason", required=True, help="why (kept in the audit trail)")
    candidate.add_argument("--name", help="variant name (default: the model's version)")
    candidate.add_argument("--evaluation", help="id of the evaluation that accepted the model")
    candidate.add_argument(
        "--no-rollout",
        dest="rollout",
        action="store_false",
        help="only add it as the candidate, without traffic (start with `rollout` later)",
    )
    report = commands.add_parser(
        "report", parents=[common], help="A/B comparison: CLI table, HTML and JSON in reports_dir"
    )
    report.add_argument("--a", help="variant A (default: the champion)")
    report.add_argument("--b", help="variant B (default: the candidate)")
    report.add_argument(
        "--since",
        type=utc_time,
        help="window start, ISO time (default: when the current policy version was applied)",
    )
    report.add_argument("--until", type=utc_time, help="window end, ISO time")
    report.add_argument("--alpha", type=float, default=0.05, help="significance level")
    report.add_argument(
        "--tolerance",
        type=float,
        help="regressors: largest difference counted as agreement (default: 1%% of A's standard deviation)",
    )


ROLES = ("champion", "candidate", "active")
GUARD_RESULTS = {True: "passed", False: "FIRED"}


def variant_rows(payload: dict[str, Any]) -> list[str]:
    """One line per variant: its name, its model, its roles in the policy, its share of traffic;
    with variants added at runtime, the evaluation that accepted each (`-`: none, or configured)."""
    policy, added = payload["state"]["policy"], payload["state"].get("added") or {}
    rows = [("VARIANT", "MODEL", "ROLE", "TRAFFIC", *(("EVALUATION",) if added else ()))]
    for name, tag in payload["variants"].items():
        roles = [role for role in ROLES if policy.get(role) == name]
        if payload["state"].get("previous") == name:
            roles.append("rollback target")
        row = (name, tag, ", ".join(roles) or "-", f"{payload['traffic'].get(name, 0.0):.1%}")
        rows.append((*row, (added.get(name) or {}).get("evaluation") or "-") if added else row)
    return aligned(rows, right=frozenset({3}))


def step_line(rollout: dict[str, Any], progress: dict[str, Any] | None) -> str:
    """Where the rollout is; while it runs, the step's requests and seconds against what it needs."""
    steps = len(rollout["steps"])
    if rollout.get("stage") == "shadow":  # before step 1: copies scored, no answers
        step, scored = f"shadow stage before step 1/{steps} (0% of traffic)", "shadow-scored requests"
    else:
        percent = rollout["steps"][rollout["step"]]
        step, scored = f"step {rollout['step'] + 1}/{steps} ({percent:g}% of traffic)", "candidate requests"
    if rollout["state"] != "running":
        return f"last rollout: {rollout['state'].replace('_', ' ')} at {step}: {rollout['reason']}"
    if progress is None:
        return f"rollout: running, {step}: not judged yet"
    return (
        f"rollout: running, {step}: {progress['requests']}/{progress['min_requests']} {scored}, "
        f"{progress['seconds']:.0f}/{progress['min_seconds']:g} s"
    )


def guard_rows(guards: dict[str, dict[str, Any]]) -> list[str]:
    rows = [("GUARD", "RESULT", "DETAIL")]
    for name, guard in guards.items():
        result = "not measured" if guard["value"] is None else GUARD_RESULTS[bool(guard["ok"])]
        rows.append((name, result, guard["detail"]))
    return ["  " + line for line in aligned(rows)]


def event_rows(events: list[dict[str, Any]]) -> list[str]:
    """The audit trail, newest first: when, which version it made, what, who, why."""
    rows = [("TIME", "VERSION", "ACTION", "ACTOR", "REASON")]
    rows += [(e["ts"], str(e["version"]), e["action"], e["actor"], e["reason"]) for e in events]
    return aligned(rows)


def show_state(payload: dict[str, Any]) -> str:
    """What `status` and every change print: the policy, each variant, and the rollout."""
    state, policy = payload["state"], payload["state"]["policy"]
    lines = [f"version {payload['version']}, strategy {policy['strategy']}", *variant_rows(payload)]
    rollout = state.get("rollout")
    if rollout:
        lines.append(step_line(rollout, payload.get("progress")))
        if rollout.get("guards"):
            lines.extend(guard_rows(rollout["guards"]))
    return "\n".join(lines)


def report_window(args: argparse.Namespace, applied: tuple[int, datetime] | None) -> tuple[datetime, str]:
    """--since if given; else when the current policy version was applied (else the last 24 h)."""
    if args.since is not None:
        return args.since, "--since"
    if applied is None:
        return datetime.now(UTC) - timedelta(hours=DEFAULT_HOURS), "last 24 h: no stored policy"
    version, when = applied
    return when, f"since policy version {version} was applied; --since to look further back"


def left_out_text(logged: dict[str, dict[str, int]], current: dict[str, str | None]) -> str:
    """Rows of a variant's earlier models in the window, which the default report leaves out."""
    left_out = [
        f"{name}'s {tag} ({rows} rows)"
        for name, tags in logged.items()
        for tag, rows in tags.items()
        if current.get(name) not in (None, tag)
    ]
    return f"; left out, earlier models: {', '.join(left_out)}" if left_out else ""


def report(args: argparse.Namespace) -> int:
    from tabserve.deployment.ab_report import compare_variants, format_table, write_report
    from tabserve.deployment.report_data import current_tag, logged_tags, policy_applied
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
    since, window = report_window(args, policy_applied(engine))
    current = (current_tag(engine, names[0], args.until), current_tag(engine, names[1], args.until))
    models: tuple[str | None, str | None] = (None, None)
    if args.since is None:  # only what each name serves now (a restart may have changed the model)
        models = current
        logged = {name: logged_tags(engine, name, since, args.until) for name in names}
        window += left_out_text(logged, dict(zip(names, models, strict=True)))
    # The model A's rows came from says whether it classifies (the configuration may name none).
    added = {
        name: variant["model"] for name, variant in (stored[1] if stored else {}).get("added", {}).items()
    }
    tag = current[0] or {**settings.variants, **added}.get(names[0], settings.served_tag)
    classifier = get_model(tag).metadata.get("classes") is not None
    comparison = compare_variants(
        engine,
        names,
        classifier,
        since,
        args.until,
        min_labels=settings.monitoring.min_labels,
        alpha=args.alpha,
        window=window,
        tolerance=args.tolerance,
        models=models,
        outcome_kinds=settings.deployment.outcomes,
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
        print("\n".join(event_rows(client.events(args.limit))))
    elif args.command == "candidate":
        added = client.add_candidate(
            args.model, args.reason, name=args.name, evaluation=args.evaluation, rollout=args.rollout
        )
        print(show_state(added))
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
