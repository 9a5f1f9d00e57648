"""The archive: every edition as a web page, as JSON and as an Atom feed.

No personal data here: these are the pages a digest's "view in browser" opens.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from flask import Blueprint, Response, abort, g, jsonify, render_template, request
from markupsafe import Markup

from digest.app import PaperView, long_date, paper_view
from digest.models import Edition, StoredEntry
from digest.text import safe_text
from digest.tokens import edition_url
from digest.web.context import context, newsletters, page, use_newsletter

archive = Blueprint("archive", __name__)


@archive.url_value_preprocessor
def _newsletter_of_the_path(_: str | None, values: dict[str, Any] | None) -> None:
    """``/n/<slug>/archive...``: the pages of that newsletter (without: the first's)."""
    slug = (values or {}).pop("newsletter", None)
    if slug is not None:
        newsletters().of(slug)  # 404 for none such
        use_newsletter(slug)


@archive.url_defaults
def _same_newsletter(_: str, values: dict[str, Any]) -> None:
    """Links from a newsletter's pages to the archive stay in that newsletter."""
    if "newsletter" not in values and g.get("newsletter") is not None:
        values["newsletter"] = g.newsletter


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


@archive.get("/archive", defaults={"newsletter": None})
@archive.get("/n/<newsletter>/archive")
def listing() -> tuple[str, int]:
    """Every edition, newest first."""
    return page("archive.html", editions=_edition_rows(), form={})


@archive.get("/archive/<day>", defaults={"newsletter": None})
@archive.get("/n/<newsletter>/archive/<day>")
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


#: Editions on one page of the JSON Feed and the Atom feed (a week), and papers at most
#: of one edition in them (the edition's page has them all): a page stays well under
#: 2 MB at any archive size.
FEED_PAGE_EDITIONS = 7
FEED_EDITION_PAPERS = 60
_FEED_ABSTRACT_CHARS = 800
_FEED_AUTHORS = 10
#: Feed readers poll: they may keep a page this long, and ask again with its ETag.
_FEED_CACHE = "public, max-age=300"


@dataclass(frozen=True)
class FeedPage:
    """One page of the public feeds: its editions, and the day the next page starts
    before (None on the last page)."""

    editions: list[Edition]
    before: date | None
    next_before: date | None

    def etag(self, kind: str) -> str:
        seen = "|".join(
            f"{e.id}:{e.day}:{e.entry_count}:{e.created_at.isoformat()}" for e in self.editions
        )
        return hashlib.sha256(f"{kind}|{self.before}|{seen}".encode()).hexdigest()[:32]


def _feed_page() -> FeedPage:
    """The page ``?before=YYYY-MM-DD`` asks for (the newest without it); 404 for a bad one."""
    asked = request.args.get("before")
    before = None
    if asked is not None:
        try:
            before = date.fromisoformat(asked[:10])
        except ValueError:
            abort(404)
    found = context().store.recent_editions(FEED_PAGE_EDITIONS + 1, before=before)
    shown = found[:FEED_PAGE_EDITIONS]
    return FeedPage(shown, before, shown[-1].day if len(found) > len(shown) else None)


def _feed_response(kind: str, build: Callable[[FeedPage], Response]) -> Response:
    """A feed page with its validators: a reader that has it gets a 304 at once."""
    shown = _feed_page()
    tag = shown.etag(kind)
    if request.if_none_match.contains(tag):
        response = Response(status=304)
    else:
        response = build(shown)
    response.set_etag(tag)
    response.headers["Cache-Control"] = _FEED_CACHE
    return response


def _page_url(path: str, before: date | None) -> str:
    base = context().settings.site_url
    return f"{base}{path}" + (f"?before={before.isoformat()}" if before else "")


@archive.get("/archive.json", defaults={"newsletter": None})
@archive.get("/n/<newsletter>/archive.json")
def as_json() -> Response:
    """The editions as a JSON Feed 1.1, a week a page (``next_url``), each item an
    edition with its papers under ``_digest``."""
    return _feed_response("json", _json_feed)


def _json_feed(shown: FeedPage) -> Response:
    found = context()
    carried = found.store.entries_by_edition([e.id for e in shown.editions])
    title = found.settings.title
    items = []
    for edition in shown.editions:
        papers = carried[edition.id]
        shown_papers = papers[:FEED_EDITION_PAPERS]
        url = edition_url(found.settings.site_url, edition.day)
        items.append(
            {
                "id": url,
                "url": url,
                "title": f"{title}, {long_date(edition.day)}",
                "content_text": "\n".join(safe_text(s.entry.title) for s in shown_papers),
                "date_published": edition.created_at.isoformat(),
                "_digest": {
                    "date": edition.day.isoformat(),
                    "papers_total": len(papers),
                    "papers": [_paper_json(s) for s in shown_papers],
                },
            }
        )
    feed: dict[str, Any] = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": title,
        "home_page_url": f"{found.settings.site_url}/archive",
        "feed_url": _page_url("/archive.json", shown.before),
        "items": items,
    }
    if shown.next_before is not None:
        feed["next_url"] = _page_url("/archive.json", shown.next_before)
    response = jsonify(feed)
    response.mimetype = "application/feed+json"
    return response


