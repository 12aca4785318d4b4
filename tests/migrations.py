"""Helpers for the migration tests (SQLite in tests/unit, PostgreSQL in tests/integration)."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine

from tabserve.predictions.migration import alembic_config
from tabserve.predictions.tables import metadata

ROLLOUT_INDEX = "ix_predictions_variant_ts"


def schema_diff(engine: Engine) -> list[object]:
    """What Alembic's autogenerate would add or change to make the database match the tables."""
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))


def diff_names(engine: Engine) -> list[tuple[str, str]]:
    return [(change[0], change[1].name) for change in schema_diff(engine)]  # type: ignore[index]


def migrate_to(engine: Engine, revision: str) -> None:
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), revision)
