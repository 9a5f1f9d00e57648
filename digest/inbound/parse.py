"""Read one message that came back: a bounce (RFC 3464 or a server's own format), a
complaint report (ARF, RFC 5965), an auto-reply (RFC 3834) or a mail to the
List-Unsubscribe address.

Pure: bytes in, an ``Inbound`` out, for any bytes at all.  The addresses digest
sends from carry a signed tag (``<local>+<number>.<signature>@…``); this module
only finds them, ``digest.inbound.handle`` checks them (the signature says
what a tag is for, whatever the local part).  Hard and soft failures are told
apart by flufl.bounce (Mailman's detectors for the formats real servers send)
and by the DSN's status codes.

Everything here is bounded: the size, the nesting of parts, the headers read,
and the scan for tags (linear: it starts at each ``+``).  A message the
parser cannot take whole is read by its raw text.
"""

from __future__ import annotations

import email
import email.header
import email.policy
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from email.message import Message

from digest.logs import log_event
from digest.text import printable

log = logging.getLogger(__name__)

#: A message bigger than any bounce or complaint needs is refused.
MAX_MESSAGE_BYTES = 10_000_000
#: Multipart or embedded messages past which a message is read by its raw text
#: only: a real report nests two or three deep.
MAX_NESTED_PARTS = 64
#: Parts at most looked into (a report has a handful).
MAX_PARTS = 200
#: Tagged addresses at most taken from one message.
MAX_TAGS = 20
_TAG = re.compile(rb"\+(\d{1,12})\.([a-z2-7]{20})@([a-z0-9.-]{1,253})", re.IGNORECASE)
_LOCAL_CHARS = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
_MAX_LOCAL = 64
_NESTING = re.compile(rb"(?im)^content-type:[ \t]*(multipart/|message/rfc822)")
_AUTO_SUBJECT = re.compile(
    r"^\s*(auto(matic)? ?(reply|response)|out of (the )?office)", re.IGNORECASE
)
_STATUS = re.compile(r"(?im)^status:[ \t]*([245]\.\d{1,3}\.\d{1,3})")
_FEEDBACK_TYPE = re.compile(r"(?im)^feedback-type:[ \t]*([!-~]{1,64})")


@dataclass(frozen=True)
class Inbound:
    """What one message is: ``kind`` (``policy.KINDS`` but "unsubscribe", which only a
    checked tag can tell), the tagged addresses it names, the one it came to (if
    tagged), the recipients it says failed, and its Message-ID."""

    kind: str
    tagged: tuple[str, ...]
    failed: tuple[str, ...] = ()
    message_id: str = ""
    detail: str = ""
    #: The tagged address the message itself was sent to ("" when it was not).
    addressed_to: str = ""
    #: The DSN's ``Status:`` (``5.1.1``), or "".
    status: str = ""


class TooBig(ValueError):
    """A message over ``MAX_MESSAGE_BYTES``: refused, not read."""


def read_inbound(data: bytes, *, recipient: str | None = None) -> Inbound:
    """Say what a message is; ``recipient`` is the address it was delivered to (the MTA
    knows it: Postfix's ``${original_recipient}``).  ``TooBig`` for a message too big;
    anything else gives an ``Inbound``, of kind "unknown" when it cannot be read."""
    if len(data) > MAX_MESSAGE_BYTES:
        raise TooBig(f"the message is {len(data):,} bytes, over {MAX_MESSAGE_BYTES:,}")
    given = _tags((recipient or "").encode("utf-8", "replace"))
    message = _parsed(data)
    headers = _tags(_addressed_headers(message)) if message is not None else []
    tagged = tuple(dict.fromkeys(given + headers + _tags(data)))[:MAX_TAGS]
    addressed_to = (given or headers or [""])[0]
    if message is None:
        return Inbound("unknown", tagged, addressed_to=addressed_to, detail="unreadable message")
    try:
        return _classify(message, tagged, addressed_to)
    except (RecursionError, LookupError, ValueError, TypeError, AttributeError) as e:
        # The email package trips on some malformed structures; such a message is unknown.
        detail = f"unreadable message ({type(e).__name__})"
        return Inbound("unknown", tagged, addressed_to=addressed_to, detail=detail)


def _parsed(data: bytes) -> Message | None:
    """The message, or None when it is nested too deep to parse safely.  compat32 keeps
    headers as text, so a malformed address header is just text here."""
    if len(_NESTING.findall(data)) > MAX_NESTED_PARTS:
        return None
    try:
        return email.message_from_bytes(data, policy=email.policy.compat32)
    except (RecursionError, LookupError, ValueError, TypeError):
        return None


def _classify(message: Message, tagged: tuple[str, ...], addressed_to: str) -> Inbound:
    parts = list(_parts(message))
    failed: tuple[str, ...] = ()
    status = ""
    if _is_complaint(message, parts):
        kind, detail = "complaint", _feedback_type(parts)
    elif _is_auto_reply(message):
        kind, detail = "autoreply", ""
    else:
        permanent, temporary = _failures(message, parts)
        status = _dsn_status(parts)
        if permanent or status.startswith("5"):
            kind, failed, detail = "hard", permanent, status or "permanent failure"
        elif temporary or status.startswith("4"):
            kind, failed, detail = "soft", temporary, status or "temporary failure"
        else:
            kind, detail = "unknown", _header(message, "Subject")
    return Inbound(
        kind, tagged, failed, _header(message, "Message-ID"), detail, addressed_to, status
    )


