"""Sources: turn a location (file path or URL) into entries.

Retrieval (``retrieve``) is I/O and makes no decisions; parsing is pure and
works on bytes, so parser tests need no network.  The format is detected
from the content, never from the file name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date

from digest.errors import SourceError
from digest.models import ParsedSource
from digest.sources.clean import EntryLimits, clean_entry, safe_text
from digest.sources.dump import parse_dump
from digest.sources.feeds import parse_feed
from digest.sources.hfjson import parse_hf_json
from digest.sources.retrieve import retrieve

__all__ = ["SourceLimits", "detect_format", "parse_source", "read_source", "retrieve"]

_FEED_ROOT = re.compile(rb"<(?:rss|feed|rdf:RDF)\b")


@dataclass(frozen=True)
class SourceLimits:
    """Caps applied to everything a source sends, since no source is trusted."""

    max_source_bytes: int = 20_000_000
    max_title_chars: int = 500
    max_abstract_chars: int = 10_000
    max_authors: int = 100
    timeout_seconds: float = 30.0


def detect_format(data: bytes) -> str:
    """Name the format of a source from its first bytes: dump, feed or hf-json."""
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    if b"\x00" in data[:8192]:
        raise ValueError("binary data, not a page dump, feed or JSON")
    if head.startswith((b"[", b"{")):
        return "hf-json"
    if head.startswith(b"<"):
        if _FEED_ROOT.search(head):
            return "feed"
        raise ValueError("markup that is neither RSS nor Atom (an HTML page?)")
    return "dump"


def parse_source(
    data: bytes,
    *,
    name: str,
    today: date,
    edition_date: date | None = None,
    limits: SourceLimits | None = None,
) -> ParsedSource:
    """Parse the bytes of one source into capped, whitespace-clean entries."""
    limits = limits or SourceLimits()
    try:
        if not data.strip():
            raise ValueError("the source is empty")
        kind = detect_format(data)
        if kind == "hf-json":
            parsed = parse_hf_json(data)
        elif kind == "feed":
            parsed = parse_feed(data)
        else:
            parsed = parse_dump(_decode_text(data), today=today, edition_date=edition_date)
    except ValueError as e:
        raise SourceError(name, str(e)) from e
    except RecursionError as e:
        raise SourceError(name, "nested too deeply to read") from e
    except Exception as e:  # a parser's bug must not stop the other sources
        raise SourceError(name, f"could not be parsed ({type(e).__name__}: {e})") from e
    warnings = list(parsed.warnings)
    entries = []
    caps = EntryLimits(limits.max_title_chars, limits.max_abstract_chars, limits.max_authors)
    for number, entry in enumerate(parsed.entries, start=1):
        try:
            cleaned, notes = clean_entry(entry, caps)
        except ValueError as e:
            title = safe_text(entry.title if isinstance(entry.title, str) else "")[:40]
            warnings.append(f"item {number} ({title!r}): {e}; skipped")
            continue
        entries.append(cleaned)
        warnings.extend(notes)
    return replace(parsed, entries=tuple(entries), warnings=tuple(warnings))


def read_source(
    location: str,
    *,
    name: str | None = None,
    today: date,
    edition_date: date | None = None,
    limits: SourceLimits | None = None,
) -> ParsedSource:
    """Retrieve and parse one source; raise ``SourceError`` naming it on failure."""
    limits = limits or SourceLimits()
    label = name or location
    data = retrieve(
        location, max_bytes=limits.max_source_bytes, timeout=limits.timeout_seconds, name=label
    )
    return parse_source(data, name=label, today=today, edition_date=edition_date, limits=limits)


def _decode_text(data: bytes) -> str:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ValueError(f"not UTF-8 text (bad byte at offset {e.start})") from e
    return text.replace("\r\n", "\n").replace("\r", "\n")
