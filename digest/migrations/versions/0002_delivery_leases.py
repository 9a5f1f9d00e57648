"""Delivery leases: several senders share an edition's queue.

A sender claims a batch of queued deliveries for a while (claimed_by,
claimed_until); one that dies loses its claim when the lease runs out.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as table:
        table.add_column(sa.Column("claimed_by", sa.String(300)))
        table.add_column(sa.Column("claimed_until", sa.DateTime(timezone=True)))


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as table:
        table.drop_column("claimed_until")
        table.drop_column("claimed_by")
