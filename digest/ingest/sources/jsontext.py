"""Decode a JSON source so that one bad item costs only itself.

Pure.  The top level (a list, or an object whose members may be lists) is
walked here; each element of those lists is decoded on its own, and one
nested deeper than the decoder can go stands in the result as its
``RecursionError``, for the format's parser to skip with a warning.
Numbers too long to be counts (Python refuses to read over 4,300 digits) are
read as None, as are NaN and Infinity, which JSON does not have.
"""

from __future__ import annotations

import json
import re
from typing import Any

_SPACE = re.compile(r"[ \t\n\r]*")
#: Longer than any count a feed may carry (a 64-bit integer has 20 digits).
_MAX_DIGITS = 40


def _bounded_int(text: str) -> int | None:
    return int(text) if len(text) <= _MAX_DIGITS else None


_DECODER = json.JSONDecoder(parse_int=_bounded_int, parse_constant=lambda _: None)


def decode_utf8(data: bytes) -> str:
    """The text of a JSON source; ``ValueError`` when it is not UTF-8."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ValueError(f"JSON is not UTF-8 (bad byte at offset {e.start})") from e


def loads_each(text: str) -> Any:
    """Decode JSON, each element of a top-level list (or of a top-level object's lists)
    on its own; ``ValueError`` naming the place for JSON that is not well-formed."""
    value: Any
    try:
        at = _space(text, 0)
        if text.startswith("[", at):
            value, at = _array(text, at)
        elif text.startswith("{", at):
            value, at = _object(text, at)
        else:
            value, at = _DECODER.raw_decode(text, at)
        at = _space(text, at)
        if at != len(text):
            raise json.JSONDecodeError("Extra data", text, at)
    except json.JSONDecodeError as e:
        raise ValueError(f"invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from e
    return value


def _space(text: str, at: int) -> int:
    return _SPACE.match(text, at).end()  # type: ignore[union-attr]


def _array(text: str, at: int) -> tuple[list[Any], int]:
    items: list[Any] = []
    at = _space(text, at + 1)
    if text.startswith("]", at):
        return items, at + 1
    while True:
        item, at = _element(text, at)
        items.append(item)
        at = _space(text, at)
        if text.startswith("]", at):
            return items, at + 1
        if not text.startswith(",", at):
            raise json.JSONDecodeError("Expecting ',' delimiter", text, at)
        at = _space(text, at + 1)


def _object(text: str, at: int) -> tuple[dict[str, Any], int]:
    members: dict[str, Any] = {}
    at = _space(text, at + 1)
    if text.startswith("}", at):
        return members, at + 1
    while True:
        if not text.startswith('"', at):
            raise json.JSONDecodeError(
                "Expecting property name enclosed in double quotes", text, at
            )
        key, at = _DECODER.raw_decode(text, at)
        at = _space(text, at)
        if not text.startswith(":", at):
            raise json.JSONDecodeError("Expecting ':' delimiter", text, at)
        at = _space(text, at + 1)
        if text.startswith("[", at):
            members[key], at = _array(text, at)
        else:
            members[key], at = _element(text, at)
        at = _space(text, at)
        if text.startswith("}", at):
            return members, at + 1
        if not text.startswith(",", at):
            raise json.JSONDecodeError("Expecting ',' delimiter", text, at)
        at = _space(text, at + 1)


def _element(text: str, at: int) -> tuple[Any, int]:
    """One value, or its ``RecursionError`` when it nests too deep (and where it ends)."""
    try:
        return _DECODER.raw_decode(text, at)
    except RecursionError as e:
        return e, _end_of_value(text, at)


def _end_of_value(text: str, at: int) -> int:
    """Where the bracketed value starting at ``at`` ends, found without recursion."""
    depth = 0
    in_string = escaped = False
    for index in range(at, len(text)):
        char = text[index]
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
            if depth == 0:
                return index + 1
    raise json.JSONDecodeError("Unterminated array or object", text, len(text))
