"""Build the email message of one delivery: headers, a text and an HTML part, as bytes.

Pure: no sockets and no clock (the date is passed in).  Every header value
is one line: nothing from a feed or a subscriber can add or split a header.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import date, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

from digest.render import RenderedEmail

_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")


@dataclass(frozen=True)
class Envelope:
    """Who a message is from and to, and the links its headers carry."""

    sender_name: str
    sender_address: str
    recipient_address: str
    recipient_name: str | None
    list_name: str
    unsubscribe_url: str
    unsubscribe_mailto: str


def one_line(value: str) -> str:
    """Return a header-safe value: control characters and line breaks become spaces."""
    return " ".join(_CONTROL.sub(" ", value).split())


def domain_of(address: str) -> str:
    """Return the domain of an address, IDNA-encoded for headers and the envelope."""
    domain = address.rpartition("@")[2].lower()
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError:
        return domain


def envelope_address(address: str) -> str:
    """Return the address for SMTP commands: the domain IDNA-encoded."""
    local, _, domain = address.rpartition("@")
    return f"{local}@{domain_of(address)}" if local else address


def message_id_for(
    secret_key: str, edition_id: int, day: date, subscriber_id: int, domain: str
) -> str:
    """Return the Message-ID of a delivery: the same for every attempt, so a resend is a repeat."""
    tag = hmac.new(
        secret_key.encode(), f"{edition_id}:{subscriber_id}".encode(), hashlib.sha256
    ).hexdigest()[:20]
    return f"<{day:%Y%m%d}.{subscriber_id}.{tag}@{domain}>"


def list_id(list_name: str, domain: str) -> str:
    """Return a List-Id header value such as ``Daily papers <daily-papers.example.org>``."""
    slug = re.sub(r"[^a-z0-9]+", "-", list_name.lower()).strip("-") or "digest"
    return f"{one_line(list_name)} <{slug}.{domain}>"


def build_message(
    rendered: RenderedEmail, envelope: Envelope, *, message_id: str, sent_at: datetime
) -> bytes:
    """Return the message as bytes with CRLF line ends, ready for SMTP or a .eml file.

    The headers go through the email package (RFC 2047 encoding, folding);
    the multipart/alternative body (text first, then HTML) is assembled here
    with C-speed quoted-printable, since the package's pure-Python encoder
    costs milliseconds per message.
    """
    domain = domain_of(envelope.sender_address)
    recipient = envelope_address(envelope.recipient_address)
    headers = EmailMessage(policy=SMTP.clone(utf8=not recipient.isascii()))
    headers["From"] = Address(
        one_line(envelope.sender_name), addr_spec=envelope_address(envelope.sender_address)
    )
    headers["To"] = Address(one_line(envelope.recipient_name or ""), addr_spec=recipient)
    headers["Subject"] = one_line(rendered.subject)
    headers["Date"] = format_datetime(sent_at)
    headers["Message-ID"] = message_id
    headers["List-Id"] = list_id(envelope.list_name, domain)
    headers["List-Unsubscribe"] = (
        f"<{one_line(envelope.unsubscribe_url)}>, "
        f"<mailto:{envelope_address(envelope.unsubscribe_mailto)}?subject=unsubscribe>"
    )
    headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    headers["Auto-Submitted"] = "auto-generated"
    headers["X-Auto-Response-Suppress"] = "OOF, AutoReply"
    headers["MIME-Version"] = "1.0"
    boundary = "=_digest_" + hashlib.sha256(message_id.encode()).hexdigest()[:24]
    headers["Content-Type"] = f'multipart/alternative; boundary="{boundary}"'
    mark = boundary.encode()
    policy = headers.policy
    return b"".join(
        (
            *(policy.fold_binary(name, value) for name, value in headers.items()),
            b"\r\n",
            b"--" + mark + b"\r\n" + _part("text/plain", rendered.text),
            b"\r\n--" + mark + b"\r\n" + _part("text/html", rendered.html),
            b"\r\n--" + mark + b"--\r\n",
        )
    )


def _part(content_type: str, text: str) -> bytes:
    body = text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n").encode()
    # Keep CRLF line ends; soft line breaks follow the first line end's style.
    encoded = binascii.b2a_qp(body if body.endswith(b"\r\n") else body + b"\r\n", istext=True)
    return (
        f'Content-Type: {content_type}; charset="utf-8"\r\n'
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    ).encode() + encoded.rstrip(b"\r\n")
