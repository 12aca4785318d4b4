"""What the A/B report reads besides the per-variant outcomes: shadow pairs, model tags, policy time.

- `paired_predictions`: a shadow copy is logged under the answered request's id plus
  `SHADOW_SUFFIX`, so one join on that id gives both variants' answers to the same request.
- `logged_tags`, `current_tag`: which model tags a variant's rows came from, and the newest (a
  variant name says nothing about the model: a restart with another tag under the same name
  keeps the policy version, so the report's default window keeps only the newest tag's rows).
- `policy_applied`: the version and time of the current deployment state, where the report's
  default window starts (rows of earlier policies answer other traffic and must not be mixed in).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pandas as pd
from sqlalchemy import Engine, func, inspect, select

from tabserve.deployment.store import STATE_ROW
from tabserve.predictions.tables import SHADOW_SUFFIX, deployment_state, predictions

PAIR_COLUMNS = ["request_id", "primary", "challenger", "primary_probabilities", "challenger_probabilities"]


def _in_window(table: Any, since: datetime, until: datetime | None) -> list[Any]:
    conditions = [table.c.ts >= since]
    if until is not None:
        conditions.append(table.c.ts < until)
    return conditions


def paired_predictions(
    engine: Engine,
    primary: str,
    challenger: str,
    since: datetime,
    until: datetime | None,
    *,
    sample: int,
    models: tuple[str | None, str | None] = (None, None),
) -> pd.DataFrame:
    """One row per request answered by `primary` and shadow-scored by `challenger` (at most `sample`).

    `models`: only rows of these tags (None: any), as `variant_outcomes`.
    """
    answered, shadow = predictions.alias("answered"), predictions.alias("shadow")
    tags = [
        side.c.model == tag for side, tag in zip((answered, shadow), models, strict=True) if tag is not None
    ]
    query = (
        select(
            answered.c.request_id,
            answered.c.prediction,
            shadow.c.prediction,
            answered.c.probabilities,
            shadow.c.probabilities,
        )
        .join(shadow, shadow.c.request_id == answered.c.request_id + SHADOW_SUFFIX)
        .where(answered.c.variant == primary, shadow.c.variant == challenger)
        .where(*_in_window(answered, since, until), *tags)
        .order_by(func.random())
        .limit(sample)
    )
    with engine.connect() as connection:
        rows = [tuple(row) for row in connection.execute(query)]
    return pd.DataFrame.from_records(rows, columns=PAIR_COLUMNS)


def logged_tags(engine: Engine, variant: str, since: datetime, until: datetime | None) -> dict[str, int]:
    """Model tag -> rows the variant logged with it in the window, most rows first."""
    count = func.count().label("rows")
    query = (
        select(predictions.c.model, count)
        .where(predictions.c.variant == variant, *_in_window(predictions, since, until))
        .group_by(predictions.c.model)
        .order_by(count.desc())
    )
    with engine.connect() as connection:
        return {str(row.model): int(row.rows) for row in connection.execute(query)}


def current_tag(engine: Engine, variant: str, until: datetime | None = None) -> str | None:
    """The model tag of the variant's newest logged row (before `until`): what the name serves."""
    query = select(predictions.c.model).where(predictions.c.variant == variant)
    if until is not None:
        query = query.where(predictions.c.ts < until)
    query = query.order_by(predictions.c.ts.desc()).limit(1)
    with engine.connect() as connection:
        found = connection.execute(query).scalar_one_or_none()
    return None if found is None else str(found)


def policy_applied(engine: Engine) -> tuple[int, datetime] | None:
    """(version, when it was stored) of the current deployment state; None: never stored."""
    if not inspect(engine).has_table(deployment_state.name):
        return None
    query = select(deployment_state.c.version, deployment_state.c.updated_at).where(
        deployment_state.c.id == STATE_ROW
    )
    with engine.connect() as connection:
        row = connection.execute(query).first()
    if row is None:
        return None
    applied = row.updated_at if row.updated_at.tzinfo is not None else row.updated_at.replace(tzinfo=UTC)
    return int(row.version), applied
