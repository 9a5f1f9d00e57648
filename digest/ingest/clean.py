"""Make a parsed entry safe to store, index, show and serialise: the one gate every source passes.

Pure.  Whatever this returns stores on SQLite and PostgreSQL alike and fits
in XML 1.0 (the archive's Atom feed): lone surrogates become U+FFFD,
characters XML forbids (NUL and the other controls) are dropped, integers
are clamped to the column's range, and every length cap holds after
normalisation.  An entry that cannot be kept raises ``ValueError``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from digest.identity import arxiv_id_given
from digest.models import Entry
from digest.text import is_clean_line, safe_text, web_url

_SPACE_RUN = re.compile(r"\s+")
_BLANK_LINES = re.compile(r"\n\s*\n")

#: The range of the ``upvotes`` column (a 32-bit integer on PostgreSQL).
MAX_COUNT = 2**31 - 1
MAX_URL_CHARS = 2_000
MAX_AUTHOR_CHARS = 200
MAX_CATEGORIES = 20
MAX_CATEGORY_CHARS = 64
MAX_SUMMARY_CHARS = 600
MAX_ORGANIZATION_CHARS = 200


@dataclass(frozen=True)
class EntryLimits:
    """The caps on one entry's fields."""

    max_title_chars: int = 500
    max_abstract_chars: int = 10_000
    max_authors: int = 100


def clean_entry(entry: Entry, limits: EntryLimits) -> tuple[Entry, list[str]]:
    """Return the entry made safe and capped, with notes on what was cut."""
    title = _one_line(_text(entry.title))
    if not title:
        raise ValueError("no title")
    abstract = _paragraphs(_text(entry.abstract))
    authors = tuple(a for a in (_one_line(_text(a)) for a in entry.authors) if a)
    notes = []
    if len(title) > limits.max_title_chars:
        notes.append(f"title cut to {limits.max_title_chars} characters: {title[:60]!r}...")
        title = _shorten(title, limits.max_title_chars)
    if len(abstract) > limits.max_abstract_chars:
        notes.append(f"abstract cut to {limits.max_abstract_chars} characters: {title[:60]!r}")
        abstract = _shorten(abstract, limits.max_abstract_chars)
    categories = tuple(
        c[:MAX_CATEGORY_CHARS] for c in (_one_line(_text(c)) for c in entry.categories) if c
    )
    cleaned = replace(
        entry,
        title=title,
        abstract=abstract,
        authors=tuple(_shorten(a, MAX_AUTHOR_CHARS) for a in authors[: limits.max_authors]),
        url=_url(entry.url),
        pdf_url=_url(entry.pdf_url),
        hf_url=_url(entry.hf_url),
        arxiv_id=_arxiv_id(entry.arxiv_id),
        upvotes=_count(entry.upvotes),
        categories=categories[:MAX_CATEGORIES],
        summary=_shorten(_one_line(_text(entry.summary)), MAX_SUMMARY_CHARS),
        code_url=_url(entry.code_url),
        stars=_count(entry.stars),
        organization=_shorten(_one_line(_text(entry.organization)), MAX_ORGANIZATION_CHARS) or None,
    )
    return cleaned, notes


def _text(value: object) -> str:
    return safe_text(value) if isinstance(value, str) else ""


def _one_line(text: str) -> str:
    return _SPACE_RUN.sub(" ", text).strip()


def _paragraphs(text: str) -> str:
    paragraphs = (_one_line(p) for p in _BLANK_LINES.split(text.strip()))
    return "\n\n".join(p for p in paragraphs if p)


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "\u2026"


def _url(url: str | None) -> str | None:
    if not isinstance(url, str):
        return None
    url = url.strip()
    if len(url) > MAX_URL_CHARS or not is_clean_line(url) or not safe_text(url) == url:
        return None
    return web_url(url)


def _arxiv_id(arxiv_id: str | None) -> str | None:
    # Entry has already reduced a recognisable id to its bare form; anything else
    # ("In", a DOI) is no arXiv id, and would make a false identity.
    if isinstance(arxiv_id, str) and arxiv_id_given(arxiv_id) == arxiv_id:
        return arxiv_id
    return None


def _count(value: int | None) -> int | None:
    if not isinstance(value, int) or isinstance(value, bool):
        return None
    return min(max(value, 0), MAX_COUNT)
