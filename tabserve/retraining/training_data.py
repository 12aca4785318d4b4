"""Training data from the world: the served model's labelled rows in the prediction log.

Features as they were logged (cleaned by the service's rules when they were scored), joined with
the labels `/feedback` set, in a window (the last N labelled rows, or a time range). Rows are
split by time: the most recent ones are held out to evaluate champion and challenger and are
never trained on, so the comparison is on the world as it is now.

When the relation between features and label has changed, old rows must not outvote new ones:
the champion's original training data (`retrain.include_original`) is added only up to
`retrain.original_share` of the training rows, never more (`mix_rows`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, func, select

from tabserve.cleaning import label_text
from tabserve.datasets import clean_frame, load_dataset, split_features
from tabserve.errors import DataError, TabserveError
from tabserve.model_store import StoredModel
from tabserve.predictions.tables import SHADOW_SUFFIX, predictions
from tabserve.schema import coerce_frame
from tabserve.settings import DataSettings

TS_COLUMN, LABEL_COLUMN = "_ts", "_label"
FETCH_ROWS = 10_000  # rows per round trip: the features' JSON is most of what is read


class NotEnoughLabelsError(TabserveError):
    """Too few labelled rows in the window to train and evaluate a challenger."""


@dataclass(frozen=True)
class Window:
    last: int | None = None
    since: datetime | None = None
    until: datetime | None = None

    def describe(self) -> str:
        if self.last is not None:
            return f"the last {self.last:,} labelled rows"
        since = self.since.isoformat() if self.since else "the start"
        until = self.until.isoformat() if self.until else "now"
        return f"labelled rows from {since} to {until}"

    def to_json(self) -> dict[str, Any]:
        return {
            "last": self.last,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
        }


def _labelled(model_name: str) -> list[Any]:
    """The model's labelled answers (any version of the name), shadow copies left out."""
    return [
        predictions.c.model.startswith(f"{model_name}:", autoescape=True),
        predictions.c.label_ts.is_not(None),
        ~predictions.c.request_id.endswith(SHADOW_SUFFIX, autoescape=True),
    ]


def read_labelled(engine: Engine, model_name: str, window: Window) -> pd.DataFrame:
    """The window's labelled rows, oldest first: feature columns, `_ts` (when scored) and `_label`."""
    conditions = _labelled(model_name)
    if window.since is not None:
        conditions.append(predictions.c.ts >= window.since)
    if window.until is not None:
        conditions.append(predictions.c.ts < window.until)
    ids = (
        select(predictions.c.id).where(*conditions).order_by(predictions.c.ts.desc(), predictions.c.id.desc())
    )
    if window.last is not None:
        ids = ids.limit(window.last)
    columns = (predictions.c.ts, predictions.c.features, predictions.c.label)
    with engine.connect() as connection:
        chosen = list(connection.execute(ids).scalars())
        rows = [
            row
            for start in range(0, len(chosen), FETCH_ROWS)
            for row in connection.execute(
                select(*columns).where(predictions.c.id.in_(chosen[start : start + FETCH_ROWS]))
            )
        ]
    if not rows:
        return pd.DataFrame({TS_COLUMN: pd.Series(dtype="datetime64[ns, UTC]"), LABEL_COLUMN: []})
    frame = pd.DataFrame.from_records([row.features for row in rows])
    frame[TS_COLUMN] = pd.to_datetime([row.ts for row in rows], utc=True)
    frame[LABEL_COLUMN] = [row.label for row in rows]
    return frame.sort_values(TS_COLUMN, kind="stable").reset_index(drop=True)


def newest_label(engine: Engine, model_name: str) -> datetime | None:
    with engine.connect() as connection:
        found = connection.execute(select(func.max(predictions.c.label_ts)).where(*_labelled(model_name)))
        return found.scalar_one_or_none()  # type: ignore[no-any-return]


def labels_since(engine: Engine, model_name: str, watermark: datetime) -> int:
    """Labelled rows whose label arrived after `watermark` (the last loop's newest label)."""
    with engine.connect() as connection:
        query = select(func.count()).where(*_labelled(model_name), predictions.c.label_ts > watermark)
        return int(connection.execute(query).scalar_one())


def as_targets(labels: pd.Series, classes: tuple[Any, ...] | None) -> pd.Series:
    """Pure: logged labels in the model's own terms (its classes' types, or floats); unusable -> NaN.

    `/feedback` stores a label as sent (1 or "1", true or "True"); the champion's classes decide.
    """
    if classes is None:
        return pd.to_numeric(labels, errors="coerce").astype(float)
    by_text = {label_text(value): value for value in classes}
    return labels.map(lambda value: by_text.get(label_text(value), np.nan) if value is not None else np.nan)


def unlearnable_columns(policy: Mapping[str, Any], features: list[str]) -> list[str]:
    """Pure: the model's features the log does not keep as they were sent (`monitoring.log_policy`).

    A hashed, bucketed, truncated or dropped value is not what the champion learnt from: a model
    trained on it would meet other values when it serves.
    """
    actions = {name: rule if isinstance(rule, str) else rule.action for name, rule in policy.items()}
    return [name for name in features if actions.get(name, "keep") != "keep"]


def split_by_time(frame: pd.DataFrame, share: float, min_rows: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Pure: (train, holdout), the holdout being the most recent rows (`frame` is oldest first)."""
    held = min(len(frame), max(min_rows, math.ceil(share * len(frame))))
    return frame.iloc[: len(frame) - held], frame.iloc[len(frame) - held :]


def mix_rows(recent: pd.DataFrame, original: pd.DataFrame, share: float, seed: int) -> pd.DataFrame:
    """Pure: the recent rows plus at most `share` of the result from the original data.

    With share s, original rows are at most s / (1 - s) times the recent ones: at the default 0.3,
    fewer than half as many, so where the two disagree the recent relation wins.
    """
    if original.empty or share <= 0:
        return recent
    allowed = math.floor(share / (1 - share) * len(recent))
    chosen = original if len(original) <= allowed else original.sample(allowed, random_state=seed)
    return pd.concat([chosen, recent], ignore_index=True)


def original_rows(champion: StoredModel, data: DataSettings) -> tuple[pd.DataFrame, str]:
    """The champion's training table, cleaned and coerced to its schema, with `_label`; and a note.

    Empty with the reason when the source cannot be read any more (moved, deleted, changed).
    """
    source = str(champion.metadata.get("training_data", {}).get("source", ""))
    target = str(champion.metadata.get("target", data.target))
    settings = data.model_copy(
        update={"source": source, "target": target, "missing_markers": list(champion.markers)}
    )
    try:
        features, labels = split_features(clean_frame(load_dataset(source), settings), settings)
        frame = coerce_frame(features, champion.schema)
    except (DataError, KeyError, ValueError, TypeError) as error:
        return pd.DataFrame(), f"original data {source!r} not used: {error}"
    frame[LABEL_COLUMN] = labels.to_numpy()
    return frame, f"original data {source!r}: {len(frame):,} rows"
