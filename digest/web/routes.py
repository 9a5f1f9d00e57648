"""The pages: subscribe, confirm, preferences, unsubscribe (with RFC 8058 one-click), archive.

Each view validates its input, calls the store or the pipeline once, and
renders a template.  Feed text reaches templates only as data (autoescaped).
"""

from __future__ import annotations

import unicodedata
import zoneinfo
from datetime import date, datetime
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    jsonify,
    render_template,
    request,
    url_for,
)

from digest import accounts, pipeline
from digest.deliver.compose import personal_links
from digest.deliver.transports import PermanentFailure, TemporaryFailure
from digest.ingest.clean import safe_text
from digest.models import Subscriber, Topic
from digest.plan import NOTHING_NEW, Skip
from digest.render import long_date, paper_view
from digest.subscribers import (
    MAX_TOPICS,
    SubscriberError,
    check_input,
    check_theme,
    check_timezone,
    email_key,
    normalize_email,
    parse_topic,
    parse_topics,
)
from digest.subscriptions import chooses, confirms, leaves, may_confirm
from digest.tokens import (
    ConfirmRequest,
    TokenError,
    edition_url,
    read_confirm_token,
    read_token,
    unsubscribe_url,
)
from digest.web.context import WebContext, csrf, limiter, message_page

web = Blueprint("web", __name__)
MAX_TOPIC_CHARS = 5000
_TIMEZONES = sorted(zoneinfo.available_timezones())


def _context() -> WebContext:
    context: WebContext = current_app.extensions["digest"]
    return context


def _per_ip_limit() -> str:
    return _context().settings.web.subscribe_limit_per_ip


def _per_address_limit() -> str:
    return _context().settings.web.subscribe_limit_per_address


def _address_key() -> str:
    """One mailbox, one limit: the address as validation normalises it (NFKC, IDNA, case)."""
    typed = (request.form.get("email") or "")[:320]
    try:
        mailbox = email_key(normalize_email(typed))
    except SubscriberError:
        mailbox = unicodedata.normalize("NFKC", typed).strip().casefold()
    return "address:" + mailbox[:320]


def _topic_lines(text: str) -> tuple[list[Topic], list[str]]:
    """Parse one topic per line; return the topics and one message per bad line."""
    if len(text) > MAX_TOPIC_CHARS:
        return [], [f"Topics are limited to {MAX_TOPIC_CHARS} characters."]
    topics, errors = [], []
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) > MAX_TOPICS:
        errors.append(f"At most {MAX_TOPICS} topics.")
    for number, line in enumerate(lines[:MAX_TOPICS], start=1):
        try:
            topics.append(parse_topic(line))
        except SubscriberError as e:
            errors.append(f"Topic {number}: {e.message}")
    return topics, errors


def _subscriber_from(purpose: str, token: str) -> Subscriber:
    """The subscriber a link token names; 400 for a forged or unknown one."""
    context = _context()
    try:
        subscriber_id = read_token(context.settings.secret_key, purpose, token)
    except TokenError:
        abort(400, description="This link is not valid. Please use the link from your email.")
    subscriber = context.store.get_subscriber_by_id(subscriber_id)
    if subscriber is None:
        abort(400, description="This link is not valid. Please use the link from your email.")
    return subscriber


def _latest_papers(limit: int) -> tuple[date | None, list[Any]]:
    store = _context().store
    editions = store.recent_editions(1)
    if not editions:
        return None, []
    entries = store.edition_entries(editions[0].id)
    entries.sort(key=lambda s: -(s.entry.upvotes or 0))
    chars = _context().settings.abstract_chars
    return editions[0].day, [paper_view(s, chars) for s in entries[:limit]]


def _form_page(template: str, status: int = 200, **values: Any) -> tuple[str, int]:
    values.setdefault("themes", _context().themes)
    values.setdefault("errors", [])
    return render_template(template, **values), status


@web.get("/")
def index() -> tuple[str, int]:
    """What the digest is, a sample of the latest edition, and the subscribe form."""
    day, sample = _latest_papers(5)
    form = {"email": "", "topics": "", "theme": _context().settings.theme}
    label = long_date(day) if day else None
    return _form_page("index.html", sample=sample, sample_day=label, form=form)


