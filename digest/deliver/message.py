"""Build the email message of one delivery: headers, a text and an HTML part, as bytes.

Pure: no sockets and no clock (the date is passed in); a DKIM signer reads
its key once, when it is made.  Every header value is one line: nothing
from a feed or a subscriber can add or split a header.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from email.header import Header
from email.utils import format_datetime, formataddr
from functools import lru_cache

from digest.address import domain_of
from digest.config import DkimSettings
from digest.errors import DigestError
from digest.render import RenderedEmail, transfer_encoded

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
    #: A mailto digest reads (``[inbound]``), or None: then only the link is offered.
    unsubscribe_mailto: str | None


def one_line(value: str) -> str:
    """Return a header-safe value: control characters and line breaks become spaces."""
    return " ".join(_CONTROL.sub(" ", value).split())


#: What an address may hold in a message digest writes: printable ASCII, no
#: spaces, brackets or commas (digest does not send SMTPUTF8; see docs/readers.md).
_SENDABLE_ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9.-]+")


def checked_address(address: str) -> str:
    """Return the address as the envelope and To header carry it, or raise ``ValueError``."""
    sendable = envelope_address(address)
    if not _SENDABLE_ADDRESS.fullmatch(sendable):
        raise ValueError(
            f"the address {one_line(address)!r} cannot be carried: digest sends to ASCII "
            "addresses only (an internationalised domain is fine)"
        )
    return sendable


def _unsubscribe_links(envelope: Envelope) -> str:
    links = f"<{one_line(envelope.unsubscribe_url)}>"
    if envelope.unsubscribe_mailto:
        mailto = envelope_address(envelope.unsubscribe_mailto)
        links += f", <mailto:{mailto}?subject=unsubscribe>"
    return links


def envelope_address(address: str) -> str:
    """Return the address for SMTP commands: the domain in IDNA 2008 A-labels."""
    local, _, domain = address.rpartition("@")
    return f"{local}@{domain_of(address)}" if local else address


@lru_cache(maxsize=64)  # the same for every message of a run
def list_id(list_name: str, domain: str) -> str:
    """Return the id in a List-Id header, such as ``daily-papers.example.org``."""
    slug = re.sub(r"[^a-z0-9]+", "-", list_name.lower()).strip("-") or "digest"
    return f"{slug}.{domain}"


def build_message(
    rendered: RenderedEmail,
    envelope: Envelope,
    *,
    message_id: str,
    sent_at: datetime,
    eight_bit: bool = False,
) -> bytes:
    """Return the message as bytes with CRLF line ends, ready for SMTP or a .eml file.

    With ``eight_bit`` (the server offers 8BITMIME) a part may go as raw UTF-8;
    the transport then says ``BODY=8BITMIME``.

    Headers are folded and RFC 2047-encoded here, and the multipart/alternative
    body (text first, then HTML) assembled with C-speed quoted-printable: the
    email package does the same in milliseconds per message, which matters
    when sending at the speed of the mail server.
    """
    domain = domain_of(envelope.sender_address)
    recipient = checked_address(envelope.recipient_address)
    boundary = "=_digest_" + hashlib.sha256(message_id.encode()).hexdigest()[:24]
    headers = [
        _phrase_header("From", envelope.sender_name, envelope_address(envelope.sender_address)),
        _phrase_header("To", envelope.recipient_name or "", recipient),
        _text_header("Subject", one_line(rendered.subject)),
        _text_header("Date", format_datetime(sent_at)),
        _text_header("Message-ID", one_line(message_id)),
        _phrase_header("List-Id", envelope.list_name, list_id(envelope.list_name, domain)),
        _text_header("List-Unsubscribe", _unsubscribe_links(envelope)),
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n",
        "Auto-Submitted: auto-generated\r\n",
        "X-Auto-Response-Suppress: OOF, AutoReply\r\n",
        "MIME-Version: 1.0\r\n",
        _fold(f'Content-Type: multipart/alternative; boundary="{boundary}"'),
    ]
    mark = boundary.encode()
    return b"".join(
        (
            "".join(headers).encode("ascii"),
            b"\r\n--" + mark + b"\r\n" + _part("text/plain", rendered.text, eight_bit),
            b"\r\n--" + mark + b"\r\n" + _part("text/html", rendered.html, eight_bit),
            b"\r\n--" + mark + b"--\r\n",
        )
    )


def _fold(line: str) -> str:
    """Fold a header line at spaces so that lines stay under 78 characters."""
    if len(line) <= 78:
        return line + "\r\n"
    name, _, value = line.partition(" ")
    lines, current = [], name
    for index, word in enumerate(value.split(" ")):
        # The first word stays beside the name: a value starting on a
        # continuation line would keep its leading space when unfolded.
        if index and len(current) + 1 + len(word) > 78:
            lines.append(current)
            current = " " + word
        else:
            current = f"{current} {word}"
    lines.append(current)
    return "\r\n".join(lines) + "\r\n"


def _text_header(name: str, value: str) -> str:
    value = one_line(value)
    if value.isascii():
        return _fold(f"{name}: {value}")
    encoded = Header(value, "utf-8", header_name=name).encode(linesep="\r\n", maxlinelen=76)
    return f"{name}: {encoded}\r\n"


def _phrase_header(name: str, phrase: str, address: str) -> str:
    """``Name: phrase <address>``, as From, To and List-Id carry it: the phrase quoted
    or encoded, never the part in angle brackets."""
    display = one_line(phrase)
    if not display:
        return _fold(f"{name}: <{address}>")
    if display.isascii():
        return _fold(f"{name}: {formataddr((display, address))}")
    # RFC 2047: an encoded-word is at most 75 characters; a long name takes several.
    words = Header(display, "utf-8", header_name=name).encode(linesep="\r\n", maxlinelen=76)
    last = words.rpartition("\r\n")[2]
    gap = "\r\n " if len(last) + len(address) + 3 > 78 else " "
    return f"{name}: {words}{gap}<{address}>\r\n"


def _part(content_type: str, text: str, eight_bit: bool = False) -> bytes:
    """A MIME part of the text, in the encoding ``digest.render.encoding`` chooses."""
    encoding, body = transfer_encoded(text, eight_bit=eight_bit)
    return (
        f'Content-Type: {content_type}; charset="utf-8"\r\n'
        f"Content-Transfer-Encoding: {encoding}\r\n\r\n"
    ).encode() + body


def signer_for(settings: DkimSettings, sender_address: str) -> DkimSigner | None:
    """The signer every outgoing message goes through (digests, resends, tests and the
    sign-up notes alike), or None when DKIM is off."""
    if settings.private_key_file is None:
        return None
    return DkimSigner(settings, domain_of(sender_address))


class DkimSigner:
    """Adds a DKIM-Signature that covers the list headers too."""

    #: Each signed once more than the message has it ("over-signed"): a copy added
    #: in transit (a second From, a Subject prepended) breaks the signature.
    OVER_SIGNED = (
        b"from",
        b"to",
        b"subject",
        b"date",
        b"message-id",
        b"list-id",
        b"list-unsubscribe",
        b"list-unsubscribe-post",
    )
    HEADERS = (*OVER_SIGNED, *OVER_SIGNED, b"mime-version", b"content-type")

    def __init__(self, settings: DkimSettings, default_domain: str) -> None:
        import dkim

        if settings.private_key_file is None or not settings.selector:
            raise ValueError("DKIM needs a private key file and a selector")
        self._dkim = dkim
        self.key = settings.private_key_file.read_bytes()
        self.selector = settings.selector.encode()
        self.domain = (settings.domain or default_domain).encode()

    def sign(self, message: bytes) -> bytes:
        """Return the message with a DKIM-Signature header in front."""
        try:
            signature = self._dkim.sign(
                message, self.selector, self.domain, self.key, include_headers=list(self.HEADERS)
            )
        except self._dkim.DKIMException as e:
            raise DigestError(
                f"DKIM signing failed: {e}", hint="check DKIM_PRIVATE_KEY_FILE"
            ) from e
        return bytes(signature) + message
