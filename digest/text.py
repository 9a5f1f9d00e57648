"""Text from outside, held to one set of rules wherever it enters.

Pure.  Two gates, one alphabet:

- ``printable`` for text digest only reports (a server's reason phrase, an
  error, a bounce's Subject or Message-ID): whatever comes in, what comes
  out is one line of printable characters (no controls, no bidi overrides)
  that stores on SQLite and PostgreSQL alike, fits in XML 1.0, and cannot
  steer a terminal.
- ``checked`` for text a person gives (a topic's label, a name, a paper key,
  a CSV cell, an admin's input): a control character is refused with the
  field named, before anything is stored.
"""

from __future__ import annotations

import re

from digest.errors import DigestError

_SURROGATE = re.compile("[\ud800-\udfff]")
#: Everything outside XML 1.0's Char production, and the C1 controls, which no text needs.
_FORBIDDEN = re.compile("[^\t\n\r\x20-\x7e\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
#: What a value a person gives may not hold: every control (C0, DEL, C1), the line
#: separators, lone surrogates and the two non-characters.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\ufffe\uffff]")
_CONTROL_BUT_SPACE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\ufffe\uffff]"
)


class TextError(DigestError):
    """A value a person gave that holds what no such value may: says which field and why."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


def safe_text(text: str) -> str:
    """Return text with lone surrogates replaced and XML-forbidden characters dropped."""
    return _FORBIDDEN.sub("", _SURROGATE.sub("\ufffd", text))


def printable(text: object, limit: int = 300) -> str:
    """One printable line of at most ``limit`` characters, whatever ``text`` holds:
    controls and line breaks become spaces, runs of space one space."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    text = str(text)
    if not text.isprintable():  # controls, format characters (bidi overrides), separators
        text = "".join(c if c.isprintable() else " " for c in text)
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def web_url(url: str | None) -> str | None:
    """The URL, stripped, when it is http(s): the only links digest shows or follows."""
    if url and url.strip().lower().startswith(("http://", "https://")):
        return url.strip()
    return None


def is_web_url(url: str) -> bool:
    """Whether ``url`` is http(s) (``web_url`` says it once for every caller)."""
    return web_url(url) is not None


def is_clean_line(text: str) -> bool:
    """Whether ``text`` holds no control, line break or lone surrogate (a URL, a key)."""
    return first_control(text) is None


def first_control(text: str, *, whitespace: bool = False) -> int | None:
    """Where the first character no typed value may hold is (tab, CR and LF allowed
    with ``whitespace``), or None."""
    found = (_CONTROL_BUT_SPACE if whitespace else _CONTROL).search(text)
    return found.start() if found else None


def checked(field: str, text: str, *, limit: int, whitespace: bool = False) -> str:
    """``text`` stripped, or ``TextError`` naming ``field`` when it holds a control
    character (tab, CR or LF too, unless ``whitespace``) or is longer than ``limit``."""
    at = first_control(text, whitespace=whitespace)
    if at is not None:
        raise TextError(field, f"control character U+{ord(text[at]):04X} is not allowed")
    text = text.strip()
    if len(text) > limit:
        raise TextError(field, f"longer than {limit:,} characters")
    return text
