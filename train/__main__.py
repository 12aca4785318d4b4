"""Train a model on a table and save it, with its metrics, to the BentoML model store.

The target decides the task: text or True/False labels, and whole numbers with at most 20
distinct values, are classes; other numbers are a regression target (`training.task` in the
configuration overrides). Dates and times become numeric parts; ID-like, constant and empty
columns are left out, each with a warning saying why.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from pathlib import Path
from typing import Any

from tabserve.errors import TabserveError
from tabserve.model_store import model_exists
from tabserve.settings import BUILTIN_DATASET_PREFIX, load_settings
from tabserve.training import TrainingResult, train

EXAMPLES = """examples:
  python -m train                                    the configured data (default: bundled breast-cancer)
  python -m train --data churn.csv --target churned  saved as model "churn" (the file's name)
  python -m train --data sales.parquet --target price --name prices --drop order_id
  python -m train --data churn.csv --target churned --force   a version with other features or classes

Run it inside the project's environment: `.venv/bin/python -m train ...` (or `source .venv/bin/activate`).
Exit code 2 with one line saying why when the data or configuration cannot be used."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m train",
        description=__doc__,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", metavar="PATH", help="configuration file (default: configuration.yaml)")
    parser.add_argument("--data", metavar="FILE", help="CSV or Parquet file (default: data.source)")
    parser.add_argument("--target", metavar="COLUMN", help="the column to predict (default: data.target)")
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
    return parser.parse_args(argv)


def model_name_for(source: str) -> str | None:
    """A BentoML-safe model name from a data file's name ('Churn Data.csv' -> 'churn_data')."""
    if source.startswith(BUILTIN_DATASET_PREFIX):
        return None
    name = re.sub(r"[^a-z0-9_.-]+", "_", Path(source).stem.lower()).strip("_.-")
    return name or None


def _number(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def report(result: TrainingResult) -> list[str]:
    """What training prints: metrics beside the baseline and the previous version, per-class figures."""
    lines = [f"saved {result.tag} ({result.task}, {result.rows} rows)"]
    if result.schema is not None:
        kinds = ", ".join(f"{f.name} ({f.kind})" for f in result.schema.features)
        lines.append(f"features: {kinds}")
    if result.dropped:
        lines.append(f"not used (see the warnings above): {', '.join(result.dropped)}")
    if result.classes is not None:
        lines.append(f"classes: {', '.join(map(str, result.classes))}")
    previous_tag, previous = result.previous or ("", {})
    header = f"  {'metric':<10} {'model':>8} {'baseline':>9}"
    lines.append(header + (f"  previous ({previous_tag})" if previous else ""))
    for name, value in result.metrics.items():
        row = f"  {name:<10} {_number(value):>8} {_number(result.baseline.get(name, '-')):>9}"
        if name in previous:
            row += f"  {_number(previous[name])} ({value - previous[name]:+.4f})"
        lines.append(row)
    lines.append(
        "  baseline: always the majority class"
        if result.classes is not None
        else "  baseline: always the training mean"
    )
    if result.positive_class is not None:
        lines.append(f"  f1 is the F1 of class {result.positive_class!r} (the positive class)")
    elif result.classes is not None:
        lines.append("  f1 is the macro average over the classes")
    if result.per_class:
        lines.append(f"  {'class':<16} {'precision':>9} {'recall':>8} {'f1':>8} {'support':>8}")
        for label, figures in result.per_class.items():
            lines.append(
                f"  {label:<16} {figures['precision']:>9.4f} {figures['recall']:>8.4f} "
                f"{figures['f1']:>8.4f} {int(figures['support']):>8}"
            )
    return lines


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings(args.config)
        overrides = {"source": args.data, "target": args.target}
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
    except TabserveError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print("\n".join(report(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
