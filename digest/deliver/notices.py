"""The mails that are not digests: a sign-up's confirmation link, or a note that the
address gets the digest already.

Pure but for the message id's randomness: takes the subscriber and the
link's contents, returns the envelope and the bytes to hand a transport
(built, as every mail is, by ``compose.MessageFactory``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from digest.deliver.compose import (
    ComposeSettings,
    MessageFactory,
    make_renderer,
    personal_links,
)
from digest.deliver.transports import Envelope
from digest.models import Subscriber, Topic
from digest.render import RenderedEmail
from digest.tokens import ConfirmRequest, confirm_url


def confirm_notice(
    settings: ComposeSettings,
    subscriber: Subscriber,
    *,
    request: ConfirmRequest,
    confirm_hours: float,
    topics: Sequence[Topic],
    now: datetime,
) -> tuple[Envelope, bytes]:
    """The mail a sign-up gets: the confirmation link, with the topics chosen."""
    rendered = _confirm(settings, subscriber, request, confirm_hours, topics)
    return _sent(settings, subscriber, rendered, now)


def already_subscribed_notice(
    settings: ComposeSettings, subscriber: Subscriber, *, now: datetime
) -> tuple[Envelope, bytes]:
    """The mail a sign-up of an address that gets the digest already gets: the
    preferences link."""
    return _sent(settings, subscriber, _already_subscribed(settings, subscriber), now)


def welcome_notice(
    settings: ComposeSettings, subscriber: Subscriber, *, first: datetime | None, now: datetime
) -> tuple[Envelope, bytes]:
    """The mail after confirming: what they will get, and when the first edition comes."""
    when = f"The first edition comes {first:%A, %B %-d, at %H:%M %Z}." if first else ""
    topics = _topics_line(settings.topics_of(subscriber))
    rendered = make_renderer(settings.email).notice(
        subject=f"Welcome to {settings.title}",
        heading="You are subscribed",
        paragraphs=[
            p
            for p in (
                f"{subscriber.email} will get {settings.title}: {topics}.",
                when,
                "Change your topics, theme or timezone, or pause, on your preferences page.",
            )
            if p
        ],
        action_text="Open my preferences",
        action_url=personal_links(settings, subscriber.id).preferences_url,
        footer="Every email has a one-click unsubscribe link.",
    )
    return _sent(settings, subscriber, rendered, now)


def _topics_line(topics: Sequence[Topic]) -> str:
    if not topics:
        return "every new paper (no topics chosen yet)"
    return "the papers on " + "; ".join(t.label or t.query for t in topics)


def _sent(
    settings: ComposeSettings, subscriber: Subscriber, rendered: RenderedEmail, now: datetime
) -> tuple[Envelope, bytes]:
    factory = MessageFactory(settings)
    return factory.build(rendered, subscriber, message_id=factory.one_off_id("notice"), sent_at=now)


def _already_subscribed(settings: ComposeSettings, subscriber: Subscriber) -> RenderedEmail:
    return make_renderer(settings.email).notice(
        subject=f"{settings.title}: you are already subscribed",
        heading="You are already subscribed",
        paragraphs=[
            f"Someone (probably you) asked to subscribe {subscriber.email} to "
            f"{settings.title}. This address already gets it, so nothing changed.",
            "To change your topics or theme, or to pause, use your preferences page.",
        ],
        action_text="Open my preferences",
        action_url=personal_links(settings, subscriber.id).preferences_url,
        footer="If you did not ask for this, you can ignore this email.",
    )


def _confirm(
    settings: ComposeSettings,
    subscriber: Subscriber,
    request: ConfirmRequest,
    hours: float,
    topics: Sequence[Topic],
) -> RenderedEmail:
    return make_renderer(settings.email).notice(
        subject=f"{settings.title}: confirm your subscription",
        heading="Confirm your subscription",
        paragraphs=[
            f"Someone (probably you) asked to send {settings.title} to {subscriber.email}: "
            f"{_topics_line(topics)}.",
            f"Press the button below to confirm. It works for {hours:g} hours.",
        ],
        action_text="Confirm my subscription",
        action_url=confirm_url(settings.base_url, settings.secret_key, subscriber.id, request),
        footer="If you did not ask for this, ignore this email: nothing will be sent.",
    )
