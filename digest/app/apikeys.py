"""Keys for the JSON API: made once, kept as a hash, each with a scope."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from digest.errors import DigestError
from digest.store import ApiToken, Store
from digest.store.schema import API_SCOPES

#: Every token starts so: a leaked one is easy to find in logs and repositories.
TOKEN_PREFIX = "dgt_"

#: What each scope may do, each one more than the one before.
_MAY = {"read": {"read"}, "write": {"read", "write"}, "import": {"read", "write", "import"}}


class KeyRefused(DigestError):
    """A key that cannot be made as asked (a name taken, a scope unknown)."""


def create(store: Store, name: str, scope: str, *, now: datetime) -> tuple[ApiToken, str]:
    """Make a key; return it and its token, which is shown this once and kept nowhere."""
    name = name.strip()
    if not name or len(name) > 100 or not name.isprintable():
        raise KeyRefused("a key's name is one line of at most 100 characters")
    if scope not in API_SCOPES:
        raise KeyRefused(f"no scope {scope!r} (choose from {', '.join(API_SCOPES)})")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    saved = store.save_api_token(name, scope, token_hash(token), now=now)
    if saved is None:
        raise KeyRefused(f"a key named {name!r} exists", hint="revoke it first, or pick a name")
    return saved, token


def authenticate(store: Store, token: str, *, now: datetime) -> ApiToken | None:
    """The key this token is, or None (never saying whether a name or a hash exists)."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    return store.api_token_used(token_hash(token), now=now)


def may(key: ApiToken, action: str) -> bool:
    """Whether a key's scope allows ``action`` (read, write or import)."""
    return action in _MAY.get(key.scope, set())


def token_hash(token: str) -> str:
    """What is kept of a token: enough to know it again, nothing to use."""
    return hashlib.sha256(token.encode()).hexdigest()