@web.post("/subscribe")
@limiter.limit(_per_ip_limit)
@limiter.limit(_per_address_limit, key_func=_address_key)
def subscribe() -> tuple[str, int]:
    """Create a pending subscriber and mail the confirmation link.

    The answer is the same whether or not the address was known, so the
    page never tells anyone who subscribes.
    """
    context = _context()
    form = {
        "email": (request.form.get("email") or "")[:254],
        "topics": (request.form.get("topics") or "")[:MAX_TOPIC_CHARS],
        "theme": request.form.get("theme") or context.settings.theme,
    }
    topics, errors = _topic_lines(request.form.get("topics") or "")
    try:
        item = check_input(
            request.form.get("email") or "",
            theme=form["theme"],
            themes=context.themes,
        )
    except SubscriberError as e:
        errors.insert(0, e.message)
        item = None
    if errors or item is None:
        return _form_page("index.html", 400, form=form, errors=errors, sample=[], sample_day=None)
    item = type(item)(email=item.email, topics=tuple(topics), theme=item.theme)
    try:
        accounts.sign_up(context.store, context.settings, context.make_transport(), item,
                         now=context.clock(), channel="web")  # fmt: skip
    except TemporaryFailure:
        return message_page(
            "We could not send the email",
            "Our mail server did not answer. Please try again in a few minutes.",
            status=503,
        )
    except PermanentFailure as e:
        return message_page("We could not send the email", f"The mail server said: {e}", status=400)
    return message_page(
        "Check your inbox",
        f"We sent a message to {item.email}. Open the link in it to confirm.",
        "If nothing arrives within a few minutes, look in your spam folder.",
        status=200,
    )


@web.post("/api/check-query")
@csrf.exempt
def check_query() -> Response:
    """Check topic lines as they are typed (the form checks them again on submit)."""
    topics, errors = _topic_lines(request.form.get("topics") or "")
    return jsonify(ok=not errors, errors=errors, count=len(topics))


@web.route("/confirm/<token>", methods=["GET", "POST"])
def confirm(token: str) -> tuple[str, int]:
    """GET shows a button (link scanners only GET); POST activates the subscription."""
    context = _context()
    try:
        request_ = read_confirm_token(
            context.settings.secret_key,
            token,
            max_age_seconds=int(context.settings.web.confirm_hours * 3600),
        )
    except TokenError as e:
        heading = "This link has expired" if e.expired else "This link is not valid"
        form = {"email": "", "topics": "", "theme": context.settings.theme}
        return _form_page(
            "message.html", 400, heading=heading, form=form, ask_again=True,
            paragraphs=["Ask for a new confirmation link below."],
        )  # fmt: skip
    subscriber = context.store.get_subscriber_by_id(request_.subscriber_id)
    if subscriber is None:
        abort(400, description="This link is not valid.")
    if not may_confirm(subscriber, request_.left_at):
        links = personal_links(context.settings, subscriber.id)
        return _form_page(
            "message.html", heading="This link was already used", form={},
            paragraphs=["Your subscription is already confirmed, or you have left since."],
            link={"href": links.preferences_url, "text": "Open my preferences"},
        )  # fmt: skip
    if request.method != "POST":  # GET or HEAD: scanners probe links; only a person posts
        return _form_page("confirm.html", email=subscriber.email)
    topics, theme = _requested(request_)
    rule = confirms(request_.left_at, topics, theme)
    context.store.amend_subscriber(subscriber.id, rule, now=context.clock(), channel="confirm")
    links = personal_links(context.settings, subscriber.id)
    return _form_page(
        "message.html", heading="You are subscribed", form={},
        paragraphs=[f"{subscriber.email} will get the next edition."],
        link={"href": links.preferences_url, "text": "Choose topics, theme and timezone"},
    )  # fmt: skip


def _requested(request_: ConfirmRequest) -> tuple[tuple[Topic, ...] | None, str | None]:
    """The topics and theme a returning reader asked for, checked again (they may be old)."""
    try:
        topics = parse_topics(request_.topics) if request_.topics is not None else None
    except SubscriberError:
        topics = None
    theme = request_.theme if request_.theme in _context().themes else None
    return topics, theme


@web.route("/preferences/<token>", methods=["GET", "POST"])
def preferences(token: str) -> tuple[str, int]:
    """Change topics, theme, timezone, pause; see what the latest edition would bring."""
    context = _context()
    subscriber = _subscriber_from("preferences", token)
    errors: list[str] = []
    saved = False
    if request.method == "POST":
        topics, errors = _topic_lines(request.form.get("topics") or "")
        theme = request.form.get("theme") or context.settings.theme
        zone = (request.form.get("timezone") or "").strip()
        try:
            check_theme(theme, context.themes)
            if zone:
                check_timezone(zone)
        except SubscriberError as e:
            errors.append(e.message)
        form = {
            "topics": (request.form.get("topics") or "")[:MAX_TOPIC_CHARS],
            "theme": theme,
            "timezone": zone[:64],
            "paused": bool(request.form.get("paused")),
        }
        if not errors:
            rule = chooses(topics=topics, theme=theme, timezone=zone or None,
                           paused=form["paused"])  # fmt: skip
            amended = context.store.amend_subscriber(
                subscriber.id, rule, now=context.clock(), channel="preferences"
            )
            subscriber = amended.subscriber or subscriber
            saved = True
    else:
        form = {
            "topics": "\n".join(str(t) for t in subscriber.topics),
            "theme": subscriber.theme or context.settings.theme,
            "timezone": subscriber.timezone or "",
            "paused": subscriber.paused,
        }
    return _form_page(
        "preferences.html", 400 if errors else 200, subscriber=subscriber, form=form,
        errors=errors, saved=saved, timezones=_TIMEZONES, **_preview(subscriber),
        unsubscribe_action=unsubscribe_url("", context.settings.secret_key, subscriber.id),
    )  # fmt: skip


