"""A reader's own page: topics, theme, timezone and pause, with what the latest
edition would bring them (the decider's answer, as ``digest run`` would act on it)."""

from __future__ import annotations

import zoneinfo
from typing import Any

from flask import Blueprint, abort, request

from digest.app import NOTHING_NEW, Skip, accounts, queries, tryouts
from digest.cadence import WEEKDAYS
from digest.likes import checked_paper, typed_likes
from digest.models import Subscriber
from digest.subscriptions import has_left
from digest.tokens import preferences_url, unsubscribe_url
from digest.web.context import context, message_page, newsletters, page, subscriber_from
from digest.web.feedback import VOTES, paper_key
from digest.web.forms import preferences_form, preferences_shown

preferences = Blueprint("preferences", __name__)
_TIMEZONES = sorted(zoneinfo.available_timezones())


@preferences.route("/preferences/<token>", methods=["GET", "POST"])
def edit(token: str) -> tuple[str, int]:
    """Change topics, theme, timezone, pause; see what the latest edition would bring."""
    subscriber = subscriber_from("preferences", token)  # the request is now about its newsletter
    found = context()
    if has_left(subscriber):  # the page changes nothing for them, and says so
        return _left(subscriber)
    errors: list[str] = []
    form = preferences_shown(subscriber, found.settings.theme)
    if request.method == "POST":
        choices, form, errors = preferences_form(
            request.form, default_theme=found.settings.theme, themes=found.themes
        )
        liked, problems = typed_likes(request.form.get("likes", "")[:20_000])
        errors += problems
        form["likes"] = request.form.get("likes", "")[:20_000]
        if choices is not None and not problems:
            accounts.like(found.store, subscriber.id, liked, now=found.clock())
            form["likes"] = ""
            chosen = accounts.choose(found.store, subscriber.id, choices, now=found.clock())
            subscriber = chosen or subscriber
    return page(
        "preferences.html",
        400 if errors else 200,
        subscriber=subscriber,
        form=form,
        errors=errors,
        saved=request.method == "POST" and not errors,
        timezones=_TIMEZONES,
        unsubscribe_action=unsubscribe_url("", found.settings.secret_key, subscriber.id),
        marked=_marked(subscriber),
        **_preview(subscriber),
        weekdays=WEEKDAYS,
        next_email=queries.next_email(found.store, found.settings, subscriber, now=found.clock()),
        quiet=queries.quiet_runs(found.settings, found.clock()),
        subscriptions=_subscriptions(subscriber),
        cadence=subscriber.cadence.describe(),
    )


#: How each way of leaving reads to the reader.
_LEFT = {
    "unsubscribed": "You unsubscribed",
    "bounced": "Your mail server refused the digest",
    "complained": "You reported the digest as spam",
}


def _left(subscriber: Subscriber) -> tuple[str, int]:
    """The page of a reader who left: nothing here mails them again but their own
    confirmed sign-up, which the form below starts."""
    return page(
        "message.html",
        heading=f"{subscriber.email} gets no digest",
        paragraphs=[
            f"{_LEFT.get(subscriber.status, 'You left')}, so {context().settings.title} "
            "sends this address nothing, and this page changes nothing.",
            "To get it again, subscribe again: we mail you a link to confirm.",
        ],
        ask_again=True,
        form={"email": subscriber.email},
    )


@preferences.post("/preferences/<token>/marked")
def mark(token: str) -> tuple[str, int]:
    """Mark a paper more or less like what the reader wants, or take a mark back."""
    subscriber = subscriber_from("preferences", token)  # the request is now about its newsletter
    found = context()
    if has_left(subscriber):
        return _left(subscriber)
    vote = VOTES.get(request.form.get("vote", "clear"))
    try:
        paper = checked_paper(request.form.get("paper", "")[:600])
    except ValueError:
        paper = ""
    if not paper or vote is None:
        abort(400, description="Which paper, and more or less like it?")
    accounts.vote(found.store, subscriber.id, paper, vote, now=found.clock())
    return edit(token)


@preferences.post("/preferences/<token>/library")
def library(token: str) -> tuple[str, int]:
    """A library exported from Zotero, Mendeley or Google Scholar, as liked papers."""
    subscriber = subscriber_from("preferences", token)  # the request is now about its newsletter
    found = context()
    upload = request.files.get("library")
    if upload is None or not upload.filename:
        abort(400, description="Choose a BibTeX (.bib) or RIS (.ris) file.")
    try:
        report = accounts.import_library(
            found.store, subscriber.id, upload.read(), now=found.clock()
        )
    except ValueError as e:
        abort(400, description=str(e))
    return message_page(
        "Library imported",
        f"{report.papers} papers from {upload.filename} are now papers you like; "
        f"{report.matched} of them are already in the archive, and the rest count once "
        "they arrive.",
        *report.problems[:5],
        status=200,
    )


def _subscriptions(subscriber: Subscriber) -> list[dict[str, Any]]:
    """Each newsletter this address is in (left ones too), with its preferences link."""
    found = context()
    installation = newsletters().installation
    named = {n.slug: n.name for n in installation.all_newsletters()}
    return [
        {
            "name": named[each.newsletter],
            "state": each.state,
            "current": each.id == subscriber.id,
            "url": preferences_url("", found.settings.secret_key, each.id),
        }
        for each in found.store.subscriptions_of(subscriber.email)
        if each.newsletter in named
    ]


def _marked(subscriber: Subscriber) -> list[dict[str, Any]]:
    """The papers a reader voted on or liked, newest first, with their titles when stored."""
    store = context().store
    marks = store.feedback_of([subscriber.id])[subscriber.id]
    named = store.entries_named([f.paper for f in marks])
    return [
        {
            "paper": f.paper,
            "title": named[f.paper].entry.title if f.paper in named else f.paper,
            "waiting": f.paper not in named,
            "vote": "more" if f.vote > 0 else "less",
            "kind": f.kind,
        }
        for f in reversed(marks)
    ]


def _preview(subscriber: Subscriber) -> dict[str, Any]:
    """What the latest edition (before the first one: the papers waiting) would bring,
    and what the decider says of it."""
    found = context()
    seen = tryouts.preview(found.store, found.settings, subscriber, day=None, now=found.clock())
    sections = [
        {
            "label": s.label,
            "papers": [(m.entry.entry.title, m.reason, paper_key(m.entry)) for m in s.matches],
        }
        for s in seen.selection.sections
    ]
    reason = seen.decision.reason if isinstance(seen.decision, Skip) else None
    return {
        "preview": sections if seen.available else None,
        "preview_day": seen.day if seen.published else None,
        "preview_cut": seen.selection.cut,
        "preview_note": reason if reason != NOTHING_NEW else None,
    }
