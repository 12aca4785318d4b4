"""`tabserve serve`: train the configured model if the store has none, then `bentoml serve` it."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from tabserve.model_store import model_exists
from tabserve.settings import CONFIG_PATH_ENV, config_file, load_settings

SERVICE = "service:TabularModel"
PROJECT_DIR = Path(__file__).resolve().parents[2]  # where service.py and configuration.yaml live


def add_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "serve",
        parents=[common],
        help="serve the configured model (trained first if the store has none)",
        description=__doc__ + "\nOptions after -- go to `bentoml serve` (e.g. -- --development).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=3000, help="port (default: 3000)")
    parser.add_argument("bentoml_args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    if not model_exists(settings.served_tag):
        from tabserve.training.report import report_lines
        from tabserve.training.trainer import train

        print("\n".join(report_lines(train(settings))), flush=True)
    # The service runs from the project folder: it must read this same file, named absolutely.
    os.environ[CONFIG_PATH_ENV] = str(config_file(args.config).resolve())
    extra = [a for a in args.bentoml_args if a != "--"]
    command = ["-m", "bentoml", "serve", SERVICE, "--host", args.host, "--port", str(args.port), *extra]
    os.chdir(PROJECT_DIR)
    os.execv(sys.executable, [sys.executable, *command])  # the server replaces this process: signals reach it
