"""The signed tokens in personal links: unsubscribe, preferences, confirmation.

One module owns the scheme so that the emails (which make links) and the web
pages (which check them) always agree.  Tokens are signed with SECRET_KEY,
carry the subscriber id and a purpose, and never the address itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
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


@dataclass(frozen=True)
class ConfirmRequest:
    """What a confirmation link carries: who, when they had left, and what they asked for.

    Someone who left keeps their row unchanged until they confirm, so the
    topics and theme they typed travel in the (signed) link itself.
    """

    subscriber_id: int
    left_at: str | None = None
    topics: str | None = None
    theme: str | None = None


def confirm_url(
    base_url: str, secret_key: str, subscriber_id: int, request: ConfirmRequest | None = None
) -> str:
    """The double opt-in link of a sign-up."""
    request = request or ConfirmRequest(subscriber_id)
    payload = [request.subscriber_id, request.left_at, request.topics, request.theme]
    return f"{base_url}/confirm/{_serializer(secret_key, 'confirm').dumps(payload)}"


def read_confirm_token(secret_key: str, token: str, *, max_age_seconds: int) -> ConfirmRequest:
    """Return what a confirmation link asks; raise ``TokenError`` if it is not valid."""
    try:
        value = _serializer(secret_key, "confirm").loads(token, max_age=max_age_seconds)
    except SignatureExpired as e:
        raise TokenError("this link has expired", expired=True) from e
    except BadSignature as e:
        raise TokenError("this link is not valid") from e
    if isinstance(value, int) and not isinstance(value, bool):
        return ConfirmRequest(value)  # a link made before links carried more
    if (
        isinstance(value, list)
        and len(value) == 4
        and isinstance(value[0], int)
        and not isinstance(value[0], bool)
        and all(v is None or isinstance(v, str) for v in value[1:])
    ):
        return ConfirmRequest(value[0], value[1], value[2], value[3])
    raise TokenError("this link is not valid")


def feedback_token(secret_key: str, subscriber_id: int, entry_id: int) -> str:
    """A token that proves a reader may vote on one paper: ``<reader>.<paper>.<signature>``.

    A keyed BLAKE2b, not itsdangerous: every card of every email carries one,
    and this costs well under a microsecond.  It never expires; a vote is
    harmless to repeat.
    """
    return f"{subscriber_id}.{entry_id}.{_feedback_signature(secret_key, subscriber_id, entry_id)}"


def read_feedback_token(secret_key: str, token: str) -> tuple[int, int]:
    """The reader and paper ids of a feedback token; ``TokenError`` if it is not valid."""
    reader, _, rest = token.partition(".")
    paper, _, signature = rest.partition(".")
    if not (reader.isascii() and reader.isdigit() and paper.isascii() and paper.isdigit()):
        raise TokenError("this link is not valid")
    if len(reader) > 12 or len(paper) > 12:
        raise TokenError("this link is not valid")
    expected = _feedback_signature(secret_key, int(reader), int(paper))
    if not hmac.compare_digest(signature.encode(), expected.encode()):
        raise TokenError("this link is not valid")
    return int(reader), int(paper)


def _feedback_signature(secret_key: str, subscriber_id: int, entry_id: int) -> str:
    return base64.urlsafe_b64encode(_mac(secret_key, b"feedback", subscriber_id, entry_id)).decode()


def _mac(secret_key: str, purpose: bytes, *numbers: int) -> bytes:
    """A keyed BLAKE2b of some ids, for one purpose (12 bytes)."""
    message = b":".join([purpose, *(b"%d" % n for n in numbers)])
    return hashlib.blake2b(message, key=_feedback_key(secret_key), digest_size=12).digest()


@lru_cache(maxsize=16)
def _feedback_key(secret_key: str) -> bytes:
    """BLAKE2b takes keys of 64 bytes at most: a longer secret is hashed down."""
    return hashlib.sha256(b"digest-feedback:" + secret_key.encode()).digest()


def tagged_address(address: str, secret_key: str, purpose: str, number: int) -> str:
    """``local+<number>.<signature>@domain``: an address that names a delivery (VERP,
    purpose ``bounce``) or a reader (``unsubscribe``).  Lower case throughout, since
    some mail servers change the case of what they pass on."""
    local, _, domain = address.rpartition("@")
    tag = _address_tag(secret_key, purpose, number)
    return f"{local}+{number}.{tag}@{domain}"


def read_tagged_address(address: str, secret_key: str, purpose: str) -> int:
    """The number a tagged address names; ``TokenError`` if it carries no valid tag."""
    local = address.strip().strip("<>").rpartition("@")[0]
    tag = local.rpartition("+")[2]
    number, _, signature = tag.partition(".")
    if not (number.isascii() and number.isdigit() and len(number) <= 12):
        raise TokenError("this address carries no valid tag")
    expected = _address_tag(secret_key, purpose, int(number))
    if not hmac.compare_digest(signature.lower().encode(), expected.encode()):
        raise TokenError("this address carries no valid tag")
    return int(number)


def _address_tag(secret_key: str, purpose: str, number: int) -> str:
    mac = _mac(secret_key, purpose.encode(), number)
    return base64.b32encode(mac).decode().rstrip("=").lower()


def feedback_url(base_url: str, secret_key: str, subscriber_id: int, entry_id: int) -> str:
    """The page where a reader says more or less like this paper (the email adds ``?v=``)."""
    return f"{base_url}/feedback/{feedback_token(secret_key, subscriber_id, entry_id)}"


def edition_url(base_url: str, edition_date: date) -> str:
    """The public page of an edition (the "view in browser" link); no personal data."""
    return f"{base_url}/archive/{edition_date.isoformat()}"
