"""Each reader's cadence: daily, weekly on a day, or once enough papers match.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subscribers") as batch:
        batch.add_column(
            sa.Column("cadence", sa.String(32), nullable=False, server_default="daily")
        )
        batch.add_column(sa.Column("period_start", sa.Date))


def downgrade() -> None:
    with op.batch_alter_table("subscribers") as batch:
        batch.drop_column("period_start")
        batch.drop_column("cadence")
