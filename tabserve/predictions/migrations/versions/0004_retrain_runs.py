"""The `retrain_runs` table (one audit record per retraining loop) and an index on `label_ts`.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04

`in_flight` is unique and 1 while a loop runs (NULL after): a second loop's insert fails, in
every process and replica, so two loops never run at once. The loop reads labelled rows and
counts labels newer than the last loop's: `label_ts` is indexed for both.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

ID_TYPE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite autoincrements INTEGER keys only


def upgrade() -> None:
    op.create_table(
        "retrain_runs",
        sa.Column("id", ID_TYPE, primary_key=True, autoincrement=True),
        sa.Column("evaluation_id", sa.String(64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("in_flight", sa.Integer()),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("trigger", sa.String(200), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("champion", sa.String(200), nullable=False),
        sa.Column("challenger", sa.String(200)),
        sa.Column("label_watermark", sa.DateTime(timezone=True)),
        sa.Column("record", sa.JSON(), nullable=False),
        sa.UniqueConstraint("evaluation_id"),
        sa.UniqueConstraint("in_flight"),
    )
    op.create_index("ix_retrain_runs_started_at", "retrain_runs", ["started_at"])
    op.create_index("ix_predictions_label_ts", "predictions", ["label_ts"])


def downgrade() -> None:
    op.drop_index("ix_predictions_label_ts", table_name="predictions")
    op.drop_index("ix_retrain_runs_started_at", table_name="retrain_runs")
    op.drop_table("retrain_runs")
