"""Parse the Hugging Face ``daily_papers`` JSON (a list of objects with a ``paper``).

Pure: takes bytes, returns entries.  ``paper.id`` is the arXiv id.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from digest.identity import arxiv_id_from
from digest.models import Entry, ParsedSource


def parse_hf_json(data: bytes) -> ParsedSource:
    """Parse a daily_papers response into entries; bad items become warnings."""
    try:
        items = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as e:
        raise ValueError(f"JSON is not UTF-8 (bad byte at offset {e.start})") from e
    except json.JSONDecodeError as e:
        raise ValueError(f"invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from e
    if not isinstance(items, list):
        raise ValueError('JSON is not a list of daily papers (expected [ {"paper": ...}, ... ])')
    entries: list[Entry] = []
    warnings: list[str] = []
    for number, item in enumerate(items, start=1):
        try:
            entries.append(_entry_from(item))
        except (TypeError, ValueError, KeyError, AttributeError) as e:
            warnings.append(f"item {number}: {e}; skipped")
    return ParsedSource(format="hf-json", entries=tuple(entries), warnings=tuple(warnings))


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
    upvotes = paper.get("upvotes")
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
        published=_date_of(paper.get("publishedAt") or item.get("publishedAt")),
        upvotes=upvotes if isinstance(upvotes, int) and not isinstance(upvotes, bool) else None,
    )


def _date_of(value: Any) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).date()
    except ValueError:
        return None
