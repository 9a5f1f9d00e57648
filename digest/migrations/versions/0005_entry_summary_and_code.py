"""What Hugging Face says of a paper beyond its abstract: a one-sentence summary,
the code repository and its stars, and the organisation.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("entries") as table:
        table.add_column(sa.Column("summary", sa.Text, nullable=False, server_default=""))
        table.add_column(sa.Column("code_url", sa.Text))
        table.add_column(sa.Column("stars", sa.Integer))
        table.add_column(sa.Column("organization", sa.String(200)))


def downgrade() -> None:
    with op.batch_alter_table("entries") as table:
        for column in ("organization", "stars", "code_url", "summary"):
            table.drop_column(column)