def _parts(message: Message) -> Iterator[Message]:
    """The message and its parts, breadth first, bounded in count (never recursive)."""
    queue = [message]
    seen = 0
    while queue and seen < MAX_PARTS:
        part = queue.pop(0)
        seen += 1
        yield part
        payload = part.get_payload()
        if isinstance(payload, list):
            queue += [p for p in payload if isinstance(p, Message)]


def _header(message: Message, name: str) -> str:
    """A header as one printable line (encoded words decoded where they can be)."""
    value = message.get(name)
    if value is None:
        return ""
    try:
        text = str(email.header.make_header(email.header.decode_header(str(value))))
    except (LookupError, ValueError, TypeError, UnicodeError):
        text = str(value)
    return printable(text)


def _addressed_headers(message: Message) -> bytes:
    """The headers that say whom the message came to, as raw text."""
    found = []
    for name in ("Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "To"):
        found += [str(v) for v in message.get_all(name) or []]
    return "\n".join(found).encode("utf-8", "replace")


def _tags(data: bytes) -> list[str]:
    """Every ``local+number.signature@domain`` in ``data``, lower case, in order.

    Linear in the size: each ``+`` is matched forward with a bounded pattern
    and its local part read backward at most 64 bytes."""
    found: list[str] = []
    at = data.find(b"+")
    while at != -1 and len(found) < MAX_TAGS * 4:
        tail = _TAG.match(data, at)
        if tail is not None:
            start = at
            while start > 0 and at - start < _MAX_LOCAL and data[start - 1] in _LOCAL_CHARS:
                start -= 1
            if start < at:
                found.append((data[start:at] + tail.group(0)).decode("ascii").lower())
        at = data.find(b"+", at + 1)
    return found


def _is_complaint(message: Message, parts: list[Message]) -> bool:
    return (
        message.get_content_type() == "multipart/report"
        and str(message.get_param("report-type", "")).lower() == "feedback-report"
    ) or any(part.get_content_type() == "message/feedback-report" for part in parts)


def _feedback_type(parts: list[Message]) -> str:
    for part in parts:
        if part.get_content_type() == "message/feedback-report":
            found = _FEEDBACK_TYPE.search(_text_of(part))
            return f"feedback-type {found.group(1)}" if found else "feedback report"
    return "feedback report"


def _text_of(part: Message) -> str:
    """A part's own text, whatever it holds (a list of header blocks, a string)."""
    payload = part.get_payload()
    blocks = payload if isinstance(payload, list) else [payload]
    text = []
    for block in blocks[:MAX_PARTS]:
        if isinstance(block, Message):
            text += [f"{k}: {v}" for k, v in block.items()]
        else:
            text.append(str(block))
    return "\n".join(text)[:100_000]


def _is_auto_reply(message: Message) -> bool:
    auto = _header(message, "Auto-Submitted").lower()
    if auto and not auto.startswith("no") and message.get_content_type() != "multipart/report":
        return True
    if any(message.get(h) for h in ("X-Autoreply", "X-Autorespond", "X-Auto-Response")):
        return True
    if _header(message, "Precedence").lower() == "auto_reply":
        return True
    return bool(_AUTO_SUBJECT.match(_header(message, "Subject")))


def _failures(message: Message, parts: list[Message]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The addresses the bounce says failed for good and for now (flufl.bounce)."""
    from flufl.bounce import all_failures

    if len(parts) >= MAX_PARTS:
        return (), ()  # the detectors walk the whole tree: not one this large
    try:
        temporary, permanent = all_failures(message)
    except Exception:  # noqa: BLE001 - a detector tripping on odd input: no verdict
        return (), ()

    def text(addresses: Iterable[bytes | str]) -> tuple[str, ...]:
        decoded = (
            a.decode("utf-8", "replace") if isinstance(a, bytes) else str(a) for a in addresses
        )
        return tuple(sorted({printable(a, 254) for a in decoded} - {""}))[:MAX_TAGS]

    return text(permanent), text(temporary)


def _dsn_status(parts: list[Message]) -> str:
    """The worst ``Status:`` of an RFC 3464 report (5.x.x before 4.x.x), or ""."""
    found: list[str] = []
    for part in parts:
        if part.get_content_type() == "message/delivery-status":
            found += _STATUS.findall(_text_of(part))
    return sorted(found, key=lambda s: s[0], reverse=True)[0] if found else ""


class _OneLine(logging.Handler):
    """flufl.bounce logs a traceback per detector that trips; say it in one line of ours."""

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.WARNING:
            reason = type(record.exc_info[1]).__name__ if record.exc_info else ""
            args = record.args if isinstance(record.args, tuple) else ()
            detector = printable(args[0] if args else "", 80)
            log_event(log, "bounce_detector_failed", logging.DEBUG, detector=detector, error=reason)


_flufl = logging.getLogger("flufl.bounce")
_flufl.propagate = False
_flufl.handlers[:] = [_OneLine()]
