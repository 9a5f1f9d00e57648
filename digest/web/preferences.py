"""A reader's own page: topics, theme, timezone and pause, with what the latest
edition would bring them (the decider's answer, as ``digest run`` would act on it)."""

from __future__ import annotations

import zoneinfo
from typing import Any

from flask import Blueprint, abort, request

from digest.app import NOTHING_NEW, Skip, accounts, queries, tryouts
from digest.cadence import WEEKDAYS
from digest.likes import checked_author, checked_paper, typed_likes
from digest.models import Subscriber
from digest.subscriptions import has_left
from digest.tokens import preferences_url, unsubscribe_url
from digest.web.context import (
    context,
    left_page,
    message_page,
    newsletters,
    page,
    subscriber_from,
)
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
        return left_page(subscriber)
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
        followed=found.store.follows_of([subscriber.id])[subscriber.id],
        **_preview(subscriber),
        weekdays=WEEKDAYS,
        next_email=queries.next_email(found.store, found.settings, subscriber, now=found.clock()),
        quiet=queries.quiet_runs(found.settings, found.clock()),
        subscriptions=_subscriptions(subscriber),
        cadence=subscriber.cadence.describe(),
    )


@preferences.post("/preferences/<token>/marked")
def mark(token: str) -> tuple[str, int]:
    """Mark a paper more or less like what the reader wants, or take a mark back."""
    subscriber = subscriber_from("preferences", token)  # the request is now about its newsletter
    found = context()
    if has_left(subscriber):
        return left_page(subscriber)
    vote = VOTES.get(request.form.get("vote", "clear"))
    try:
        paper = checked_paper(request.form.get("paper", "")[:600])
    except ValueError:
        paper = ""
    if not paper or vote is None:
        abort(400, description="Which paper, and more or less like it?")
    accounts.vote(found.store, subscriber.id, paper, vote, now=found.clock())
    return edit(token)


@preferences.route("/preferences/<token>/start", methods=["GET", "POST"])
def start(token: str) -> tuple[str, int]:
    """The guided start: ten papers to rate, one choice each (GET shows them; the POST
    of the form records the ratings given and shows ten more)."""
    subscriber = subscriber_from("preferences", token)  # the request is now about its newsletter
    found = context()
    if has_left(subscriber):
        return left_page(subscriber)
    rated = 0
    if request.method == "POST":
        for number in range(tryouts.STARTER_PAPERS):
            vote = VOTES.get(request.form.get(f"vote-{number}", ""))
            try:
                paper = checked_paper(request.form.get(f"paper-{number}", "")[:600])
            except ValueError:
                continue
            if vote:  # "skip" (or nothing) records nothing
                accounts.vote(found.store, subscriber.id, paper, vote, now=found.clock())
                rated += 1
    papers = tryouts.starter(found.store, found.settings, subscriber)
    return page(
        "start.html",
        subscriber=subscriber,
        papers=[(s.entry, paper_key(s)) for s in papers],
        rated=rated if request.method == "POST" else None,
        preferences_url=preferences_url("", found.settings.secret_key, subscriber.id),
    )


@preferences.post("/preferences/<token>/follows")
def follows(token: str) -> tuple[str, int]:
    """Follow an author by name as the feeds write it, or stop following one."""
    subscriber = subscriber_from("preferences", token)  # the request is now about its newsletter
    found = context()
    if has_left(subscriber):
        return left_page(subscriber)
    try:
        author = checked_author(request.form.get("author", "")[:1000])
    except ValueError as e:
        abort(400, description=str(e))
    if request.form.get("follow", "yes") == "no":
        accounts.unfollow(found.store, subscriber.id, author)
    else:
        accounts.follow(found.store, subscriber.id, author, paper=None, now=found.clock())
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
            "papers": [(m.entry.entry.title, m.why_line, paper_key(m.entry)) for m in s.matches],
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
