"""Telling an endpoint what happened: a POST signed as Standard Webhooks are.

The edge of the webhooks: ``signature`` is pure, ``post`` does the one request (no
redirects followed, a deadline, the answer's body never read past a few KB).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
from typing import Any
from urllib.parse import urlsplit

from digest import __version__

#: How long one POST may take, connect to answer.
TIMEOUT_SECONDS = 10.0
#: After each failed attempt, the wait before the next (Standard Webhooks' own
#: schedule); past the last, the event is given up for that endpoint.
RETRY_AFTER_SECONDS = (5, 300, 1800, 7200, 18000, 36000, 36000)


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header: ``v1,`` and the base64 HMAC-SHA256 of
    ``id.timestamp.body`` keyed by the secret (``whsec_`` and base64)."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def payload(kind: str, at: str, data: dict[str, Any]) -> bytes:
    """The body of an event's POST."""
    return json.dumps({"type": kind, "timestamp": at, "data": data}).encode()


def post(url: str, headers: dict[str, str], body: bytes) -> str:
    """POST once; the answer's status line, or why there was none ("2xx" means taken)."""
    parts = urlsplit(url)
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = kind(parts.hostname or "", parts.port, timeout=TIMEOUT_SECONDS)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    sent = headers | {
        "Content-Type": "application/json",
        "User-Agent": f"digest/{__version__} (webhooks)",
    }
    try:
        connection.request("POST", path, body=body, headers=sent)
        answer = connection.getresponse()
        answer.read(4096)
        return f"{answer.status} {answer.reason}"[:200]
    except (OSError, http.client.HTTPException) as e:
        return f"no answer: {type(e).__name__}: {e}"[:200]
    finally:
        connection.close()
