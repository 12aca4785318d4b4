"""The dataset matrix (issue 11): small generated tables, one per real-world shape, with expectations.

Every case shares a learnable signal (`x` numeric, `color` categorical) so the models are not
degenerate, adds one target shape and zero or more column shapes, and states what training must
make of it: the task, the label's Python type and classes, each feature's kind, and the columns
dropped with the start of their reason. `raw` is the file exactly as written (every cell text,
headers with their stray spaces); `typed` is what each cell means (names stripped, numbers as
numbers, missing as None): a record of either must score the same.
"""

from __future__ import annotations

import csv
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROWS = 600
NUMERIC, CATEGORICAL, DATETIME = "numeric", "categorical", "datetime"
ID_LIKE, CONSTANT, ALL_MISSING = "id-like", "constant", "all missing"
MISSING_MARKERS = ("?", "", "NA", "N/A")  # as they appear in exported files
# The design's task rule: an integral target with more distinct values than this is a regression.
MAX_AUTO_CLASSES = 20
HIGH_CARDINALITY = 300
MAX_LISTED_VALUES = 20  # the API docs list at most this many values of a categorical


@dataclass
class Column:
    """One column as written (`raw` text), as meant (`typed`), and what training must make of it."""

    header: str  # as written in the file, stray spaces included
    raw: list[str]
    typed: list[Any]
    kind: str | None = None  # expected kind when kept
    dropped: str | None = None  # expected reason prefix when dropped
    parquet: list[Any] | None = None  # the Parquet file's values when they differ from `typed`

    @property
    def name(self) -> str:
        return self.header.strip()


@dataclass(frozen=True)
class Case:
    name: str
    target: str
    task: str  # "classification" | "regression"
    label_type: type  # Python type of the served prediction (float for regressors)
    classes: list[Any] | None
    columns: list[Column] = field(repr=False)

    @property
    def kinds(self) -> dict[str, str]:
        return {c.name: c.kind for c in self.columns if c.kind is not None and c.name != self.target}

    @property
    def dropped(self) -> dict[str, str]:
        return {c.name: c.dropped for c in self.columns if c.dropped is not None}

    @property
    def features(self) -> list[str]:
        return list(self.kinds)

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    @property
    def raw(self) -> pd.DataFrame:
        return pd.DataFrame({c.header: c.raw for c in self.columns}, dtype=object)

    @property
    def typed(self) -> pd.DataFrame:
        return pd.DataFrame({c.name: c.typed for c in self.columns})

    def labels(self) -> list[Any]:
        """The target's values in their own Python type."""
        return list(self.column(self.target).typed)

    def typed_records(self) -> list[dict[str, Any]]:
        """Feature records as a client with typed data sends them (None for missing)."""
        columns = [self.column(name) for name in self.features]
        return [{c.name: c.typed[i] for c in columns} for i in range(len(columns[0].typed))]

    def write_csv(self, folder: Path) -> Path:
        path = folder / f"{self.name}.csv"
        self.raw.to_csv(path, index=False)
        return path

    def write_parquet(self, folder: Path) -> Path:
        """The table as a typed Parquet file (real types: floats with NaN, bools, timestamps)."""
        frame = pd.DataFrame({c.name: c.parquet if c.parquet is not None else c.typed for c in self.columns})
        path = folder / f"{self.name}.parquet"
        frame.to_parquet(path, index=False)
        return path


def csv_rows(path: Path) -> list[dict[str, str]]:
    """The CSV's rows as a client reading the file has them: headers and values as written."""
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def raw_records(path: Path, features: list[str]) -> list[dict[str, str]]:
    """The CSV's feature cells, keyed by the feature's name: every value the text in the file."""
    rows = csv_rows(path)
    return [{name: row[header] for header in row if (name := header.strip()) in features} for row in rows]


def _rng(name: str) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(name.encode()))


def _numbers(values: np.ndarray, decimals: int = 3) -> tuple[list[str], list[float]]:
    rounded = [round(float(v), decimals) for v in values]
    return [repr(v) for v in rounded], rounded


# --- the signal every case shares ----------------------------------------------------------------


def _signal(rng: np.random.Generator, rows: int, messy_names: bool) -> tuple[list[Column], np.ndarray]:
    x = rng.normal(0, 1, rows)
    color = rng.choice(["red", "green", "blue"], rows)
    score = x + 1.5 * (color == "red") + rng.normal(0, 0.4, rows)
    x_raw, x_typed = _numbers(x)
    columns = [
        Column(" x " if messy_names else "x", x_raw, x_typed, kind=NUMERIC),
        Column("color " if messy_names else "color", color.tolist(), color.tolist(), kind=CATEGORICAL),
    ]
    return columns, score


