"""Alembic's environment for the prediction-log database: our engine, our tables, no alembic.ini.

`tabserve db upgrade` (tabserve/predictions/migrate.py) hands Alembic an open connection in
`config.attributes["connection"]`; run any other way, the database is the one configuration.yaml
(or $TABSERVE_CONFIG, and $TABSERVE_DATABASE_URL) names. SQLite cannot alter most of a table in
place, so changes to it are rendered as "batch" operations (copy, alter, swap).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from tabserve.predictions.store import make_engine
from tabserve.predictions.tables import metadata
from tabserve.settings import load_settings


def run_on(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run() -> None:
    if context.is_offline_mode():
        raise RuntimeError("the migrations run against a database (online), not as an SQL script")
    given = context.config.attributes.get("connection")
    if given is not None:
        run_on(given)
        return
    engine = make_engine(load_settings().monitoring.url)
    try:
        with engine.begin() as connection:
            run_on(connection)
    finally:
        engine.dispose()


run()
