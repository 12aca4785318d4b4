"""The migrations own the tables: they build exactly the declared schema, and what meets an older
or missing schema on SQLite (the same checks on PostgreSQL: tests/integration/predictions)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Column, Engine, Integer, MetaData, String, Table, inspect, select, text

from tabserve.cli.main import main
from tabserve.predictions.bulk_insert import insert_rows
from tabserve.predictions.migration import (
    SchemaError,
    ensure_schema,
    head_revision,
    schema_status,
    upgrade,
)
from tabserve.predictions.store import make_engine, with_log_ids
from tabserve.predictions.tables import metadata, predictions
from tests.factories import prediction_rows
from tests.migrations import ROLLOUT_INDEX, diff_names, migrate_to, missing_at, schema_diff, start_together


@pytest.fixture
def database(tmp_path: Path) -> Engine:
    return make_engine(f"sqlite:///{tmp_path / 'log.db'}")


def config_for(tmp_path: Path, database: Path) -> Path:
    path = tmp_path / "configuration.yaml"
    path.write_text(f"monitoring:\n  sqlite_path: {database}\n")
    return path


def test_the_migrations_build_exactly_the_declared_tables(database: Engine) -> None:
    upgrade(database)
    assert schema_diff(database) == []
    assert schema_status(database).at_head


def test_the_comparison_sees_a_missing_index(database: Engine) -> None:
    """Before the second migration the rollout guards' index is missing (so the check can fail)."""
    for revision in ("0001", "0002", "0003", "0004"):
        migrate_to(database, revision)
        assert sorted(diff_names(database)) == missing_at(revision), revision
    migrate_to(database, "head")
    indexes = {index["name"]: index["column_names"] for index in inspect(database).get_indexes("predictions")}
    assert indexes[ROLLOUT_INDEX] == ["variant", "ts"]


def test_an_empty_database_is_created_once(database: Engine) -> None:
    assert schema_status(database).empty
    ensure_schema(database)
    ensure_schema(database)  # at the newest revision: nothing to do
    status = schema_status(database)
    assert status.current == head_revision() and status.tables == frozenset(metadata.tables)


def test_workers_starting_together_on_an_empty_database_create_it_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    assert start_together(url) == [0, 0, 0, 0]
    assert schema_diff(make_engine(url)) == []


def test_a_database_behind_is_refused_with_the_command_to_run(tmp_path: Path, database: Engine) -> None:
    migrate_to(database, "0001")
    config = config_for(tmp_path, Path(str(database.url.database)))
    with pytest.raises(SchemaError) as refused:
        ensure_schema(database, config)
    assert str(refused.value) == (
        f"the prediction-log database is at schema revision 0001; this version needs {head_revision()}: "
        f"run `tabserve db upgrade --config {config.resolve()}`"
    )
    assert "\n" not in str(refused.value)
    assert main(["db", "upgrade", "--config", str(config)]) == 0
    ensure_schema(database)
    assert schema_diff(database) == []


def test_the_upgrade_command_reports_what_it_did(
    tmp_path: Path, database: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    config = config_for(tmp_path, Path(str(database.url.database)))
    assert main(["db", "current", "--config", str(config)]) == 0
    assert capsys.readouterr().out.endswith(
        f"revision none (newest {head_revision()}): the prediction-log database has no tables yet\n"
    )
    assert main(["db", "upgrade", "--config", str(config)]) == 0
    assert capsys.readouterr().out.endswith(f"revision none -> {head_revision()}\n")
    assert main(["db", "upgrade", "--config", str(config)]) == 0
    assert capsys.readouterr().out.endswith(f"already at revision {head_revision()}\n")
    assert main(["db", "current", "--config", str(config)]) == 0
    assert capsys.readouterr().out.endswith(": up to date\n")


def legacy_prediction_log(engine: Engine) -> None:
    """What the monitoring job's `create_all` made before migrations: the log's tables only."""
    legacy = MetaData()
    for name in ("predictions", "label_changes", "monitoring_runs"):
        metadata.tables[name].to_metadata(legacy)
    later = (ROLLOUT_INDEX, "ix_predictions_label_ts")  # indexes added by later migrations
    for index in [index for index in legacy.tables["predictions"].indexes if index.name in later]:
        legacy.tables["predictions"].indexes.discard(index)
    legacy.create_all(engine)
    with engine.begin() as connection:  # added by a migration (0005): not there before migrations
        connection.execute(text("ALTER TABLE predictions DROP COLUMN api_key"))


def test_a_database_from_before_migrations_is_refused_then_adopted_with_its_rows(database: Engine) -> None:
    legacy_prediction_log(database)
    with database.begin() as connection:  # the columns a legacy log had (the log's insert writes later ones)
        connection.execute(predictions.insert(), with_log_ids(prediction_rows("old", 0, 5)))
    with pytest.raises(SchemaError, match=r"tables from before migrations .*tabserve db upgrade --config"):
        ensure_schema(database)
    before, after = upgrade(database)
    assert before.current is None and after.at_head
    assert schema_diff(database) == []
    with database.connect() as connection:
        assert len(connection.execute(select(predictions.c.log_id)).all()) == 5


def test_a_revision_this_version_does_not_know_is_refused(database: Engine) -> None:
    upgrade(database)
    with database.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(SchemaError, match="revision 9999, which this version does not know"):
        ensure_schema(database)
    with pytest.raises(SchemaError, match="9999"):
        upgrade(database)


def test_other_tables_in_the_database_are_not_ours_to_create_or_refuse(database: Engine) -> None:
    """A database shared with another application: its tables do not make ours 'from before migrations'."""
    other = Table("their_table", MetaData(), Column("id", Integer, primary_key=True), Column("x", String(5)))
    other.create(database)
    ensure_schema(database)
    assert schema_status(database).at_head


def test_prediction_rows_fit_the_migrated_table(database: Engine) -> None:
    ensure_schema(database)
    insert_rows(database, [{**row, "ts": datetime.now(UTC)} for row in prediction_rows("r", 0, 3)])
    with database.connect() as connection:
        assert connection.execute(text("select count(*) from predictions")).scalar_one() == 3
