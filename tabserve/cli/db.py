"""`tabserve db`: the prediction-log database's schema, made and changed by migrations.

`upgrade` applies the migrations this version ships (a database made before migrations is
adopted: its tables are kept, the missing ones added); `current` shows the revision. The
service and the jobs create an empty database themselves and refuse one behind: run `upgrade`
once per release, before the new version starts.
"""

from __future__ import annotations

import argparse
from typing import Any

from tabserve.settings import load_settings


def add_parser(commands_of_tabserve: Any, common: argparse.ArgumentParser) -> None:
    parser = commands_of_tabserve.add_parser(
        "db",
        parents=[common],
        help="the prediction-log database's schema: upgrade, current",
        description=__doc__,
    )
    parser.set_defaults(run=run)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "upgrade", parents=[common], help="apply the migrations this version ships (to the newest revision)"
    )
    commands.add_parser("current", parents=[common], help="the database's schema revision and the newest one")


def _describe(revision: str | None) -> str:
    return revision or "none"


def run(args: argparse.Namespace) -> int:
    from sqlalchemy.engine import make_url

    from tabserve.predictions.migration import schema_status, upgrade
    from tabserve.predictions.store import make_engine, prepare_local_database

    settings = load_settings(args.config).monitoring
    where = make_url(settings.url).render_as_string()  # a password shown as ***
    prepare_local_database(settings)
    engine = make_engine(settings.url)
    try:
        if args.command == "current":
            status = schema_status(engine)
            state = "up to date" if status.at_head else status.problem()
            print(f"{where}: revision {_describe(status.current)} (newest {status.head}): {state}")
            return 0
        before, after = upgrade(engine)
        if before.current == after.current and before.tables == after.tables:
            print(f"{where}: already at revision {_describe(after.current)}")
        else:
            print(f"{where}: revision {_describe(before.current)} -> {_describe(after.current)}")
        return 0
    finally:
        engine.dispose()
