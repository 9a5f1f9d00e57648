"""The signed tokens in personal links: unsubscribe, preferences, confirmation.

One module owns the scheme so that the emails (which make links) and the web
pages (which check them) always agree.  Tokens are signed with SECRET_KEY,
carry the subscriber id and a purpose, and never the address itself.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from digest.errors import DigestError

PURPOSES = ("unsubscribe", "preferences", "confirm")


class TokenError(DigestError):
    """A link token that is forged, for another purpose, or expired."""

    def __init__(self, reason: str, *, expired: bool = False) -> None:
        self.expired = expired
        super().__init__(reason)


@lru_cache(maxsize=16)
def _serializer(secret_key: str, purpose: str) -> URLSafeTimedSerializer:
    if purpose not in PURPOSES:
        raise ValueError(f"unknown token purpose {purpose!r}")
    return URLSafeTimedSerializer(secret_key, salt=f"digest-{purpose}")


def make_token(secret_key: str, purpose: str, subscriber_id: int) -> str:
    """Return a URL-safe token that proves ``purpose`` for this subscriber."""
    return _serializer(secret_key, purpose).dumps(subscriber_id)


def read_token(
    secret_key: str, purpose: str, token: str, *, max_age_seconds: int | None = None
) -> int:
    """Return the subscriber id in a token; raise ``TokenError`` if it is not valid."""
    try:
        value = _serializer(secret_key, purpose).loads(token, max_age=max_age_seconds)
    except SignatureExpired as e:
        raise TokenError("this link has expired", expired=True) from e
    except BadSignature as e:
        raise TokenError("this link is not valid") from e
    if not isinstance(value, int) or isinstance(value, bool):
        raise TokenError("this link is not valid")
    return value


def unsubscribe_url(base_url: str, secret_key: str, subscriber_id: int) -> str:
    """The one-click unsubscribe link of a subscriber."""
    return f"{base_url}/unsubscribe/{make_token(secret_key, 'unsubscribe', subscriber_id)}"


def preferences_url(base_url: str, secret_key: str, subscriber_id: int) -> str:
    """The link to a subscriber's preferences page."""
    return f"{base_url}/preferences/{make_token(secret_key, 'preferences', subscriber_id)}"


def confirm_url(base_url: str, secret_key: str, subscriber_id: int) -> str:
    """The double opt-in link sent to a new subscriber."""
    return f"{base_url}/confirm/{make_token(secret_key, 'confirm', subscriber_id)}"


def edition_url(base_url: str, edition_date: date) -> str:
    """The public page of an edition (the "view in browser" link); no personal data."""
    return f"{base_url}/archive/{edition_date.isoformat()}"
