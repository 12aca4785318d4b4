"""`tabserve`: train, serve, score, stream, monitor, retrain and deploy tabular models.

Every command takes --config (default: configuration.yaml, or $TABSERVE_CONFIG). An error it
expects ends with one line on stderr and exit code 2; `monitor` exits 1 on an alarm.
"""

from __future__ import annotations

from tabserve.bento_env import use_bento_model_store

use_bento_model_store()  # before anything imports bentoml: the store's location is read at import

# ruff: noqa: E402

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from tabserve.cli import db, deploy, monitor, retrain, score, serve, train
from tabserve.cli.errors import run_reporting_errors
from tabserve.settings import CONFIG_PATH_ENV

PROGRAM = "tabserve"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
COMMANDS = (train, serve, score, monitor, retrain, deploy, db)
EPILOG = """examples:
  tabserve train --data churn.csv --target churned    train and save model "churn"
  tabserve serve                                       train the default model if missing, serve it on :3000
  tabserve score input.csv scored.parquet              score a file with the served model
  tabserve monitor                                     drift and quality of what is served (exit 1: alarm)
  tabserve retrain --wait                              retrain on labelled traffic; roll out only on evidence
  tabserve deploy status                               the deployment policy and each variant's traffic
  tabserve db upgrade                                  migrate the prediction-log database to this version

`tabserve COMMAND --help` describes each command."""


def build_parser() -> argparse.ArgumentParser:
    config_help = "configuration file (default: configuration.yaml)"
    common = argparse.ArgumentParser(add_help=False)
    # before or after the command; SUPPRESS keeps a command from resetting the value given before it
    common.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS, help=config_help)
    parser = argparse.ArgumentParser(
        prog=PROGRAM,
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", metavar="PATH", help=config_help)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(commands, common)
    return parser


def configure_logging() -> None:
    """One format for every command: our INFO lines, only warnings from the libraries."""
    logging.basicConfig(level=logging.WARNING, format=LOG_FORMAT)
    logging.getLogger("tabserve").setLevel(logging.INFO)


@contextlib.contextmanager
def configuration_named(path: str | None) -> Iterator[None]:
    """--config as $TABSERVE_CONFIG while the command runs: what code that loads the settings
    itself reads, and what a message naming a command to run says (restored afterwards)."""
    before = os.environ.get(CONFIG_PATH_ENV)
    if path:
        os.environ[CONFIG_PATH_ENV] = str(Path(path).resolve())
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(CONFIG_PATH_ENV, None)
        else:
            os.environ[CONFIG_PATH_ENV] = before


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging()
    run: Callable[[argparse.Namespace], int] = args.run
    with configuration_named(args.config):
        return run_reporting_errors(lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