# --- target shapes: score -> target column ----------------------------------------------------------

TargetShape = Callable[[np.ndarray, np.random.Generator], tuple[Column, str, type, list[Any] | None]]


def _above(score: np.ndarray) -> np.ndarray:
    return np.asarray(score > np.median(score))


def text_binary(score: np.ndarray, rng: np.random.Generator) -> tuple[Column, str, type, list[Any] | None]:
    labels = np.where(_above(score), "churned", "stayed").tolist()
    return Column("outcome", labels, labels), "classification", str, ["churned", "stayed"]


def int_binary(score: np.ndarray, rng: np.random.Generator) -> tuple[Column, str, type, list[Any] | None]:
    labels = _above(score).astype(int).tolist()
    return Column("churned", [str(v) for v in labels], labels), "classification", int, [0, 1]


def bool_binary(score: np.ndarray, rng: np.random.Generator) -> tuple[Column, str, type, list[Any] | None]:
    labels = [bool(v) for v in _above(score)]
    return Column("defaulted", [str(v) for v in labels], labels), "classification", bool, [False, True]


def float_coded_binary(
    score: np.ndarray, rng: np.random.Generator
) -> tuple[Column, str, type, list[Any] | None]:
    labels = _above(score).astype(int).tolist()
    column = Column("target", [f"{v:.1f}" for v in labels], labels, parquet=[float(v) for v in labels])
    return column, "classification", int, [0, 1]


def messy_text_binary(
    score: np.ndarray, rng: np.random.Generator
) -> tuple[Column, str, type, list[Any] | None]:
    labels = np.where(_above(score), "yes", "no").tolist()
    raw = [" yes " if v == "yes" else ("no " if i % 3 == 0 else "no") for i, v in enumerate(labels)]
    return Column("subscribed", raw, labels, parquet=raw), "classification", str, ["no", "yes"]


def int_multiclass(score: np.ndarray, rng: np.random.Generator) -> tuple[Column, str, type, list[Any] | None]:
    labels = (np.digitize(score, np.quantile(score, [1 / 3, 2 / 3])) + 1).tolist()
    return Column("grade", [str(v) for v in labels], labels), "classification", int, [1, 2, 3]


def int_many_values(
    score: np.ndarray, rng: np.random.Generator
) -> tuple[Column, str, type, list[Any] | None]:
    labels = np.round(score * 20 + 200).astype(int).tolist()
    assert len(set(labels)) > MAX_AUTO_CLASSES
    return Column("visits", [str(v) for v in labels], labels), "regression", float, None


def float_regression(
    score: np.ndarray, rng: np.random.Generator
) -> tuple[Column, str, type, list[Any] | None]:
    raw, typed = _numbers(score * 37.5 + 120 + rng.normal(0, 2, len(score)), 2)
    return Column("price", raw, typed), "regression", float, None


# --- column shapes ---------------------------------------------------------------------------------

ColumnShape = Callable[[np.random.Generator, int], list[Column]]


def date_column(rng: np.random.Generator, rows: int) -> list[Column]:
    days = pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 700, rows), unit="D")
    text = [d.strftime("%Y-%m-%d") for d in days]
    return [Column("signup_date", text, text, kind=DATETIME, parquet=list(days))]


def timestamp_column(rng: np.random.Generator, rows: int) -> list[Column]:
    stamps = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 90 * 86400, rows), unit="s")
    text = [s.strftime("%Y-%m-%d %H:%M:%S") for s in stamps]  # unique per row, yet not an ID
    return [Column("event_time", text, text, kind=DATETIME, parquet=list(stamps))]


def time_of_day_column(rng: np.random.Generator, rows: int) -> list[Column]:
    minutes = rng.integers(0, 24 * 60, rows)
    text = [f"{m // 60:02d}:{m % 60:02d}" for m in minutes]  # nearly unique per row, yet not an ID
    return [Column("pickup_time", text, text, kind=DATETIME)]


def id_columns(rng: np.random.Generator, rows: int) -> list[Column]:
    ids = [f"C{i:05d}" for i in rng.permutation(rows) + 1]
    row_ids = list(range(1, rows + 1))
    return [
        Column("customer_id", ids, ids, dropped=ID_LIKE),
        Column("row_id", [str(v) for v in row_ids], row_ids, dropped=ID_LIKE),
    ]


def constant_columns(rng: np.random.Generator, rows: int) -> list[Column]:
    return [
        Column("country", ["FR"] * rows, ["FR"] * rows, dropped=CONSTANT),
        Column("schema_version", ["3"] * rows, [3] * rows, dropped=CONSTANT),
    ]


def all_missing_column(rng: np.random.Generator, rows: int) -> list[Column]:
    raw = [MISSING_MARKERS[i % len(MISSING_MARKERS)] for i in range(rows)]
    return [Column("comment", raw, [None] * rows, dropped=ALL_MISSING)]