def _preview(subscriber: Subscriber) -> dict[str, Any]:
    """What the latest edition (before the first one: the papers waiting) would bring,
    and what the decider says of it."""
    context = _context()
    found = pipeline.preview(
        context.store, context.settings, day=None, topics=subscriber.topics,
        now=context.clock(), subscriber=subscriber,
    )  # fmt: skip
    sections = [
        {"label": s.label, "titles": [m.entry.entry.title for m in s.matches]}
        for s in found.selection.sections
    ]
    reason = found.decision.reason if isinstance(found.decision, Skip) else None
    return {
        "preview": sections if found.available else None,
        "preview_day": found.day if found.published else None,
        "preview_cut": found.selection.cut,
        "preview_note": reason if reason != NOTHING_NEW else None,
    }


@web.route("/unsubscribe/<token>", methods=["GET", "POST"])
@csrf.exempt
def unsubscribe(token: str) -> Any:
    """GET shows one button; POST unsubscribes.

    A POST whose body is ``List-Unsubscribe=One-Click`` (RFC 8058, what
    Gmail and Yahoo send) unsubscribes at once: no cookie, no CSRF token, no
    redirect, 200.  Idempotent; a bad token gets 400 and changes nothing.
    """
    context = _context()
    one_click = request.method == "POST" and request.form.get("List-Unsubscribe") == "One-Click"
    if request.method == "POST" and not one_click:
        csrf.protect()
    subscriber = _subscriber_from("unsubscribe", token)
    if one_click:
        context.store.amend_subscriber(
            subscriber.id, leaves, now=context.clock(), channel="one-click"
        )
        return Response("unsubscribed\n", status=200, mimetype="text/plain")
    if request.method != "POST":  # GET or HEAD: scanners probe links; only a person posts
        links = personal_links(context.settings, subscriber.id)
        return _form_page(
            "unsubscribe.html", email=subscriber.email, preferences_url=links.preferences_url
        )
    context.store.amend_subscriber(subscriber.id, leaves, now=context.clock(), channel="link")
    return _form_page(
        "message.html", heading="You are unsubscribed", form={},
        paragraphs=[f"{subscriber.email} will get no more emails from {context.settings.title}."],
        link={"href": url_for("web.index"), "text": "Subscribe again"},
    )  # fmt: skip


def _edition_rows(limit: int = 366) -> list[dict[str, Any]]:
    store = _context().store
    rows = []
    for edition in store.recent_editions(limit):
        rows.append(
            {
                "day": edition.day,
                "label": long_date(edition.day),
                "entry_count": edition.entry_count,
                "updated": edition.created_at.isoformat(),
                "edition_id": edition.id,
            }
        )
    return rows


@web.get("/archive")
def archive() -> tuple[str, int]:
    """Every edition, newest first."""
    return _form_page("archive.html", editions=_edition_rows(), form={})


@web.get("/archive/<day>")
def edition(day: str) -> tuple[str, int]:
    """One edition as a web page: no personal data (the "view in browser" link)."""
    try:
        wanted = date.fromisoformat(day)
    except ValueError:
        abort(404)
    context = _context()
    found = context.store.get_edition(wanted)
    if found is None:
        abort(404, description="There is no edition for that day.")
    entries = context.store.edition_entries(found.id)
    papers = [paper_view(s, context.settings.abstract_chars) for s in entries]
    label = long_date(wanted)
    return _form_page("edition.html", label=label, papers=papers, form={})


@web.get("/archive.json")
def archive_json() -> Response:
    """The editions as JSON, with their papers' titles and links."""
    context = _context()
    base = context.settings.base_url
    payload = []
    rows = _edition_rows(60)
    carried = context.store.entries_by_edition([row["edition_id"] for row in rows])
    for row in rows:
        entries = carried[row["edition_id"]]
        payload.append(
            {
                "date": row["day"].isoformat(),
                "url": edition_url(base, row["day"]),
                "papers": [
                    {
                        "title": s.entry.title,
                        "url": paper_view(s, 0).url,
                        "arxiv_id": s.entry.arxiv_id,
                    }
                    for s in entries
                ],
            }
        )
    return jsonify(editions=payload)


@web.get("/archive.atom")
def archive_atom() -> Response:
    """The editions as an Atom feed, for people who prefer a reader."""
    context = _context()
    rows = _edition_rows(60)
    carried = context.store.entries_by_edition([row["edition_id"] for row in rows])
    for row in rows:
        # Rows stored before the ingest gate may hold characters XML forbids.
        row["titles"] = [safe_text(s.entry.title) for s in carried[row["edition_id"]][:10]]
    body = render_template(
        "archive.atom.xml",
        editions=rows,
        base_url=context.settings.base_url,
        updated=rows[0]["updated"] if rows else datetime(2000, 1, 1).isoformat() + "Z",
    )
    return Response(body, mimetype="application/atom+xml")
