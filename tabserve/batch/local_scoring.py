"""Offline batch scoring: resolve inputs (file, directory or glob) to outputs and score each."""

from __future__ import annotations

import glob
from pathlib import Path

from tqdm import tqdm

from tabserve.batch.file_scoring import ScoringReport, score_file
from tabserve.errors import DataError
from tabserve.model_store import get_model
from tabserve.settings import Settings

SCORABLE = (".csv", ".parquet", ".pq")


def resolve(source: str, target: str) -> list[tuple[Path, Path]]:
    """One file -> one file; several (a directory or a glob) -> same names under the target directory."""
    path = Path(source)
    if path.is_file():
        inputs, single = [path], True
    elif path.is_dir():
        inputs, single = sorted(p for p in path.iterdir() if p.suffix.lower() in SCORABLE), False
    else:
        matches = glob.glob(source)  # noqa: PTH207 (Path.glob takes no absolute patterns)
        inputs, single = sorted(Path(p) for p in matches if Path(p).suffix.lower() in SCORABLE), False
    if not inputs:
        raise DataError(f"no CSV or Parquet input found at {source!r}")
    out = Path(target)
    if single and out.suffix.lower() in SCORABLE:
        return [(inputs[0], out)]
    if out.suffix.lower() in SCORABLE:
        raise DataError(f"several inputs need a directory as OUTPUT, got the file name {target!r}")
    return [(item, out / item.name) for item in inputs]


def score_local(
    settings: Settings,
    tag: str,
    source: str,
    target: str,
    strict: bool,
    chunk_rows: int,
    progress: bool,
    sep: str | None = None,
) -> ScoringReport:
    predictor = get_model(tag).load_predictor()
    total = ScoringReport()
    bar = tqdm(unit=" rows", disable=not progress)
    for item, destination in resolve(source, target):
        bar.set_description(item.name)
        report = score_file(
            item,
            destination,
            predictor,
            settings.data.missing_markers,
            strict=strict,
            chunk_rows=chunk_rows,
            on_chunk=lambda frame, _out, _report: bar.update(len(frame)),
            sep=sep,
        )
        total.merge(report)
    bar.close()
    return total
