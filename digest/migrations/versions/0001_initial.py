"""The first schema: entries, subscribers, editions, deliveries, locks, runs.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Moment = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "editions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("day", sa.Date, nullable=False, unique=True),
        sa.Column("created_at", Moment, nullable=False),
        sa.Column("entry_count", sa.Integer, nullable=False),
    )
    op.create_table(
        "entries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("fingerprint", sa.String(600), nullable=False, unique=True),
        sa.Column("arxiv_id", sa.String(40), unique=True),
        sa.Column("title_key", sa.String(600), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("abstract", sa.Text, nullable=False),
        sa.Column("authors", sa.JSON, nullable=False),
        sa.Column("url", sa.Text),
        sa.Column("pdf_url", sa.Text),
        sa.Column("hf_url", sa.Text),
        sa.Column("categories", sa.JSON, nullable=False),
        sa.Column("upvotes", sa.Integer),
        sa.Column("published", sa.Date),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("first_seen", Moment, nullable=False),
        sa.Column("edition_id", sa.Integer, sa.ForeignKey("editions.id")),
    )
    for column in ("title_key", "first_seen", "edition_id"):
        op.create_index(f"ix_entries_{column}", "entries", [column])
    op.create_table(
        "subscribers",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("email_key", sa.String(320), nullable=False, unique=True),
        sa.Column("name", sa.String(200)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("topics", sa.JSON, nullable=False),
        sa.Column("theme", sa.String(64)),
        sa.Column("timezone", sa.String(64)),
        sa.Column("paused", sa.Boolean, nullable=False, default=False),
        sa.Column("created_at", Moment, nullable=False),
        sa.Column("updated_at", Moment, nullable=False),
        sa.Column("unsubscribed_at", Moment),
    )
    op.create_index("ix_subscribers_status", "subscribers", ["status"])
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("edition_id", sa.Integer, sa.ForeignKey("editions.id"), nullable=False),
        sa.Column("subscriber_id", sa.Integer, sa.ForeignKey("subscribers.id"), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, default=0),
        sa.Column("message_id", sa.String(300)),
        sa.Column("detail", sa.Text),
        sa.Column("updated_at", Moment, nullable=False),
        sa.UniqueConstraint("edition_id", "subscriber_id", name="one_delivery_per_edition"),
    )
    op.create_index("deliveries_by_state", "deliveries", ["edition_id", "status", "id"])
    op.create_table(
        "locks",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("holder", sa.String(300), nullable=False),
        sa.Column("acquired_at", Moment, nullable=False),
        sa.Column("expires_at", Moment, nullable=False),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("holder", sa.String(300), nullable=False),
        sa.Column("started_at", Moment, nullable=False),
        sa.Column("finished_at", Moment),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("summary", sa.Text),
    )
    op.create_index("ix_runs_started_at", "runs", ["started_at"])


def downgrade() -> None:
    for table in ("runs", "locks", "deliveries", "subscribers", "entries", "editions"):
        op.drop_table(table)
