"""How a CSV file is written: its delimiter and its decimal mark, detected from its first lines.

Much of Europe writes CSV with ';' between fields and ',' as the decimal mark (a spreadsheet's
export, UCI's bank marketing data). Read as ',' such a file is one column holding the whole
header, and training stopped with "target column ... not found". The delimiter is taken from
`csv.Sniffer` on the first lines, among `DELIMITERS`; the decimal comma only where it cannot be
read otherwise: ';' between fields, numbers written "1,5", none written "1.5".
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from tabserve.errors import DataError

DELIMITERS = ",;\t|"
SEP_NAMES = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}
SAMPLE_BYTES = 64 * 1024  # the first lines, enough for the sniffer, cheap on any file
DECIMAL_COMMA = re.compile(r"^[+-]?\d*,\d+$")
DECIMAL_POINT = re.compile(r"^[+-]?\d*\.\d+$")


@dataclass(frozen=True)
class CsvFormat:
    sep: str = ","
    decimal: str = "."


def parse_sep(text: str | None) -> str | None:
    """An explicit delimiter (`--sep`, the `sep` field): one of `DELIMITERS`, or its name."""
    if text is None or text == "":
        return None
    sep = SEP_NAMES.get(text.lower(), text)
    if len(sep) != 1 or sep not in DELIMITERS:
        raise DataError(f"sep: {text!r} is not a delimiter; use one of , ; | tab")
    return sep


def _sample_lines(sample: str) -> list[str]:
    lines = sample.splitlines()
    return lines[:-1] if len(lines) > 1 else lines  # the last one may be cut short


def detect_format(sample: str, sep: str | None = None) -> CsvFormat:
    """Pure: the format of a file that starts with `sample` (`sep`: the caller's, kept)."""
    text = "\n".join(_sample_lines(sample))
    if sep is None:
        try:
            sep = csv.Sniffer().sniff(text, delimiters=DELIMITERS).delimiter
        except csv.Error:  # one column, or nothing regular: the default
            sep = ","
    if sep != ";":
        return CsvFormat(sep)
    fields = [
        field.strip().strip('"') for row in csv.reader(text.splitlines()[1:], delimiter=sep) for field in row
    ]
    commas = any(DECIMAL_COMMA.match(field) for field in fields)
    points = any(DECIMAL_POINT.match(field) for field in fields)
    return CsvFormat(sep, "," if commas and not points else ".")


def sniff(path: Path, sep: str | None = None) -> CsvFormat:
    """The format of the file at `path` from its first `SAMPLE_BYTES`."""
    with path.open("r", encoding="utf-8", errors="replace", newline="") as handle:
        return detect_format(handle.read(SAMPLE_BYTES), sep)


def with_decimal_points(frame: pd.DataFrame) -> pd.DataFrame:
    """Pure: "1,5" -> "1.5" in text columns (those pandas could not read as numbers: a missing
    marker among them); the cleaning rules then read them as numbers like any other."""
    out = frame.copy()
    for name in out.columns:
        column = out[name]
        if column.dtype == object:
            text = column.astype(str)
            numeric = text.str.strip().str.match(DECIMAL_COMMA)
            out[name] = column.where(~numeric, text.str.replace(",", ".", regex=False))
    return out


def check_header(columns: pd.Index, name: str) -> None:
    """A header read as one column that holds a delimiter: the file was read with the wrong one."""
    if len(columns) != 1:
        return
    header = str(columns[0])
    held = [sep for sep in DELIMITERS if sep in header]
    if held:
        shown = "tab" if held[0] == "\t" else held[0]
        raise DataError(
            f"{name}: the header reads as one column {header[:80]!r} holding {held[0]!r}: "
            f"the fields are separated by {held[0]!r}? pass --sep '{shown}' (or the sep field of /score_file)"
        )
