"""Parse the Hugging Face ``daily_papers`` JSON (a list of objects with a ``paper``).

Pure: takes bytes, returns entries.  ``paper.id`` is the arXiv id.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from digest.identity import arxiv_id_from
from digest.ingest.dates import iso_date
from digest.models import Entry, ParsedSource


def parse_hf_json(data: bytes) -> ParsedSource:
    """Parse a daily_papers response into entries; bad items become warnings."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ValueError(f"JSON is not UTF-8 (bad byte at offset {e.start})") from e
    entries: list[Entry] = []
    warnings: list[str] = []
    try:
        for number, item in enumerate(_items(text), start=1):
            try:
                if isinstance(item, RecursionError):
                    raise ValueError("nested too deeply")
                entries.append(_entry_from(item))
            except (TypeError, ValueError, KeyError, AttributeError) as e:
                warnings.append(f"item {number}: {e}; skipped")
    except json.JSONDecodeError as e:
        raise ValueError(f"invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from e
    return ParsedSource(format="hf-json", entries=tuple(entries), warnings=tuple(warnings))


_DECODER = json.JSONDecoder()
_SPACE = re.compile(r"[ \t\n\r]*")


def _items(text: str) -> Iterator[Any]:
    """Decode the top-level list one item at a time.

    An item nested deeper than the decoder can go is yielded as its
    ``RecursionError`` and skipped, so that it costs only itself.
    """
    at = _SPACE.match(text).end()  # type: ignore[union-attr]
    if not text.startswith("[", at):
        _DECODER.decode(text)  # invalid JSON raises here, with its position
        raise ValueError('JSON is not a list of daily papers (expected [ {"paper": ...}, ... ])')
    at = _SPACE.match(text, at + 1).end()  # type: ignore[union-attr]
    if text.startswith("]", at):
        return _end(text, at + 1)
    while True:
        try:
            item, at = _DECODER.raw_decode(text, at)
        except RecursionError as e:
            item, at = e, _end_of_value(text, at)
        yield item
        at = _SPACE.match(text, at).end()  # type: ignore[union-attr]
        if text.startswith("]", at):
            return _end(text, at + 1)
        if not text.startswith(",", at):
            raise json.JSONDecodeError("Expecting ',' delimiter", text, at)
        at = _SPACE.match(text, at + 1).end()  # type: ignore[union-attr]


def _end(text: str, at: int) -> None:
    at = _SPACE.match(text, at).end()  # type: ignore[union-attr]
    if at != len(text):
        raise json.JSONDecodeError("Extra data", text, at)


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