def high_cardinality_column(rng: np.random.Generator, rows: int) -> list[Column]:
    """300 distinct shops: each appears once, the rest of the rows follow a long (Zipf) tail."""
    names = [f"shop_{i:03d}" for i in range(HIGH_CARDINALITY)]
    weights = 1 / np.arange(1, HIGH_CARDINALITY + 1)
    extra = rng.choice(HIGH_CARDINALITY, rows - HIGH_CARDINALITY, p=weights / weights.sum())
    values = [names[i] for i in rng.permutation(np.concatenate([np.arange(HIGH_CARDINALITY), extra]))]
    return [Column("shop", values, values, kind=CATEGORICAL)]


def missing_marker_columns(rng: np.random.Generator, rows: int) -> list[Column]:
    """Numeric and categorical columns with "?", "", "NA", "N/A" in about one row in eight."""
    balance_raw, balance = _numbers(rng.gamma(2.0, 500.0, rows), 2)
    plan = rng.choice(["basic", "plus", "pro"], rows).tolist()
    balance_typed: list[Any] = list(balance)
    plan_raw, plan_typed = list(plan), list[Any]()
    plan_typed.extend(plan)
    for i in rng.choice(rows, rows // 8, replace=False):
        balance_raw[i], balance_typed[i] = MISSING_MARKERS[i % 4], None
    for i in rng.choice(rows, rows // 8, replace=False):
        plan_raw[i], plan_typed[i] = MISSING_MARKERS[i % 4], None
    return [
        Column("balance", balance_raw, balance_typed, kind=NUMERIC),
        Column("plan", plan_raw, plan_typed, kind=CATEGORICAL),
    ]


def numbers_as_text_column(rng: np.random.Generator, rows: int) -> list[Column]:
    """Numbers with stray spaces (as exported by spreadsheets); a text column in Parquet too."""
    raw, typed = _numbers(rng.uniform(1, 500, rows), 2)
    padded = [f" {v} " if i % 2 else v for i, v in enumerate(raw)]
    return [Column("amount", padded, typed, kind=NUMERIC, parquet=padded)]


def make_case(
    name: str,
    target: TargetShape,
    *shapes: ColumnShape,
    messy_names: bool = False,
    rows: int = ROWS,
) -> Case:
    rng = _rng(name)
    columns, score = _signal(rng, rows, messy_names)
    target_column, task, label_type, classes = target(score, rng)
    for shape in shapes:
        columns += shape(rng, rows)
    return Case(name, target_column.name, task, label_type, classes, [*columns, target_column])


# One case per shape, each on its own: training checks run on every one of these.
SINGLE_SHAPES: dict[str, Case] = {
    case.name: case
    for case in [
        make_case("target_text", text_binary),
        make_case("target_int01", int_binary),
        make_case("target_bool", bool_binary),
        make_case("target_float_coded", float_coded_binary),
        make_case("target_messy_text", messy_text_binary),
        make_case("target_int_multiclass", int_multiclass),
        make_case("target_int_many_values", int_many_values),
        make_case("target_float", float_regression),
        make_case("date", text_binary, date_column),
        make_case("timestamp", text_binary, timestamp_column),
        make_case("time_of_day", text_binary, time_of_day_column),
        make_case("ids", text_binary, id_columns),
        make_case("constant", text_binary, constant_columns),
        make_case("all_missing", text_binary, all_missing_column),
        make_case("high_cardinality", text_binary, high_cardinality_column),
        make_case("messy_names", text_binary, messy_names=True),
        make_case("missing_markers", text_binary, missing_marker_columns),
        make_case("numbers_as_text", text_binary, numbers_as_text_column),
    ]
}

# Every shape again, combined as real tables combine them: each of these is served over HTTP
# (one server per case keeps the integration module within minutes).
SERVED: dict[str, Case] = {
    case.name: case
    for case in [
        make_case("served_text", text_binary, missing_marker_columns, messy_names=True),
        make_case("served_int01", int_binary, date_column),
        make_case("served_bool", bool_binary, timestamp_column),
        make_case("served_float_coded", float_coded_binary, time_of_day_column),
        make_case("served_messy_text", messy_text_binary, numbers_as_text_column),
        make_case("served_multiclass", int_multiclass, id_columns),
        make_case("served_int_regression", int_many_values, constant_columns, all_missing_column),
        make_case("served_regression", float_regression, high_cardinality_column),
    ]
}

# Also trained from Parquet (real column types: bools, floats with NaN, timestamps).
PARQUET = ("target_int01", "target_bool", "target_float_coded", "date", "timestamp", "missing_markers")
