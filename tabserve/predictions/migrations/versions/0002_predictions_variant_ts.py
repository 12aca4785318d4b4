"""An index on predictions (variant, ts): what the rollout guards and the A/B report read.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-20

`variant_outcomes` selects one variant's rows since a time (each rollout check, twice); with
only the single-column indexes the database scanned every row since that time, all variants.
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_predictions_variant_ts", "predictions", ["variant", "ts"])


def downgrade() -> None:
    op.drop_index("ix_predictions_variant_ts", table_name="predictions")