def _paper_json(stored: StoredEntry) -> dict[str, Any]:
    entry, view = stored.entry, paper_view(stored, 0)
    abstract = safe_text(entry.abstract)
    return {
        "title": safe_text(entry.title),
        "url": view.url,
        "arxiv_id": entry.arxiv_id,
        "tldr": view.tldr,
        "abstract": abstract[:_FEED_ABSTRACT_CHARS],
        "authors": [safe_text(a) for a in entry.authors[:_FEED_AUTHORS]],
        "organization": entry.organization,
        "links": {label: href for label, href in view.links},
        "upvotes": entry.upvotes,
        "stars": view.stars,
    }


def _papers_html(papers: list[PaperView], total: int, more_url: str) -> Markup:
    """An edition's papers as the HTML of its Atom entry (the template escapes it again,
    for the XML)."""
    items = (
        Markup('<li><a href="{}">{}</a>{}{}</li>').format(
            safe_text(p.url or ""),
            safe_text(p.title),
            Markup(" \u2014 {}").format(safe_text(p.byline)) if p.byline else "",
            Markup("<br>{}").format(safe_text(p.tldr)) if p.tldr else "",
        )
        for p in papers
    )
    more = (
        Markup('<p><a href="{}">and {} more</a></p>').format(more_url, total - len(papers))
        if total > len(papers)
        else ""
    )
    return Markup("<ul>{}</ul>{}").format(Markup("").join(items), more)


@archive.get("/archive.atom", defaults={"newsletter": None})
@archive.get("/n/<newsletter>/archive.atom")
def as_atom() -> Response:
    """The editions as an Atom feed, a week a page (RFC 5005's ``rel="next"``)."""
    return _feed_response("atom", _atom_feed)


def _atom_feed(shown: FeedPage) -> Response:
    found = context()
    carried = found.store.entries_by_edition([e.id for e in shown.editions])
    rows = []
    for edition in shown.editions:
        # Rows stored before the ingest gate may hold characters XML forbids.
        stored = carried[edition.id]
        papers = [paper_view(s, 0) for s in stored[:FEED_EDITION_PAPERS]]
        url = edition_url(found.settings.site_url, edition.day)
        rows.append(
            {
                "day": edition.day,
                "label": long_date(edition.day),
                "entry_count": edition.entry_count,
                "updated": edition.created_at.isoformat(),
                "titles": [safe_text(p.title) for p in papers[:10]],
                # plain text to the template: escaped
                "content": str(_papers_html(papers, len(stored), url)),
            }
        )
    body = render_template(
        "archive.atom.xml",
        editions=rows,
        base_url=found.settings.base_url,
        self_url=_page_url("/archive.atom", shown.before),
        next_url=_page_url("/archive.atom", shown.next_before) if shown.next_before else None,
        updated=rows[0]["updated"] if rows else datetime(2000, 1, 1).isoformat() + "Z",
    )
    return Response(body, mimetype="application/atom+xml")
