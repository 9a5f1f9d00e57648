"""Parse RSS 2.0 and Atom feeds with feedparser, including arXiv's RSS and API Atom.

Pure: takes bytes, returns entries.  arXiv re-announcements (``replace``,
``cross``) are counted as skipped, not returned, since they are not new papers.
"""

from __future__ import annotations

import re
import time
from datetime import date
from html.parser import HTMLParser
from typing import Any

from digest.identity import arxiv_id_from
from digest.ingest.sources import each_item
from digest.models import Entry, ParsedSource
from digest.text import web_url

_ARXIV_ABSTRACT = re.compile(
    r"^\s*arXiv:\S+\s+Announce Type:\s*(?P<type>[\w-]+)\s*Abstract:\s*", re.I
)
_HTML_TYPES = {"text/html", "application/xhtml+xml"}


def parse_feed(data: bytes) -> ParsedSource:
    """Parse RSS or Atom bytes into entries."""
    import feedparser  # here: most commands never parse a feed, and it is slow to import

    parsed = feedparser.parse(data)
    if parsed.bozo and not parsed.entries:
        raise ValueError(f"not a readable feed: {parsed.get('bozo_exception')}")
    warnings: list[str] = []
    if parsed.bozo:
        warnings.append(
            f"feed is not well-formed ({parsed.get('bozo_exception')}); read what parsed"
        )
    skipped = 0
    wanted = []
    for item in parsed.entries:
        if _is_new(item):
            wanted.append(item)
        else:
            skipped += 1
    entries, problems = each_item(wanted, _entry_from)
    warnings += problems
    return ParsedSource(
        format="feed", entries=tuple(entries), warnings=tuple(warnings), skipped=skipped
    )


def _is_new(item: Any) -> bool:
    """Whether an item announces a new paper (arXiv's feeds also list replacements)."""
    summary = _text_of(item.get("summary_detail") or {}, item.get("summary", ""))
    announce = item.get("arxiv_announce_type")
    marker = _ARXIV_ABSTRACT.match(summary) if isinstance(summary, str) else None
    announce = announce or (marker["type"] if marker else None)
    return not (announce and str(announce).strip().lower() != "new")


def _entry_from(item: Any) -> Entry:
    summary = _text_of(item.get("summary_detail") or {}, item.get("summary", ""))
    marker = _ARXIV_ABSTRACT.match(summary)
    if marker:
        summary = summary[marker.end() :]
    title = _text_of(item.get("title_detail") or {}, item.get("title", ""))
    if not title.strip():
        raise ValueError("no title")
    arxiv_id = arxiv_id_from(item.get("id")) or arxiv_id_from(item.get("link"))
    url = web_url(item.get("link"))
    pdf_url = None
    for link in item.get("links", []):
        if link.get("type") == "application/pdf" or link.get("title") == "pdf":
            pdf_url = web_url(link.get("href"))
    if arxiv_id:
        url = url or f"https://arxiv.org/abs/{arxiv_id}"
        pdf_url = pdf_url or f"https://arxiv.org/pdf/{arxiv_id}"
    return Entry(
        title=title,
        abstract=summary,
        authors=_authors_of(item),
        url=url,
        pdf_url=pdf_url,
        arxiv_id=arxiv_id,
        published=_date_of(item.get("published_parsed") or item.get("updated_parsed")),
        categories=tuple(t["term"] for t in item.get("tags", []) if t.get("term")),
    )


def _authors_of(item: Any) -> tuple[str, ...]:
    names = [a.get("name", "") for a in item.get("authors", []) if a.get("name")]
    if len(names) == 1 and "," in names[0]:
        # arXiv RSS puts every author in one dc:creator, comma-separated.
        names = names[0].split(",")
    return tuple(n.strip() for n in names if n.strip())


def _date_of(parsed: time.struct_time | None) -> date | None:
    """The date a feed gives, or None when it is none (year 0, a 30th of February)."""
    try:
        return date(parsed.tm_year, parsed.tm_mon, parsed.tm_mday) if parsed else None
    except (ValueError, TypeError, OverflowError):
        return None


def _text_of(detail: Any, value: str) -> str:
    if detail.get("type") in _HTML_TYPES and ("<" in value or "&" in value):
        return html_to_text(value)
    return value


class _TextExtractor(HTMLParser):
    _BREAKS = {"p", "br", "div", "li", "tr", "h1", "h2", "h3", "h4", "blockquote"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._BREAKS:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def html_to_text(markup: str) -> str:
    """Return the text of an HTML fragment, paragraphs kept as blank lines."""
    extractor = _TextExtractor()
    extractor.feed(markup)
    extractor.close()
    return "".join(extractor.parts)
