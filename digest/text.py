"""Text from outside, held to one set of rules wherever it enters.

Pure.  Two gates, one alphabet:

- ``printable`` for text digest only reports (a server's reason phrase, an
  error, a bounce's Subject or Message-ID): whatever comes in, what comes
  out is one line that stores on SQLite and PostgreSQL alike, fits in
  XML 1.0, and cannot steer a terminal.
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
#: What a one-line value may not hold: every control (C0, DEL, C1) and the line separators.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NOT_ONE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\ufffe\uffff]+")


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
    line = " ".join(_NOT_ONE_LINE.sub(" ", str(text)).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def is_clean_line(text: str) -> bool:
    """Whether ``text`` holds no control, line break or lone surrogate (a URL, a key)."""
    return not (_CONTROL.search(text) or _SURROGATE.search(text))


def checked(field: str, text: str, *, limit: int, lines: bool = False) -> str:
    """``text`` stripped, or ``TextError`` naming ``field`` when it holds a control
    character (a line break too, unless ``lines``) or is longer than ``limit``."""
    found = _CONTROL.search(text.replace("\n", "").replace("\r", "") if lines else text)
    if found:
        raise TextError(field, f"holds a control character (U+{ord(found.group()):04X})")
    if _SURROGATE.search(text) or "\ufffe" in text or "\uffff" in text:
        raise TextError(field, "holds a character that is not text")
    text = text.strip()
    if len(text) > limit:
        raise TextError(field, f"longer than {limit:,} characters")
    return text
