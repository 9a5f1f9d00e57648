"""Events for webhooks, each webhook's copies of them, and how far each has got.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(40), nullable=False, unique=True),
        sa.Column("type", sa.String(40), nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("once", sa.String(100), unique=True),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("webhook", sa.String(300), primary_key=True),
        sa.Column("event", sa.Integer, sa.ForeignKey("events.id"), primary_key=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True)),
        sa.Column("given_up", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("last_status", sa.String(300)),
        sa.Column("last_at", sa.DateTime(timezone=True)),
    )
    op.create_index(
        "webhook_deliveries_due", "webhook_deliveries", ["webhook", "done_at", "next_at"]
    )
    op.create_table(
        "webhook_cursors",
        sa.Column("webhook", sa.String(300), primary_key=True),
        sa.Column("last_event", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("webhook_cursors")
    op.drop_index("webhook_deliveries_due", "webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_table("events")
