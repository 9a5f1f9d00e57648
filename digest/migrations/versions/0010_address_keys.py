"""Address keys from the IDNA 2008 wire form, not from case folding.

Case folding made ``kurt@straße.de`` and ``kurt@strasse.de`` one subscriber:
two domains, two people.  Each key is now ``digest.address.address_key``
(the wire form in lower case).  A key two rows would share stays as it was.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

from collections import Counter

import sqlalchemy as sa
from alembic import op

from digest.address import address_key

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    _rekey(address_key)


def downgrade() -> None:
    _rekey(str.casefold)


def _rekey(key_of: object) -> None:
    assert callable(key_of)
    conn = op.get_bind()
    for table in ("subscribers", "admins"):
        rows = conn.execute(sa.text(f"SELECT id, email, email_key FROM {table}")).all()
        new = {row.id: key_of(row.email) for row in rows}
        taken = Counter(new.values())
        kept = {row.email_key for row in rows if taken[new[row.id]] > 1}
        changes = [
            {"row_id": row.id, "key": new[row.id]}
            for row in rows
            if new[row.id] != row.email_key and taken[new[row.id]] == 1 and new[row.id] not in kept
        ]
        if changes:
            # Through a placeholder first: a new key may be another row's old one.
            conn.execute(
                sa.text(f"UPDATE {table} SET email_key = '#' || id WHERE id = :row_id"), changes
            )
            conn.execute(
                sa.text(f"UPDATE {table} SET email_key = :key WHERE id = :row_id"), changes
            )
