"""`predictions.api_key`: the NAME of the API key that asked for each prediction (issue 22).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04

Only the name a key was configured under is stored, never the key or its hash: the log says
which client asked without holding anything that could be used to ask again. NULL when API keys
are off and for rows written by jobs (`tabserve score`, the stream worker). Nullable, no
default: adding it rewrites no row, on SQLite or PostgreSQL.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("predictions", sa.Column("api_key", sa.String(64)))


def downgrade() -> None:
    with op.batch_alter_table("predictions") as batch:  # SQLite drops a column by copying the table
        batch.drop_column("api_key")
