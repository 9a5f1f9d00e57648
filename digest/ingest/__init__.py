"""Sources: turn a location (file path or URL) into entries.

Retrieval (``retrieve``) is I/O and makes no decisions; parsing is pure and
works on bytes, so parser tests need no network.  The format is detected
from the content, never from the file name, unless the configuration names it.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date

from digest.errors import SourceError
from digest.ingest.clean import EntryLimits, clean_entry
from digest.ingest.dedupe import Dedupe, Known, dedupe
from digest.ingest.retrieve import FetchPolicy, IpNetwork, Retrieved, Validators, is_url, retrieve
from digest.ingest.sources.dump import parse_dump
from digest.ingest.sources.feeds import parse_feed
from digest.ingest.sources.hfjson import parse_hf_json
from digest.ingest.sources.jsonfeed import parse_json_feed
from digest.models import ParsedSource
from digest.text import safe_text

__all__ = [
    "FORMATS",
    "Dedupe",
    "FetchPolicy",
    "IpNetwork",
    "Known",
    "Retrieved",
    "SourceLimits",
    "Validators",
    "dedupe",
    "detect_format",
    "is_url",
    "parse_source",
    "read_source",
    "retrieve",
]

#: The formats a source can have; ``format`` in ``[[sources]]`` names one to skip detection.
FORMATS = ("dump", "feed", "hf-json", "json-feed")
# A root element, with or without a namespace prefix (<rss>, <atom:feed>, <rdf:RDF>).
_FEED_ROOT = re.compile(rb"<(?:[\w.-]+:)?(?:rss|feed|RDF)[\s>/]")
_XML_ENCODING = re.compile(r"""^(<\?xml[^>]*?encoding\s*=\s*)(["'])[\w.-]+\2""")
_BOMS = (
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\xfe\xff", "utf-16-be"),
    (b"\xff\xfe", "utf-16-le"),
)
_PARSERS = {"feed": parse_feed, "hf-json": parse_hf_json, "json-feed": parse_json_feed}


#: Caps applied to every entry a source sends, since no source is trusted.
SourceLimits = EntryLimits


def as_utf8(data: bytes) -> bytes:
    """The bytes of a UTF-16 or UTF-32 source (told by its BOM) as UTF-8; others unchanged."""
    for bom, codec in _BOMS:
        if data.startswith(bom) and _starts_ascii(data[len(bom) :], codec):
            try:
                text = data[len(bom) :].decode(codec)
            except UnicodeDecodeError as e:
                raise ValueError(f"not valid {codec.upper()} (bad data at offset {e.start})") from e
            # An XML declaration naming UTF-16 would now be wrong: it is UTF-8.
            return _XML_ENCODING.sub(r"\1\2utf-8\2", text, count=1).encode("utf-8")
    return data


def _starts_ascii(rest: bytes, codec: str) -> bool:
    """Whether text after a BOM starts with an ASCII character in that encoding, as every
    feed, JSON document and page dump does: bytes that only look like a BOM are not text."""
    width = 4 if codec.startswith("utf-32") else 2
    unit = rest[:width]
    if len(unit) < width:
        return False
    code = int.from_bytes(unit, "little" if codec.endswith("le") else "big")
    return 0 < code < 0x80


def detect_format(data: bytes) -> str:
    """Name the format of a source from its first bytes: one of ``FORMATS``."""
    data = as_utf8(data)
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    if b"\x00" in data[:8192]:
        raise ValueError("binary data, not a page dump, feed or JSON")
    if head.startswith(b"{") and b"jsonfeed.org/version/" in data:
        return "json-feed"
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
    kind: str | None = None,
) -> ParsedSource:
    """Parse the bytes of one source into capped, whitespace-clean entries.

    ``kind`` (one of ``FORMATS``) skips detection.
    """
    limits = limits or SourceLimits()
    try:
        data = as_utf8(data)
        if not data.strip():
            raise ValueError("the source is empty")
        kind = kind or detect_format(data)
        if kind == "dump":
            text = _decode_text(data)
            parsed = parse_dump(text, today=today, edition_date=edition_date)
            parsed = _without_bad_bytes(parsed, text)
        else:
            parsed = _PARSERS[kind](data)
    except ValueError as e:
        raise SourceError(name, str(e)) from e
    except RecursionError as e:
        raise SourceError(name, "nested too deeply to read") from e
    except Exception as e:  # a parser's bug must not stop the other sources
        raise SourceError(name, f"could not be parsed ({type(e).__name__}: {e})") from e
    warnings = list(parsed.warnings)
    entries = []
    for number, entry in enumerate(parsed.entries, start=1):
        try:
            cleaned, notes = clean_entry(entry, limits)
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
    policy: FetchPolicy | None = None,
) -> ParsedSource:
    """Retrieve and parse one source; raise ``SourceError`` naming it on failure."""
    label = name or location
    retrieved = retrieve(location, policy=policy or FetchPolicy(), name=label)
    data = retrieved.data or b""
    return parse_source(data, name=label, today=today, edition_date=edition_date, limits=limits)


def _decode_text(data: bytes) -> str:
    """A dump's text; a byte that is not UTF-8 stands as a lone surrogate, for
    ``_without_bad_bytes`` to drop the entry that holds it."""
    text = data.decode("utf-8-sig", "surrogateescape")
    return text.replace("\r\n", "\n").replace("\r", "\n")


_BAD_BYTE = re.compile("[\udc80-\udcff]")


def _without_bad_bytes(parsed: ParsedSource, text: str) -> ParsedSource:
    """The entries whose text was UTF-8; ``ValueError`` when none was."""
    first = _BAD_BYTE.search(text)
    if first is None:
        return parsed
    bad = [_BAD_BYTE.search(e.title + e.abstract) is not None for e in parsed.entries]
    if all(bad):
        raise ValueError(f"not UTF-8 text (bad byte at offset {first.start()})")
    good = tuple(e for e, is_bad in zip(parsed.entries, bad, strict=True) if not is_bad)
    notes = tuple(
        f"{safe_text(e.title)[:40]!r}: not UTF-8 text; skipped"
        for e, is_bad in zip(parsed.entries, bad, strict=True)
        if is_bad
    )
    return replace(parsed, entries=good, warnings=parsed.warnings + notes)
