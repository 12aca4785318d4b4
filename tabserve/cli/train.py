"""`tabserve train`: train a model on a table and save it, with its metrics, to the model store.

The target decides the task: text or True/False labels, and whole numbers with at most 20
distinct values, are classes; other numbers are a regression target (`training.task` in the
configuration overrides). Dates and times become numeric parts; ID-like, constant and empty
columns are left out, each with a warning saying why.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from tabserve.model_store import model_exists
from tabserve.settings import BUILTIN_DATASET_PREFIX, load_settings

EXAMPLES = """examples:
  tabserve train                                    the configured data (default: bundled breast-cancer)
  tabserve train --data churn.csv --target churned  saved as model "churn" (the file's name)
  tabserve train --data sales.parquet --target price --name prices --drop order_id
  tabserve train --data churn.csv --target churned --force   a version with other features or classes

Exit code 2 with one line saying why when the data or configuration cannot be used."""


def add_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "train",
        parents=[common],
        help="train a model on a CSV/Parquet table and save it to the model store",
        description=__doc__,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data", metavar="FILE", help="CSV or Parquet file (default: data.source)")
    parser.add_argument("--target", metavar="COLUMN", help="the column to predict (default: data.target)")
    parser.add_argument(
        "--sep", help="the CSV file's delimiter: , ; | or tab (default: data.sep, else detected)"
    )
    parser.add_argument(
        "--name",
        help="model name in the store (default: the data file's name; model.name for the configured data)",
    )
    parser.add_argument("--stage", help="stage label saved with the model (default: model.stage)")
    parser.add_argument(
        "--drop", action="append", default=[], metavar="COLUMN", help="leave this column out (repeatable)"
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="save even when the name's latest version has another task, classes or features",
    )
    parser.add_argument(
        "--if-missing",
        action="store_true",
        help="do nothing when the served model (serving.model, or model.name:latest) is already in the store",
    )
    parser.set_defaults(run=run)


def model_name_for(source: str) -> str | None:
    """A BentoML-safe model name from a data file's name ('Churn Data.csv' -> 'churn_data')."""
    if source.startswith(BUILTIN_DATASET_PREFIX):
        return None
    name = re.sub(r"[^a-z0-9_.-]+", "_", Path(source).stem.lower()).strip("_.-")
    return name or None


def run(args: argparse.Namespace) -> int:
    from tabserve.training.report import report_lines
    from tabserve.training.trainer import train

    settings = load_settings(args.config)
    overrides = {"source": args.data, "target": args.target, "sep": args.sep}
    data = settings.data.model_copy(update={k: v for k, v in overrides.items() if v})
    if args.drop:
        data = data.model_copy(update={"drop": [*data.drop, *args.drop]})
    name = args.name or (model_name_for(args.data) if args.data else None)
    model = settings.model.model_copy(
        update={k: v for k, v in {"name": name, "stage": args.stage}.items() if v}
    )
    if args.if_missing and model_exists(settings.served_tag):
        print(f"{settings.served_tag} is in the model store; not training")
        return 0
    result = train(settings.model_copy(update={"data": data, "model": model}), force=args.force)
    print("\n".join(report_lines(result)))
    return 0
