"""The dashboard's admins: accounts an operator adds and removes, and their sign-in sessions.

Passwords are kept only as scrypt hashes and sessions only by the hash of
their token, so the database never holds what would let someone in.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from digest.errors import DigestError
from digest.passwords import decoy_hash, hash_password, password_problem, verify_password
from digest.store import Admin, Store


class PasswordRefused(DigestError):
    """A password too weak for an admin: the message says why."""


def add_admin(store: Store, email: str, password: str, *, now: datetime) -> bool:
    """Add an admin, or give one a new password (which ends their sessions); whether
    the admin is new.  ``PasswordRefused`` for a weak password."""
    why = password_problem(password)
    if why:
        raise PasswordRefused(why)
    _, new = store.save_admin(email, hash_password(password), now=now)
    return new


def remove_admin(store: Store, email: str) -> bool:
    """Take an admin account away (its sessions end at once); whether there was one."""
    return store.remove_admin(email)


def list_admins(store: Store) -> list[Admin]:
    """Every admin, with when they last signed in."""
    return store.list_admins()


def sign_in(store: Store, email: str, password: str, *, now: datetime, hours: float) -> str | None:
    """A session's token for an admin whose password matches, else None.  A wrong address
    costs as long as a wrong password: nobody learns who is an admin."""
    who = store.get_admin(email) if email.strip() else None
    if not verify_password(password, who.password_hash if who else decoy_hash()) or who is None:
        return None
    token = secrets.token_urlsafe(32)
    store.open_admin_session(
        who.id, _token_hash(token), now=now, expires_at=now + timedelta(hours=hours)
    )
    return token


def signed_in(store: Store, token: str, *, now: datetime) -> Admin | None:
    """The admin a session's token belongs to, while it lasts."""
    return store.session_admin(_token_hash(token), now=now) if token else None


def sign_out(store: Store, token: str) -> None:
    """End a session."""
    store.close_admin_session(_token_hash(token))


def _token_hash(token: str) -> str:
    """How a session is named in the database: never by its token itself."""
    return hashlib.sha256(token.encode()).hexdigest()
