"""Authors a reader follows, and whether a reader's emails may ask about papers to learn.

Readers' models are bundles now (a model per topic, the papers they have): the old
single models are dropped, and every reader with feedback is refitted on the next run.

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subscribers") as batch:
        batch.add_column(sa.Column("explore", sa.Boolean, nullable=False, server_default=sa.true()))
    op.create_table(
        "follows",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("subscriber_id", sa.Integer, sa.ForeignKey("subscribers.id"), nullable=False),
        sa.Column("author_key", sa.String(200), nullable=False),
        sa.Column("author", sa.String(200), nullable=False),
        sa.Column("paper", sa.String(600)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("subscriber_id", "author_key", name="one_follow_per_author"),
    )
    op.execute("DELETE FROM reader_models")


def downgrade() -> None:
    op.drop_table("follows")
    with op.batch_alter_table("subscribers") as batch:
        batch.drop_column("explore")
