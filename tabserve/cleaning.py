"""The one rule set for cleaning a raw value, whatever path it arrives by.

Training, `/predict`, `/predict_batch`, file scoring, the stream worker and Spark all call these
functions, so a row sent as raw CSV text (strings everywhere, `"?"` for missing) scores exactly
like the same row read from the file, and is logged with the same cleaned features:

- strings are stripped of surrounding spaces;
- a string that is one of the missing markers becomes missing (None);
- numeric text becomes a number (`"3.5"` -> 3.5); other text in a numeric column is an error;
- categories are text: numbers become their text (`3.0` -> `"3"`), booleans `"True"`/`"False"`;
- dates and times stay ISO 8601 text (the Pipeline turns them into numeric parts), checked here.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pandas as pd

DEFAULT_MISSING_MARKERS: tuple[str, ...] = ("", "?", "NA", "N/A", "NaN", "nan", "null", "NULL", "None")
# ISO 8601 dates and timestamps (with an optional offset), and times of day.
DATE_PATTERN = re.compile(
    r"^\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?$"
)
TIME_PATTERN = re.compile(r"^\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?$")
BOOLEAN_TEXT = {"true": "True", "false": "False"}
MAX_SHOWN_CHARS = 60  # a bad value is quoted in an error, cut to this length


class CleaningError(ValueError):
    """A raw value that cannot be cleaned; `code` names the kind (the API's error type)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def shown(value: Any) -> str:
    """A value quoted in an error message, never longer than MAX_SHOWN_CHARS."""
    text = repr(value)
    return text if len(text) <= MAX_SHOWN_CHARS else text[: MAX_SHOWN_CHARS - 3] + "..."


def is_missing(value: Any) -> bool:
    return (
        value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA or value is pd.NaT
    )


def label_text(label: Any) -> str:
    """A class label's text, the same whatever type it arrives in: 1, 1.0 and "1" -> "1";
    True, "True" and "true" -> "true". Labels are compared by it (feedback, quality, A/B)."""
    if isinstance(label, bool | np.bool_):
        return str(bool(label)).lower()
    if isinstance(label, float | np.floating) and float(label).is_integer():
        return str(int(label))
    if isinstance(label, np.generic):
        label = label.item()
    text = str(label).strip()
    return text.lower() if text.lower() in BOOLEAN_TEXT else text


def clean_cell(value: Any, markers: Iterable[str]) -> Any:
    """Strip a string; a missing marker (or NaN/None) becomes None; other values are unchanged."""
    if isinstance(value, str):
        value = value.strip()
        return None if value in markers else value
    return None if is_missing(value) else value


def to_number(value: Any, markers: Iterable[str]) -> float | None:
    """A raw value -> a float or None; CleaningError for text that is not a finite number."""
    cleaned = clean_cell(value, markers)
    if cleaned is None:
        return None
    if isinstance(cleaned, bool | np.bool_):
        raise CleaningError("float_parsing", f"expected a number, got {shown(cleaned)}")
    if isinstance(cleaned, str):
        if "_" in cleaned:  # float() accepts "1_000"; a CSV reader would not
            raise CleaningError("float_parsing", f"not a number: {shown(cleaned)}")
        try:
            number = float(cleaned)
        except ValueError:
            raise CleaningError("float_parsing", f"not a number: {shown(cleaned)}") from None
    elif isinstance(cleaned, int | float | np.integer | np.floating):
        number = float(cleaned)
    else:
        raise CleaningError("float_parsing", f"expected a number, got {shown(cleaned)}")
    if not math.isfinite(number):
        raise CleaningError("finite_number", f"not a finite number: {shown(value)}")
    return number


def to_category(value: Any, markers: Iterable[str], boolean: bool = False) -> str | None:
    """A raw value -> category text or None. `boolean`: the column held True/False in training."""
    cleaned = clean_cell(value, markers)
    if cleaned is None:
        return None
    if isinstance(cleaned, bool | np.bool_):
        return str(bool(cleaned))
    if isinstance(cleaned, float | np.floating) and float(cleaned).is_integer():
        return str(int(cleaned))  # pandas turns [3, None] into [3.0, nan]: the category is still "3"
    if isinstance(cleaned, np.generic):
        cleaned = cleaned.item()
    text = str(cleaned)
    if boolean:
        return BOOLEAN_TEXT.get(text.lower(), text)
    return text


def datetime_format(text: str) -> str | None:
    """'date' (a date or timestamp) or 'time' (a time of day) for ISO 8601 text, else None."""
    if DATE_PATTERN.match(text):
        return "date"
    if TIME_PATTERN.match(text):
        return "time"
    return None


def to_datetime_text(value: Any, markers: Iterable[str], expected: str = "date") -> str | None:
    """A raw value -> ISO date/time text or None; CleaningError when it is not one."""
    cleaned = clean_cell(value, markers)
    if cleaned is None:
        return None
    # Typed dates from Parquet (datetime64) or Python: their ISO 8601 text.
    text = cleaned.isoformat() if isinstance(cleaned, dt.date | dt.time) else str(cleaned)
    if datetime_format(text) != expected:
        what = "a time of day (HH:MM[:SS])" if expected == "time" else "an ISO 8601 date (YYYY-MM-DD[ HH:MM])"
        raise CleaningError("datetime_parsing", f"expected {what}, got {shown(cleaned)}")
    return text


def clean_series(series: pd.Series, clean: Callable[[Any], Any]) -> tuple[pd.Series, pd.Series]:
    """Apply one cell cleaner to a column: (cleaned values, error message per cell or None)."""
    values: list[Any] = []
    errors: list[str | None] = []
    for raw in series.tolist():
        try:
            values.append(clean(raw))
            errors.append(None)
        except CleaningError as error:
            values.append(None)
            errors.append(error.message)
    return (
        pd.Series(values, index=series.index, dtype=object),
        pd.Series(errors, index=series.index, dtype=object),
    )
