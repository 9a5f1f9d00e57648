"""Consent history and the installation's own id.

Every change of a subscriber's state is recorded (when, to what, through
which channel), and each installation gets a random id of its own, which
keeps Message-IDs unique across installations that share a SECRET_KEY.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

Moment = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "subscriber_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("subscriber_id", sa.Integer, sa.ForeignKey("subscribers.id"), nullable=False),
        sa.Column("at", Moment, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text),
    )
    op.create_index("subscriber_events_by_subscriber", "subscriber_events", ["subscriber_id", "id"])
    installation = op.create_table(
        "installation",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("created_at", Moment, nullable=False),
    )
    op.bulk_insert(installation, [{"id": secrets.token_hex(16), "created_at": datetime.now(UTC)}])


def downgrade() -> None:
    op.drop_table("installation")
    op.drop_index("subscriber_events_by_subscriber", "subscriber_events")
    op.drop_table("subscriber_events")
