"""Admin passwords: hashed with scrypt (hashlib), checked in constant time.

Pure: no storage, no clock.  The stored form names its parameters, so they
can be raised later without breaking the hashes already kept.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets

#: scrypt's cost: 2**15 x 8 x 128 bytes = 32 MiB and about 0.1 s per check on one core.
_LOG_N, _R, _P = 15, 8, 1
_MAXMEM = 64 * 1024 * 1024

MIN_PASSWORD_CHARS = 12
MAX_PASSWORD_CHARS = 1024


def password_problem(password: str) -> str | None:
    """Why a new password is refused, or None."""
    if len(password) < MIN_PASSWORD_CHARS:
        return f"a password needs at least {MIN_PASSWORD_CHARS} characters"
    if len(password) > MAX_PASSWORD_CHARS:
        return f"a password has at most {MAX_PASSWORD_CHARS} characters"
    return None


def hash_password(password: str) -> str:
    """The stored form of a password: ``scrypt$logN$r$p$salt$hash``."""
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, _LOG_N, _R, _P)
    return "$".join(["scrypt", str(_LOG_N), str(_R), str(_P), _b64(salt), _b64(digest)])


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` is the one ``stored`` was made from."""
    try:
        scheme, log_n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt" or len(password) > MAX_PASSWORD_CHARS:
            return False
        found = _scrypt(password, _unb64(salt), int(log_n), int(r), int(p))
    except (ValueError, OverflowError):  # not a hash of ours
        return False
    return hmac.compare_digest(found, _unb64(digest))


@functools.cache
def decoy_hash() -> str:
    """A hash to check against when the address is unknown, so that a wrong address
    takes as long as a wrong password and nobody learns who is an admin."""
    return hash_password(secrets.token_urlsafe(16))


def _scrypt(password: str, salt: bytes, log_n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8", "surrogatepass"),
        salt=salt,
        n=2**log_n,
        r=r,
        p=p,
        maxmem=_MAXMEM,
        dklen=32,
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
