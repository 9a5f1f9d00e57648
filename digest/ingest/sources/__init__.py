"""The source formats: one module each, taking bytes (or text) and returning entries.

Pure.  A new format is one file here and one line in ``digest.ingest``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from digest.models import Entry
from digest.text import printable


def each_item(
    items: Iterable[Any], entry_of: Callable[[Any], Entry]
) -> tuple[tuple[Entry, ...], tuple[str, ...]]:
    """The entries of a source's items, each made on its own: an item that cannot be
    read (or that its decoding left as an exception) is a warning, never the source's end."""
    entries: list[Entry] = []
    warnings: list[str] = []
    for number, item in enumerate(items, start=1):
        try:
            if isinstance(item, RecursionError):
                raise ValueError("nested too deeply")
            entries.append(entry_of(item))
        except Exception as e:  # noqa: BLE001 - one item's trouble, whatever it is, is its own
            warnings.append(f"item {number}: {printable(e, 200)}; skipped")
    return tuple(entries), tuple(warnings)
