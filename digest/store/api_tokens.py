"""Keys for the JSON API: kept as a hash of the token, never the token."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from digest.store.base import StoreBase, aware
from digest.store.schema import api_tokens


@dataclass(frozen=True)
class ApiToken:
    """An API key: its name, what it may do, and when it was made and last used."""

    id: int
    name: str
    scope: str
    created_at: datetime
    last_used_at: datetime | None = None


class ApiTokensMixin(StoreBase):
    def save_api_token(
        self, name: str, scope: str, token_hash: str, *, now: datetime
    ) -> ApiToken | None:
        """Keep a new key; None when one has that name already."""
        row = {"name": name, "scope": scope, "token_hash": token_hash}
        try:
            with self._transaction() as conn:
                conn.execute(api_tokens.insert().values(row | {"created_at": now.astimezone(UTC)}))
                saved = conn.execute(select(api_tokens).where(api_tokens.c.name == name)).one()
        except IntegrityError:
            return None
        return _token_of(saved)

    def api_token_used(self, token_hash: str, *, now: datetime) -> ApiToken | None:
        """The key with this hash, marked used now; None for none such."""
        where = api_tokens.c.token_hash == token_hash
        with self._transaction() as conn:
            row = conn.execute(select(api_tokens).where(where)).first()
            if row is None:
                return None
            conn.execute(api_tokens.update().where(where).values(last_used_at=now.astimezone(UTC)))
        return _token_of(row)

    def api_tokens(self) -> list[ApiToken]:
        """Every key, oldest first."""
        with self._transaction() as conn:
            rows = conn.execute(select(api_tokens).order_by(api_tokens.c.id)).all()
        return [_token_of(row) for row in rows]

    def revoke_api_token(self, name: str) -> bool:
        """Remove a key; whether there was one of that name."""
        with self._transaction() as conn:
            return bool(conn.execute(api_tokens.delete().where(api_tokens.c.name == name)).rowcount)


def _token_of(row: Any) -> ApiToken:
    used = row.last_used_at
    return ApiToken(
        id=row.id,
        name=row.name,
        scope=row.scope,
        created_at=aware(row.created_at),
        last_used_at=aware(used) if used is not None else None,
    )
