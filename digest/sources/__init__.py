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
from digest.models import Entry, ParsedSource
from digest.sources.dump import parse_dump
from digest.sources.feeds import parse_feed
from digest.sources.hfjson import parse_hf_json
from digest.sources.retrieve import retrieve

__all__ = ["SourceLimits", "detect_format", "parse_source", "read_source", "retrieve"]

_FEED_ROOT = re.compile(rb"<(?:rss|feed|rdf:RDF)\b")
_SPACE_RUN = re.compile(r"\s+")
_BLANK_LINES = re.compile(r"\n\s*\n")


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
    warnings = list(parsed.warnings)
    entries = []
    for entry in parsed.entries:
        capped, notes = _clean_entry(entry, limits)
        entries.append(capped)
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


def _clean_text(text: str) -> str:
    paragraphs = (_SPACE_RUN.sub(" ", p).strip() for p in _BLANK_LINES.split(text.strip()))
    return "\n\n".join(p for p in paragraphs if p)


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "\u2026"


def _clean_entry(entry: Entry, limits: SourceLimits) -> tuple[Entry, list[str]]:
    title = _SPACE_RUN.sub(" ", entry.title).strip()
    abstract = _clean_text(entry.abstract)
    authors = tuple(a for a in (_SPACE_RUN.sub(" ", a).strip() for a in entry.authors) if a)
    notes = []
    if len(title) > limits.max_title_chars:
        notes.append(f"title cut to {limits.max_title_chars} characters: {title[:60]!r}...")
        title = _shorten(title, limits.max_title_chars)
    if len(abstract) > limits.max_abstract_chars:
        notes.append(f"abstract cut to {limits.max_abstract_chars} characters: {title[:60]!r}")
        abstract = _shorten(abstract, limits.max_abstract_chars)
    if len(authors) > limits.max_authors:
        authors = authors[: limits.max_authors]
    authors = tuple(_shorten(a, 200) for a in authors)
    cleaned = replace(entry, title=title, abstract=abstract, authors=authors)
    return cleaned, notes
