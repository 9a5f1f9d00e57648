"""When each source last brought new entries, to tell a stale source from a quiet day.

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("source_checks") as batch:
        batch.add_column(sa.Column("last_new_at", sa.DateTime(timezone=True)))
    op.execute("UPDATE source_checks SET last_new_at = checked_at WHERE new > 0")


def downgrade() -> None:
    with op.batch_alter_table("source_checks") as batch:
        batch.drop_column("last_new_at")
