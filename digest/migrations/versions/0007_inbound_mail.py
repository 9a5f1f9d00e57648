"""Mail that comes back: each reader's bounce score, and every bounce, complaint and
mailto unsubscribe as it arrived.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bounce_scores",
        sa.Column("subscriber_id", sa.Integer, sa.ForeignKey("subscribers.id"), primary_key=True),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("counted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("counted_today", sa.Float, nullable=False),
    )
    op.create_table(
        "inbound_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("subscriber_id", sa.Integer, sa.ForeignKey("subscribers.id")),
        sa.Column("delivery_id", sa.Integer, sa.ForeignKey("deliveries.id")),
        sa.Column("edition_id", sa.Integer, sa.ForeignKey("editions.id"), index=True),
        sa.Column("message_id", sa.String(300)),
        sa.Column("detail", sa.Text),
    )


def downgrade() -> None:
    op.drop_table("inbound_events")
    op.drop_table("bounce_scores")
