"""Helpers for the migration tests (SQLite in tests/unit, PostgreSQL in tests/integration)."""

from __future__ import annotations

import multiprocessing

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine

from tabserve.predictions.migration import alembic_config, ensure_schema
from tabserve.predictions.store import make_engine
from tabserve.predictions.tables import metadata

ROLLOUT_INDEX = "ix_predictions_variant_ts"
JOIN_TIMEOUT_S = 180  # each spawned process imports SQLAlchemy and Alembic: slow on a loaded machine


def schema_diff(engine: Engine) -> list[object]:
    """What Alembic's autogenerate would add or change to make the database match the tables."""
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))


def diff_names(engine: Engine) -> list[tuple[str, str]]:
    """(kind, name) of each difference; an added column is ("add_column", its name)."""
    return [
        (change[0], (change[3] if change[0] == "add_column" else change[1]).name)  # type: ignore[index]
        for change in schema_diff(engine)
    ]


# What each migration adds, as `diff_names` names it: a database at revision R lacks those after R.
ADDED_BY = {
    "0002": [("add_index", ROLLOUT_INDEX)],
    "0003": [("add_index", "ix_outcomes_ts"), ("add_table", "outcomes")],
    "0004": [
        ("add_index", "ix_predictions_label_ts"),
        ("add_index", "ix_retrain_runs_started_at"),
        ("add_table", "retrain_runs"),
    ],
    "0005": [("add_column", "api_key")],
}


def missing_at(revision: str) -> list[tuple[str, str]]:
    """Everything the migrations after `revision` add, sorted as `sorted(diff_names(...))` is."""
    return sorted(change for later, changes in ADDED_BY.items() if later > revision for change in changes)


def migrate_to(engine: Engine, revision: str) -> None:
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), revision)


def ensure_in_a_process(url: str) -> None:
    """A worker or replica starting: the target of a spawned process (this module imports little)."""
    engine = make_engine(url)
    ensure_schema(engine)
    engine.dispose()


def start_together(url: str, processes: int = 4) -> list[int | None]:
    """`processes` processes meeting the database at once; their exit codes."""
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=ensure_in_a_process, args=(url,)) for _ in range(processes)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(JOIN_TIMEOUT_S)
    return [worker.exitcode for worker in workers]
