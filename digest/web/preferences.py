"""A reader's own page: topics, theme, timezone and pause, with what the latest
edition would bring them (the decider's answer, as ``digest run`` would act on it)."""

from __future__ import annotations

import zoneinfo
from typing import Any

from flask import Blueprint, request

from digest import pipeline
from digest.models import Subscriber
from digest.plan import NOTHING_NEW, Skip
from digest.subscriptions import chooses
from digest.tokens import unsubscribe_url
from digest.web.context import context, page, subscriber_from
from digest.web.forms import preferences_form, preferences_shown

preferences = Blueprint("preferences", __name__)
_TIMEZONES = sorted(zoneinfo.available_timezones())


@preferences.route("/preferences/<token>", methods=["GET", "POST"])
def edit(token: str) -> tuple[str, int]:
    """Change topics, theme, timezone, pause; see what the latest edition would bring."""
    found = context()
    subscriber = subscriber_from("preferences", token)
    errors: list[str] = []
    form = preferences_shown(subscriber, found.settings.theme)
    if request.method == "POST":
        choices, form, errors = preferences_form(
            request.form, default_theme=found.settings.theme, themes=found.themes
        )
        if choices is not None:
            rule = chooses(topics=choices.topics, theme=choices.theme,
                           timezone=choices.timezone, paused=choices.paused)  # fmt: skip
            amended = found.store.amend_subscriber(
                subscriber.id, rule, now=found.clock(), channel="preferences"
            )
            subscriber = amended.subscriber or subscriber
    return page(
        "preferences.html", 400 if errors else 200, subscriber=subscriber, form=form,
        errors=errors, saved=request.method == "POST" and not errors, timezones=_TIMEZONES,
        unsubscribe_action=unsubscribe_url("", found.settings.secret_key, subscriber.id),
        **_preview(subscriber),
    )  # fmt: skip


def _preview(subscriber: Subscriber) -> dict[str, Any]:
    """What the latest edition (before the first one: the papers waiting) would bring,
    and what the decider says of it."""
    found = context()
    seen = pipeline.preview(
        found.store, found.settings, day=None, topics=subscriber.topics,
        now=found.clock(), subscriber=subscriber, theme=subscriber.theme,
    )  # fmt: skip
    sections = [
        {"label": s.label, "titles": [m.entry.entry.title for m in s.matches]}
        for s in seen.selection.sections
    ]
    reason = seen.decision.reason if isinstance(seen.decision, Skip) else None
    return {
        "preview": sections if seen.available else None,
        "preview_day": seen.day if seen.published else None,
        "preview_cut": seen.selection.cut,
        "preview_note": reason if reason != NOTHING_NEW else None,
    }
