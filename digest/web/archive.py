"""The archive: every edition as a web page, as JSON and as an Atom feed.

No personal data here: these are the pages a digest's "view in browser" opens.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from flask import Blueprint, Response, abort, jsonify, render_template
from markupsafe import Markup

from digest.models import StoredEntry
from digest.render import PaperView, long_date, paper_view
from digest.text import safe_text
from digest.tokens import edition_url
from digest.web.context import context, page

archive = Blueprint("archive", __name__)

#: A web page has room for the abstract that an email leaves to a link.
_PAGE_ABSTRACT_CHARS = 2_000


def latest_papers(limit: int) -> tuple[date | None, list[PaperView]]:
    """The latest edition's most upvoted papers, for the home page."""
    found = context()
    editions = found.store.recent_editions(1)
    if not editions:
        return None, []
    entries = found.store.edition_entries(editions[0].id)
    entries.sort(key=lambda s: -(s.entry.upvotes or 0))
    return editions[0].day, [paper_view(s, 0) for s in entries[:limit]]


def _edition_rows(limit: int = 366) -> list[dict[str, Any]]:
    return [
        {
            "day": edition.day,
            "label": long_date(edition.day),
            "entry_count": edition.entry_count,
            "updated": edition.created_at.isoformat(),
            "edition_id": edition.id,
        }
        for edition in context().store.recent_editions(limit)
    ]


@archive.get("/archive")
def listing() -> tuple[str, int]:
    """Every edition, newest first."""
    return page("archive.html", editions=_edition_rows(), form={})


@archive.get("/archive/<day>")
def edition(day: str) -> tuple[str, int]:
    """One edition as a web page: no personal data (the "view in browser" link)."""
    try:
        wanted = date.fromisoformat(day)
    except ValueError:
        abort(404)
    found = context()
    shown = found.store.get_edition(wanted)
    if shown is None:
        abort(404, description="There is no edition for that day.")
    papers = [paper_view(s, _PAGE_ABSTRACT_CHARS) for s in found.store.edition_entries(shown.id)]
    return page("edition.html", label=long_date(wanted), papers=papers, form={})


@archive.get("/archive.json")
def as_json() -> Response:
    """The editions as JSON, with their papers' titles and links."""
    found = context()
    rows = _edition_rows(60)
    carried = found.store.entries_by_edition([row["edition_id"] for row in rows])
    editions = [
        {
            "date": row["day"].isoformat(),
            "url": edition_url(found.settings.base_url, row["day"]),
            "papers": [_paper_json(s) for s in carried[row["edition_id"]]],
        }
        for row in rows
    ]
    return jsonify(editions=editions)


def _paper_json(stored: StoredEntry) -> dict[str, Any]:
    entry, view = stored.entry, paper_view(stored, 0)
    return {
        "title": entry.title,
        "url": view.url,
        "arxiv_id": entry.arxiv_id,
        "tldr": view.tldr,
        "abstract": entry.abstract,
        "authors": list(entry.authors),
        "organization": entry.organization,
        "links": {label: href for label, href in view.links},
        "upvotes": entry.upvotes,
        "stars": view.stars,
    }


def _papers_html(papers: list[PaperView]) -> Markup:
    """An edition's papers as the HTML of its Atom entry (the template escapes it again,
    for the XML)."""
    items = (
        Markup('<li><a href="{}">{}</a>{}{}</li>').format(
            p.url or "",
            safe_text(p.title),
            Markup(" \u2014 {}").format(safe_text(p.byline)) if p.byline else "",
            Markup("<br>{}").format(safe_text(p.tldr)) if p.tldr else "",
        )
        for p in papers
    )
    return Markup("<ul>{}</ul>").format(Markup("").join(items))


@archive.get("/archive.atom")
def as_atom() -> Response:
    """The editions as an Atom feed, for people who prefer a reader."""
    rows = _edition_rows(60)
    carried = context().store.entries_by_edition([row["edition_id"] for row in rows])
    for row in rows:
        # Rows stored before the ingest gate may hold characters XML forbids.
        papers = [paper_view(s, 0) for s in carried[row["edition_id"]]]
        row["titles"] = [safe_text(p.title) for p in papers[:10]]
        row["content"] = str(_papers_html(papers))  # plain text to the template: escaped
    body = render_template(
        "archive.atom.xml", editions=rows, base_url=context().settings.base_url,
        updated=rows[0]["updated"] if rows else datetime(2000, 1, 1).isoformat() + "Z",
    )  # fmt: skip
    return Response(body, mimetype="application/atom+xml")
