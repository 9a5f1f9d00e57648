"""Admin accounts and their sessions, for the dashboard under /admin."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from digest.store.base import StoreBase, aware
from digest.store.schema import admin_sessions, admins
from digest.subscribers import email_key


@dataclass(frozen=True)
class Admin:
    """Someone who may sign in to /admin."""

    id: int
    email: str
    password_hash: str
    created_at: datetime
    last_login_at: datetime | None = None


class AdminsMixin(StoreBase):
    def save_admin(self, email: str, password_hash: str, *, now: datetime) -> tuple[Admin, bool]:
        """Add an admin, or give one a new password (ending their sessions); return them
        and whether they are new."""
        key = email_key(email)
        now = now.astimezone(UTC)
        with self._transaction() as conn:
            row = conn.execute(select(admins).where(admins.c.email_key == key)).first()
            if row is None:
                new = {"email": email, "email_key": key, "password_hash": password_hash}
                conn.execute(admins.insert().values(new | {"created_at": now}))
            else:
                conn.execute(
                    admins.update().where(admins.c.id == row.id).values(password_hash=password_hash)
                )
                conn.execute(admin_sessions.delete().where(admin_sessions.c.admin_id == row.id))
            saved = conn.execute(select(admins).where(admins.c.email_key == key)).one()
        return _admin_of(saved), row is None

    def get_admin(self, email: str) -> Admin | None:
        """The admin with this address, or None."""
        with self._transaction() as conn:
            row = conn.execute(select(admins).where(admins.c.email_key == email_key(email))).first()
        return _admin_of(row) if row is not None else None

    def remove_admin(self, email: str) -> bool:
        """Take someone's admin account away, ending their sessions; whether there was one."""
        with self._transaction() as conn:
            row = conn.execute(select(admins.c.id).where(admins.c.email_key == email_key(email)))
            found = row.first()
            if found is None:
                return False
            conn.execute(admin_sessions.delete().where(admin_sessions.c.admin_id == found.id))
            conn.execute(admins.delete().where(admins.c.id == found.id))
        return True

    def list_admins(self) -> list[Admin]:
        """Every admin, oldest first."""
        with self._transaction() as conn:
            return [_admin_of(row) for row in conn.execute(select(admins).order_by(admins.c.id))]

    def open_admin_session(
        self, admin_id: int, token_hash: str, *, now: datetime, expires_at: datetime
    ) -> None:
        """Record a sign-in: a session named by its token's hash, until ``expires_at``."""
        now = now.astimezone(UTC)
        with self._transaction() as conn:
            conn.execute(admin_sessions.delete().where(admin_sessions.c.expires_at < now))
            conn.execute(
                admin_sessions.insert().values(
                    token_hash=token_hash,
                    admin_id=admin_id,
                    created_at=now,
                    expires_at=expires_at.astimezone(UTC),
                )
            )
            conn.execute(admins.update().where(admins.c.id == admin_id).values(last_login_at=now))

    def session_admin(self, token_hash: str, *, now: datetime) -> Admin | None:
        """The admin whose unexpired session this is, or None."""
        query = (
            select(admins)
            .join(admin_sessions, admin_sessions.c.admin_id == admins.c.id)
            .where(
                admin_sessions.c.token_hash == token_hash,
                admin_sessions.c.expires_at > now.astimezone(UTC),
            )
        )
        with self._transaction() as conn:
            row = conn.execute(query).first()
        return _admin_of(row) if row is not None else None

    def close_admin_session(self, token_hash: str) -> None:
        """End a session (signing out)."""
        with self._transaction() as conn:
            conn.execute(admin_sessions.delete().where(admin_sessions.c.token_hash == token_hash))


def _admin_of(row: Any) -> Admin:
    last = row.last_login_at
    return Admin(
        id=row.id,
        email=row.email,
        password_hash=row.password_hash,
        created_at=aware(row.created_at),
        last_login_at=aware(last) if last else None,
    )
