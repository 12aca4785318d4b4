"""The tables as `create_all` made them before migrations: prediction log and deployment state.

Revision ID: 0001
Revises:
Create Date: 2026-11-20

A database made before migrations existed has some or all of these tables already (which ones
depended on the modules the creating process had imported): those are kept as they are, the
missing ones created. So `tabserve db upgrade` adopts such a database instead of failing on it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ID_TYPE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite autoincrements INTEGER keys only
LOG_ID_CHARS = 32


def _id() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column("id", ID_TYPE, primary_key=True, autoincrement=True)


def _ts() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column("ts", sa.DateTime(timezone=True), nullable=False)


TABLES: dict[str, tuple[list[sa.Column], list[str]]] = {  # type: ignore[type-arg]
    "predictions": (
        [
            _id(),
            sa.Column("log_id", sa.String(LOG_ID_CHARS), nullable=False, unique=True),
            sa.Column("request_id", sa.String(64), nullable=False),
            _ts(),
            sa.Column("model", sa.String(200), nullable=False),
            sa.Column("variant", sa.String(64), nullable=False),
            sa.Column("features", sa.JSON(), nullable=False),
            sa.Column("prediction", sa.JSON(), nullable=False),
            sa.Column("probabilities", sa.JSON()),
            sa.Column("label", sa.JSON()),
            sa.Column("label_ts", sa.DateTime(timezone=True)),
        ],
        ["request_id", "ts", "model"],
    ),
    "label_changes": (
        [
            _id(),
            _ts(),
            sa.Column("request_id", sa.String(64), nullable=False),
            sa.Column("log_id", sa.String(LOG_ID_CHARS), nullable=False),
            sa.Column("old_label", sa.JSON(none_as_null=True)),
            sa.Column("new_label", sa.JSON(), nullable=False),
            sa.Column("actor", sa.String(200)),
            sa.Column("reason", sa.String(500)),
        ],
        ["ts", "request_id"],
    ),
    "monitoring_runs": (
        [
            _id(),
            _ts(),
            sa.Column("model", sa.String(200), nullable=False),
            sa.Column("summary", sa.JSON(), nullable=False),
        ],
        ["ts", "model"],
    ),
    "deployment_state": (
        [
            sa.Column("id", sa.Integer(), primary_key=True),
            sa.Column("version", sa.Integer(), nullable=False),
            sa.Column("state", sa.JSON(), nullable=False),
            sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        ],
        [],
    ),
    "deployment_events": (
        [
            _id(),
            _ts(),
            sa.Column("version", sa.Integer(), nullable=False),
            sa.Column("actor", sa.String(200), nullable=False),
            sa.Column("action", sa.String(64), nullable=False),
            sa.Column("reason", sa.String(2000), nullable=False),
            sa.Column("state", sa.JSON(), nullable=False),
        ],
        ["ts"],
    ),
    "variant_stats": (
        [
            _id(),
            _ts(),
            sa.Column("variant", sa.String(64), nullable=False),
            sa.Column("model", sa.String(200), nullable=False),
            sa.Column("requests", sa.Integer(), nullable=False),
            sa.Column("errors", sa.Integer(), nullable=False),
            sa.Column("latency", sa.JSON(), nullable=False),
        ],
        ["ts"],
    ),
}


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    for name, (columns, indexed) in TABLES.items():
        if name in existing:
            continue
        op.create_table(name, *columns)
        for column in indexed:
            op.create_index(f"ix_{name}_{column}", name, [column])


def downgrade() -> None:
    for name in reversed(TABLES):
        op.drop_table(name)
