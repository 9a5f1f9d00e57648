"""Transfer encodings: the one place that says how a text part goes on the wire (7bit,
8bit, quoted-printable or base64) and how many bytes that takes."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

#: The longest line SMTP carries, without its CRLF (RFC 5321 4.5.3.1.6).
MAX_LINE = 998


#: How long an HTML line may grow before it is broken inside a tag: well under SMTP's 998,
#: so that a part with no long text line can go unencoded (7bit, 8bit).
HTML_LINE_BYTES = 800


def short_lines(html: str, limit: int = HTML_LINE_BYTES) -> str:
    """The HTML with each line over ``limit`` bytes broken where a tag separates its
    attributes (whitespace there means nothing); text itself is never broken."""
    if len(html.encode()) <= limit or max(map(len, html.encode().split(b"\n"))) <= limit:
        return html
    return "\n".join(_broken(line, limit) for line in html.split("\n"))


def _broken(line: str, limit: int) -> str:
    if len(line.encode()) <= limit:
        return line
    pieces, start, size, last = [], 0, 0, -1
    in_tag, quote = False, ""
    for at, char in enumerate(line):
        size += len(char.encode())
        if quote:
            quote = "" if char == quote else quote
        elif in_tag:
            if char in "\"'":
                quote = char
            elif char == ">":
                in_tag = False
            elif char == " ":
                last = at
        elif char == "<":
            in_tag = True
        if size > limit and last > start:
            pieces.append(line[start:last])
            start, last = last + 1, -1
            size = len(line[start : at + 1].encode())
    pieces.append(line[start:])
    return "\n".join(pieces)


def transfer_encoded(text: str, *, eight_bit: bool) -> tuple[str, bytes]:
    """The Content-Transfer-Encoding of a text part, and its body with CRLF line ends:
    the smallest on the wire that the server takes.  The text as it is (7bit for
    ASCII, 8bit where the server offers 8BITMIME) when its lines are short enough,
    else quoted-printable (mostly ASCII) or base64 (CJK, say)."""
    text = text if text.endswith("\n") else text + "\n"
    if "\r" in text:  # rendered text has none; a source's might
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    raw = text.encode().replace(b"\n", b"\r\n")  # bytes.replace is the faster
    ascii_only = raw.isascii()
    if (ascii_only or eight_bit) and max(map(len, raw.split(b"\r\n"))) <= MAX_LINE:
        return "7bit" if ascii_only else "8bit", raw.rstrip(b"\r\n")
    # Soft line breaks follow the style of the first line end: CRLF here.
    quoted = binascii.b2a_qp(raw, istext=True).rstrip(b"\r\n")
    if len(quoted) <= base64_size(len(raw)):
        return "quoted-printable", quoted
    return "base64", base64.encodebytes(raw).replace(b"\n", b"\r\n").rstrip(b"\r\n")


def base64_size(raw_bytes: int) -> int:
    """What ``raw_bytes`` take in base64: 57 to a 76-character line, with its CRLF."""
    return -(-raw_bytes // 57) * 78


@dataclass(frozen=True)
class WireSize:
    """The bytes a piece of HTML takes on the wire, as quoted-printable and as base64.

    The message builder sends the part in whichever is smaller, or unencoded
    (7bit, 8bit), which is smaller still: the budget holds for any server.
    """

    quoted_printable: int = 0
    base64: int = 0

    def __add__(self, other: WireSize) -> WireSize:
        return WireSize(self.quoted_printable + other.quoted_printable, self.base64 + other.base64)

    @property
    def sent(self) -> int:
        return min(self.quoted_printable, self.base64)


#: The bytes quoted-printable writes as =XX: "=" and everything above "~".
_QP_ESCAPED = b"=" + bytes(range(127, 256))


def wire_size(text: str) -> WireSize:
    """An estimate, a little generous, of ``text``'s size in each transfer encoding."""
    raw = text.encode()
    escaped = len(raw) - len(raw.translate(None, _QP_ESCAPED))  # each becomes =XX
    quoted = len(raw) + 2 * escaped
    # A soft line break (=CRLF) every 75 characters, and CRLF line ends.
    quoted += 3 * (quoted // 75) + text.count("\n")
    return WireSize(quoted, base64_size(len(raw)))
