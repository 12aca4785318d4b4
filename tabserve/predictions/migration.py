"""The database's schema revision: read it, upgrade it (`tabserve db upgrade`), or refuse to run on it.

Alembic migrations (`migrations/`) own every table; Alembic is configured here, in code, so
nothing needs an alembic.ini. What a process that meets the database does (`ensure_schema`):
- at the newest revision: nothing (one small query);
- empty (none of our tables, no revision): it is created, whatever the dialect. A new SQLite
  file (`make serve`) or a new PostgreSQL database holds nothing to protect, and every worker
  and replica may find it at once: an upgrade takes a lock (an advisory lock on PostgreSQL, a
  lock file beside an SQLite file) and looks again once it has it;
- anything else (an older revision, tables from before migrations, a revision this version
  does not know): `SchemaError`, one line that names the command to run. A migration of a
  shared database is the operator's decision, taken once, not by whichever replica starts first.

`bentoml serve` restarts a worker that fails to start, for ever, a traceback each time; so the
server's own process looks first (`stop_if_behind`, at the service module's import, before any
worker exists) and ends with that one line and exit code 2.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shlex
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from tabserve.errors import TabserveError
from tabserve.predictions.store import make_engine
from tabserve.predictions.tables import metadata
from tabserve.settings import CONFIG_PATH_ENV, DEFAULT_CONFIG_PATH, MonitoringSettings

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
DATABASE_URL_ENV = "TABSERVE_DATABASE_URL"
# Any fixed 64-bit number, the same in every process: the key of the PostgreSQL advisory lock.
ADVISORY_LOCK_KEY = 0x7461627365727665  # "tabserve"
LOCK_SUFFIX = ".migration-lock"
EXIT_ERROR = 2  # as every command's expected error (tabserve/cli/errors.py)


class SchemaError(TabserveError):
    """The database's schema is not the one this version needs (the message says what to run)."""


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "no migrations shipped"
    return head


@dataclass(frozen=True)
class SchemaStatus:
    current: str | None  # the stored revision; None: none stored
    head: str
    tables: frozenset[str]  # ours that exist
    known: bool  # the stored revision is one of our migrations

    @property
    def at_head(self) -> bool:
        return self.current == self.head

    @property
    def empty(self) -> bool:
        return self.current is None and not self.tables

    def problem(self) -> str:
        """What is wrong, in words (empty when at head)."""
        if self.at_head:
            return ""
        if self.empty:
            return "the prediction-log database has no tables yet"
        if self.current is None:
            return "the prediction-log database has tables from before migrations (no schema revision)"
        if not self.known:
            return (
                f"the prediction-log database is at schema revision {self.current}, which this version "
                "does not know (a newer tabserve migrated it)"
            )
        return (
            f"the prediction-log database is at schema revision {self.current}; "
            f"this version needs {self.head}"
        )


def read_status(connection: Connection) -> SchemaStatus:
    current = MigrationContext.configure(connection).get_current_revision()
    tables = frozenset(inspect(connection).get_table_names()) & frozenset(metadata.tables)
    script = ScriptDirectory.from_config(alembic_config())
    try:
        known = current is None or script.get_revision(current) is not None
    except CommandError:
        known = False
    return SchemaStatus(current, head_revision(), tables, known)


def schema_status(engine: Engine) -> SchemaStatus:
    with engine.connect() as connection:
        return read_status(connection)


@contextlib.contextmanager
def _sqlite_file_lock(engine: Engine) -> Iterator[None]:
    database = engine.url.database
    if not database or database == ":memory:":  # one process only
        yield
        return
    with Path(database + LOCK_SUFFIX).open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes
        yield


@contextlib.contextmanager
def _migrating(engine: Engine) -> Iterator[Connection]:
    """A transaction no other process migrates in at the same time."""
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
            yield connection  # the lock goes with the transaction
        return
    with _sqlite_file_lock(engine), engine.begin() as connection:
        yield connection


def upgrade(engine: Engine, only_if_empty: bool = False) -> tuple[SchemaStatus, SchemaStatus]:
    """Migrate to the newest revision (all of it in one transaction where the database allows).

    Returns the status before and after. `only_if_empty`: do nothing unless the database is
    empty once the lock is held (another process may have created it meanwhile).
    """
    with _migrating(engine) as connection:
        before = read_status(connection)
        if not before.known:
            raise SchemaError(before.problem())
        if not before.at_head and (before.empty or not only_if_empty):
            command.upgrade(alembic_config(connection), "head")
        after = read_status(connection)
    return before, after


def upgrade_command(config_path: str | Path | None = None) -> str:
    """Exactly what the operator runs: the configuration this process read, and its URL override
    (a password in it shown as ***)."""
    path = Path(config_path or os.environ.get(CONFIG_PATH_ENV) or DEFAULT_CONFIG_PATH).resolve()
    url = os.environ.get(DATABASE_URL_ENV)
    override = f"{DATABASE_URL_ENV}={shlex.quote(make_url(url).render_as_string())} " if url else ""
    return f"{override}tabserve db upgrade --config {shlex.quote(str(path))}"


def ensure_schema(engine: Engine, config_path: str | Path | None = None) -> None:
    """Go on at the newest revision; create an empty database; refuse anything else (SchemaError)."""
    if schema_status(engine).at_head:
        return
    # Looked at again under the lock: another process may be half-way through creating it.
    before, after = upgrade(engine, only_if_empty=True)
    if after.at_head:
        if not before.at_head:
            logger.info("prediction-log database created at schema revision %s", after.current)
        return
    raise SchemaError(f"{after.problem()}: run `{upgrade_command(config_path)}`")


def stop_if_behind(settings: MonitoringSettings) -> None:
    """Before a server starts its workers: end the process (one line on stderr, exit 2) if the
    database needs `tabserve db upgrade`. Read only: an empty or missing database, or one that
    cannot be reached, is left to the workers (they create it, or serve and retry)."""
    if settings.database_url is None and not Path(settings.sqlite_path).is_file():
        return
    engine = make_engine(settings.url)
    try:
        status = schema_status(engine)
    except SQLAlchemyError:
        return
    finally:
        engine.dispose()
    if status.at_head or status.empty:
        return
    print(f"error: {status.problem()}: run `{upgrade_command()}`", file=sys.stderr, flush=True)
    raise SystemExit(EXIT_ERROR)
