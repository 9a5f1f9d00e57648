"""What the forms send, checked: each parser returns the values, the form to show
again, and one message per problem."""

from __future__ import annotations

import unicodedata
from typing import Any

from werkzeug.datastructures import MultiDict

from digest.address import AddressError, parse_address
from digest.cadence import DAILY, MAX_THRESHOLD, WEEKDAYS, Cadence
from digest.models import Subscriber, Topic
from digest.subscribers import (
    MAX_TOPICS,
    SubscriberError,
    SubscriberInput,
    check_cadence,
    check_input,
    check_theme,
    check_timezone,
    parse_topic,
    topic_count_problem,
)
from digest.subscriptions import Choices

MAX_TOPIC_CHARS = 5000

Form = MultiDict[str, str]


def topic_lines(text: str) -> tuple[list[Topic], list[str]]:
    """Parse one topic per line; return the topics and one message per bad line."""
    if len(text) > MAX_TOPIC_CHARS:
        return [], [f"Topics are limited to {MAX_TOPIC_CHARS} characters."]
    topics, errors = [], []
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    too_many = topic_count_problem(len(lines))
    if too_many is not None:
        errors.append(f"{too_many[:1].upper()}{too_many[1:]}.")
    for number, line in enumerate(lines[:MAX_TOPICS], start=1):
        try:
            topics.append(parse_topic(line))
        except SubscriberError as e:
            errors.append(f"Topic {number}: {e.message}")
    return topics, errors


def address_key(form: Form) -> str:
    """One mailbox, one limit: the address as validation normalises it (NFKC, IDNA, case)."""
    typed = (form.get("email") or "")[:320]
    try:
        mailbox = parse_address(typed).key
    except AddressError:
        mailbox = unicodedata.normalize("NFKC", typed).strip().casefold()
    return "address:" + mailbox[:320]


def sign_up_form(
    form: Form, *, default_theme: str, themes: list[str]
) -> tuple[SubscriberInput | None, dict[str, Any], list[str]]:
    """The subscribe form: the sign-up it asks for (None when anything is wrong)."""
    shown = {
        "email": (form.get("email") or "")[:254],
        "topics": (form.get("topics") or "")[:MAX_TOPIC_CHARS],
        "theme": form.get("theme") or default_theme,
    }
    topics, errors = topic_lines(form.get("topics") or "")
    try:
        item = check_input(form.get("email") or "", theme=shown["theme"], themes=themes)
    except SubscriberError as e:
        return None, shown, [e.message, *errors]
    if errors:
        return None, shown, errors
    return SubscriberInput(item.email, topics=tuple(topics), theme=item.theme), shown, []


def preferences_form(
    form: Form, *, default_theme: str, themes: list[str]
) -> tuple[Choices | None, dict[str, Any], list[str]]:
    """The preferences form: the choices (None when anything is wrong)."""
    topics, errors = topic_lines(form.get("topics") or "")
    theme = form.get("theme") or default_theme
    zone = (form.get("timezone") or "").strip()
    kind = form.get("cadence") or "daily"
    day = (form.get("cadence_day") or "monday")[:12]
    papers = (form.get("cadence_papers") or "10").strip()[:6]
    typed = {"weekly": f"weekly:{day}", "threshold": f"threshold:{papers}"}.get(kind, "daily")
    cadence = DAILY
    try:
        check_theme(theme, themes)
        if zone:
            check_timezone(zone)
    except SubscriberError as e:
        errors.append(e.message)
    try:
        cadence = check_cadence(typed)
    except SubscriberError:
        errors.append(
            f"How often: a number of papers from 1 to {MAX_THRESHOLD}, or a day of the week."
        )
    shown = {
        "topics": (form.get("topics") or "")[:MAX_TOPIC_CHARS],
        "theme": theme,
        "timezone": zone[:64],
        "paused": bool(form.get("paused")),
        "explore": bool(form.get("explore")),
        "cadence": kind if kind in ("daily", "weekly", "threshold") else "daily",
        "cadence_day": day,
        "cadence_papers": papers,
    }
    choices = Choices(
        topics, theme, zone or None, bool(shown["paused"]), cadence, bool(shown["explore"])
    )
    return (None if errors else choices), shown, errors


def preferences_shown(subscriber: Subscriber, default_theme: str) -> dict[str, Any]:
    """The preferences form as a subscriber's stored choices fill it."""
    return {
        "topics": "\n".join(str(t) for t in subscriber.topics),
        "theme": subscriber.theme or default_theme,
        "timezone": subscriber.timezone or "",
        "paused": subscriber.paused,
        "explore": subscriber.explore,
        "likes": "",
    } | cadence_shown(subscriber.cadence)


def cadence_shown(cadence: Cadence) -> dict[str, str]:
    """The "how often" fields as a reader's cadence fills them."""
    return {
        "cadence": cadence.kind,
        "cadence_day": WEEKDAYS[cadence.weekday] if cadence.kind == "weekly" else "monday",
        "cadence_papers": str(cadence.papers) if cadence.kind == "threshold" else "10",
    }
