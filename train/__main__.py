"""Entry point: parse arguments, load settings, call `tabserve.training.train`, print the metrics."""

from __future__ import annotations

import argparse
import logging
import sys

from tabserve.errors import TabserveError
from tabserve.model_store import model_exists
from tabserve.settings import load_settings
from tabserve.training import train


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m train", description=__doc__)
    parser.add_argument("--config", help="configuration file (default: configuration.yaml)")
    parser.add_argument("--data", help="CSV or Parquet file (default: data.source in the config)")
    parser.add_argument("--target", help="target column (default: data.target in the config)")
    parser.add_argument("--name", help="model name in the store (default: model.name)")
    parser.add_argument("--stage", help="stage label saved with the model (default: model.stage)")
    parser.add_argument(
        "--if-missing",
        action="store_true",
        help="do nothing when the served tag (serving.model) is already in the store",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings(args.config)
        overrides = {"source": args.data, "target": args.target}
        data = settings.data.model_copy(update={k: v for k, v in overrides.items() if v})
        model = settings.model.model_copy(
            update={k: v for k, v in {"name": args.name, "stage": args.stage}.items() if v}
        )
        if args.if_missing and model_exists(settings.served_tag):
            print(f"{settings.served_tag} is in the model store; not training")
            return 0
        result = train(settings.model_copy(update={"data": data, "model": model}))
    except TabserveError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"saved {result.tag} ({result.task}, {result.rows} rows)")
    for name, value in result.metrics.items():
        print(f"  {name:<10} {value:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
