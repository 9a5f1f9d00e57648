"""Token buckets for each relay's quotas, shared by every run and sender process.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_buckets",
        sa.Column("relay", sa.String(300), primary_key=True),
        sa.Column("per_seconds", sa.Float, primary_key=True),
        sa.Column("messages", sa.Float, primary_key=True),
        sa.Column("tokens", sa.Float, nullable=False),
        sa.Column("counted_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("rate_buckets")
