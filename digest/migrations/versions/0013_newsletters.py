"""Several newsletters: readers and editions belong to one, editions share entries.

A person has one ``subscribers`` row (one consent) per newsletter, so an address is
unique per newsletter; each newsletter has one edition a day; and an entry may be
carried by one edition of each newsletter, so which edition carried it moves from
``entries.edition_id`` to ``edition_entries``; and ``entry_sources`` keeps every source
that brought an entry, since a newsletter takes papers from some sources only.  Every
row from before is the main newsletter's.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

# SQLite's unique constraints from 0001 have no name: batch mode names them so.
_NAMES = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def _unique_name(table: str, column: str) -> str:
    if op.get_bind().dialect.name == "postgresql":
        return f"{table}_{column}_key"
    return f"uq_{table}_{column}"


def upgrade() -> None:
    op.create_table(
        "edition_entries",
        sa.Column("edition_id", sa.Integer, sa.ForeignKey("editions.id"), primary_key=True),
        sa.Column("entry_id", sa.Integer, sa.ForeignKey("entries.id"), primary_key=True),
    )
    op.create_index("edition_entries_by_entry", "edition_entries", ["entry_id"])
    op.execute(
        "INSERT INTO edition_entries (edition_id, entry_id) "
        "SELECT edition_id, id FROM entries WHERE edition_id IS NOT NULL"
    )
    op.create_table(
        "entry_sources",
        sa.Column("entry_id", sa.Integer, sa.ForeignKey("entries.id"), primary_key=True),
        sa.Column("source", sa.String(200), primary_key=True),
    )
    op.execute("INSERT INTO entry_sources (entry_id, source) SELECT id, source FROM entries")
    for table, column, name, columns in (
        ("editions", "day", "one_edition_per_day", ["newsletter", "day"]),
        ("subscribers", "email_key", "one_subscriber_per_newsletter", ["email_key", "newsletter"]),
    ):
        with op.batch_alter_table(table, naming_convention=_NAMES) as batch:
            batch.add_column(
                sa.Column("newsletter", sa.String(64), nullable=False, server_default="main")
            )
            batch.drop_constraint(_unique_name(table, column), type_="unique")
            batch.create_unique_constraint(name, columns)
    with op.batch_alter_table("entries") as batch:
        batch.drop_index("ix_entries_edition_id")
        batch.drop_column("edition_id")


def downgrade() -> None:
    with op.batch_alter_table("entries") as batch:
        batch.add_column(sa.Column("edition_id", sa.Integer, sa.ForeignKey("editions.id")))
        batch.create_index("ix_entries_edition_id", ["edition_id"])
    op.execute(
        "UPDATE entries SET edition_id = (SELECT min(edition_id) FROM edition_entries "
        "WHERE edition_entries.entry_id = entries.id)"
    )
    for table, column, name in (
        ("editions", "day", "one_edition_per_day"),
        ("subscribers", "email_key", "one_subscriber_per_newsletter"),
    ):
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(name, type_="unique")
            batch.drop_column("newsletter")
            batch.create_unique_constraint(_unique_name(table, column), [column])
    op.drop_table("entry_sources")
    op.drop_table("edition_entries")
