"""The `outcomes` table: business events (click, conversion, revenue) recorded against a request id.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25

One row per (request_id, name): the unique constraint is what makes `/outcome` idempotent
(a retried event is not counted twice; the first value recorded is kept).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

ID_TYPE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite autoincrements INTEGER keys only


def upgrade() -> None:
    op.create_table(
        "outcomes",
        sa.Column("id", ID_TYPE, primary_key=True, autoincrement=True),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("actor", sa.String(200)),
        sa.UniqueConstraint("request_id", "name", name="uq_outcomes_request_id_name"),
    )
    op.create_index("ix_outcomes_ts", "outcomes", ["ts"])


def downgrade() -> None:
    op.drop_index("ix_outcomes_ts", table_name="outcomes")
    op.drop_table("outcomes")
