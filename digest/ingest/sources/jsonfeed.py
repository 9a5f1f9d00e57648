"""Parse JSON Feed 1.0 and 1.1 (jsonfeed.org), common for blogs and lab news.

Pure: takes bytes, returns entries.  Bad items become warnings.
"""

from __future__ import annotations

from typing import Any

from digest.identity import arxiv_id_from
from digest.ingest.dates import iso_date
from digest.ingest.sources import each_item
from digest.ingest.sources.feeds import html_to_text
from digest.ingest.sources.jsontext import decode_utf8, loads_each
from digest.models import Entry, ParsedSource

VERSION_PREFIX = "https://jsonfeed.org/version/"


def is_json_feed(data: Any) -> bool:
    """Whether decoded JSON is a JSON Feed (an object whose version is jsonfeed.org's)."""
    return isinstance(data, dict) and str(data.get("version", "")).startswith(VERSION_PREFIX)


def parse_json_feed(data: bytes) -> ParsedSource:
    """Parse a JSON Feed into entries; bad items become warnings."""
    feed = loads_each(decode_utf8(data))
    if not is_json_feed(feed):
        raise ValueError(f"not a JSON Feed (no version starting {VERSION_PREFIX})")
    items = feed.get("items")
    if not isinstance(items, list):
        raise ValueError("a JSON Feed needs an items list")
    feed_authors = _authors(feed)
    entries, warnings = each_item(items, lambda item: _entry_from(item, feed_authors))
    return ParsedSource(format="json-feed", entries=entries, warnings=warnings)


def _entry_from(item: Any, feed_authors: tuple[str, ...]) -> Entry:
    if not isinstance(item, dict):
        raise ValueError("not an object")
    title = item.get("title")
    if not isinstance(title, str) or not title.strip():
        raise ValueError("no title")
    text = item.get("content_text") or item.get("summary")
    if not isinstance(text, str) or not text:
        html = item.get("content_html")
        text = html_to_text(html) if isinstance(html, str) else ""
    url = item.get("url") if isinstance(item.get("url"), str) else None
    arxiv_id = arxiv_id_from(url) or arxiv_id_from(str(item.get("id") or ""))
    tags = item.get("tags")
    summary = item.get("summary")
    return Entry(
        title=title,
        abstract=text,
        # JSON Feed's summary is "a plain text sentence or two"; it is the abstract when
        # there is no content, and no summary of itself then.
        summary=summary if isinstance(summary, str) and summary != text else "",
        authors=_authors(item) or feed_authors,
        url=url,
        arxiv_id=arxiv_id,
        published=iso_date(item.get("date_published")),
        categories=tuple(t for t in tags if isinstance(t, str)) if isinstance(tags, list) else (),
    )


def _authors(holder: dict[str, Any]) -> tuple[str, ...]:
    people = holder.get("authors")
    if not isinstance(people, list):  # version 1.0 had one "author"
        people = [holder["author"]] if isinstance(holder.get("author"), dict) else []
    return tuple(
        p["name"] for p in people if isinstance(p, dict) and isinstance(p.get("name"), str)
    )
