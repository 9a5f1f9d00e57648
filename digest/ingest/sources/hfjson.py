"""Parse the Hugging Face ``daily_papers`` JSON (a list of objects with a ``paper``).

Pure: takes bytes, returns entries.  ``paper.id`` is the arXiv id.
"""

from __future__ import annotations

from typing import Any

from digest.identity import arxiv_id_from
from digest.ingest.dates import iso_date
from digest.ingest.sources import each_item
from digest.ingest.sources.jsontext import decode_utf8, loads_each
from digest.models import Entry, ParsedSource


def parse_hf_json(data: bytes) -> ParsedSource:
    """Parse a daily_papers response into entries; bad items become warnings."""
    items = loads_each(decode_utf8(data))
    if not isinstance(items, list):
        raise ValueError('JSON is not a list of daily papers (expected [ {"paper": ...}, ... ])')
    entries, warnings = each_item(items, _entry_from)
    return ParsedSource(format="hf-json", entries=entries, warnings=warnings)


def _entry_from(item: Any) -> Entry:
    if not isinstance(item, dict):
        raise ValueError("not an object")
    paper = item.get("paper", item)
    if not isinstance(paper, dict):
        raise ValueError("'paper' is not an object")
    title = paper.get("title") or item.get("title")
    if not isinstance(title, str) or not title.strip():
        raise ValueError("no title")
    summary = paper.get("summary") or item.get("summary") or ""
    arxiv_id = arxiv_id_from(str(paper.get("id") or ""))
    return Entry(
        title=title,
        abstract=summary if isinstance(summary, str) else "",
        authors=tuple(
            a["name"]
            for a in paper.get("authors") or []
            if isinstance(a, dict) and isinstance(a.get("name"), str) and not a.get("hidden")
        ),
        url=f"https://arxiv.org/abs/{arxiv_id}" if arxiv_id else None,
        pdf_url=f"https://arxiv.org/pdf/{arxiv_id}" if arxiv_id else None,
        hf_url=f"https://huggingface.co/papers/{arxiv_id}" if arxiv_id else None,
        arxiv_id=arxiv_id,
        published=iso_date(paper.get("publishedAt") or item.get("publishedAt")),
        upvotes=_count(paper.get("upvotes")),
        summary=_text(paper.get("ai_summary")),
        code_url=_text(paper.get("githubRepo")) or None,
        stars=_count(paper.get("githubStars")),
        organization=_organization(paper.get("organization"))
        or _organization(item.get("organization")),
    )


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _organization(value: Any) -> str | None:
    """The organisation's full name (``{"name": "caltech", "fullname": "California ..."}``)."""
    if not isinstance(value, dict):
        return None
    return _text(value.get("fullname")) or _text(value.get("name")) or None
