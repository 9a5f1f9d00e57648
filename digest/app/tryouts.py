"""Try-outs: what a topic would select, a preview of a reader's email, a test send, and
an operator's resend, each as ``run`` would do it."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime

from digest import learning
from digest.address import Address
from digest.app.job import composer_for, taste_of
from digest.config import Settings
from digest.deliver import ComposeSettings, Transport, make_renderer, personal_links
from digest.errors import DigestError
from digest.logs import log_event
from digest.models import (
    Delivery,
    Edition,
    StoredEntry,
    Subscriber,
    Topic,
)
from digest.plan import (
    Decision,
    Send,
    decide_with,
    reason_of,
)
from digest.render import RenderedEmail
from digest.select import EditionIndex, Match, Selection, blended
from digest.store import Store
from digest.subscriptions import has_left

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Preview:
    """What topics would get from an edition, and (for a subscriber) what the decider says."""

    day: date
    #: Whether that day's edition exists (if not, the papers waiting for the next one).
    published: bool
    available: int
    selection: Selection
    #: Whether the selection comes from topics (else it is the whole edition).
    personal: bool
    decision: Decision | None


#: The id of a reader who is only tried out (topics given on the command line).
TRIED_OUT = 0


def tried_out(topics: Sequence[Topic], theme: str | None) -> Subscriber:
    """A stand-in reader for topics tried out: the decider is not asked about them."""
    return Subscriber(TRIED_OUT, "", "active", topics=tuple(topics), theme=theme)


def preview(
    store: Store, settings: Settings, reader: Subscriber, *, day: date | None, now: datetime
) -> Preview:
    """Select what ``reader`` would get from the edition of ``day`` (None: the latest),
    as ``run`` composes it, and for a real reader ask the decider what ``run`` would do
    at ``now``.  Before that edition exists, it is the entries no edition has carried yet.
    """
    edition = store.get_edition(day) if day else next(iter(store.recent_editions(1)), None)
    entries = store.edition_entries(edition.id if edition else None)
    composer = composer_for(store, settings)
    model = taste_of(store, composer, reader)
    planned = edition or Edition(0, day or now.astimezone(settings.zone).date(), now, 0)
    with EditionIndex(entries) as index:
        selection = composer.select(reader, index, model)
    decision = None
    if reader.id != TRIED_OUT:
        decision = decide_with(planned, reader, now, settings.policy, lambda _: selection)
    personal = bool(composer.settings.topics_of(reader))
    return Preview(planned.day, edition is not None, len(entries), selection, personal, decision)


def match(
    store: Store,
    settings: Settings,
    query: str,
    *,
    since: datetime,
    sources: Sequence[str] | None = None,
    subscriber: Subscriber | None = None,
) -> tuple[int, list[Match]]:
    """The stored papers a topic query selects, best first: by bm25, or for a reader with
    a model as their digest orders them, each with why their model wants it."""
    stored = store.list_entries(since=since, sources=sources)
    composer = composer_for(store, settings)
    model = taste_of(store, composer, subscriber)
    with EditionIndex(stored) as index:
        found = list(index.search(query))
        affinity = composer.affinity(index, model)
        if affinity is None or model is None:
            return len(stored), found
        found = blended(found, affinity)
        return len(stored), [
            replace(m, reason=affinity.why(m.entry.id), wanted=affinity.wanted(m.entry.id))
            for m in found
        ]


#: Papers a guided start offers to rate.
STARTER_PAPERS = 10


def starter(store: Store, settings: Settings, reader: Subscriber) -> list[StoredEntry]:
    """The papers of a reader's guided start ("rate a few papers"): recent ones they have
    not rated, spread over their topics, the ones their model learns most from."""
    composer = composer_for(store, settings)
    taste = taste_of(store, composer, reader)
    rated = {f.paper for f in store.feedback_of([reader.id])[reader.id]}
    return learning.starter_papers(
        store,
        composer.settings.topics_of(reader),
        taste.model if taste else None,
        count=STARTER_PAPERS,
        rated=rated,
    )


class SendTestRefused(DigestError):
    """A test send that must not go: to someone who left, or with nothing to show."""


@dataclass(frozen=True)
class TestSend:
    """A test send: to ``to``, what ``as_reader`` would get (a reader without topics when
    None) from the edition of ``day`` (None: the latest)."""

    to: Address
    as_reader: Subscriber | None = None
    day: date | None = None


def send_test(
    store: Store, settings: Settings, transport: Transport, test: TestSend, *, now: datetime
) -> str:
    """Send a test of the digest, with "[test]" in the subject.

    Nothing is recorded as a delivery.  Its links are nobody's: a click on its
    unsubscribe link changes no reader.  Refused for a suppressed address.
    """
    address, as_reader, day = test.to, test.as_reader, test.day
    known = store.get_subscriber(address.mailbox)  # by its key: every spelling is one
    if known is not None and has_left(known):
        raise SendTestRefused(
            f"{address} is {known.state}: digest mails them nothing, not even a test"
        )
    edition = store.get_edition(day) if day else next(iter(store.recent_editions(1)), None)
    entries = store.edition_entries(edition.id if edition else None)
    planned = edition or Edition(0, day or now.astimezone(settings.zone).date(), now, 0)
    reader = as_reader or Subscriber(id=0, email=address.mailbox, status="active")
    composer = composer_for(store, settings)
    model = taste_of(store, composer, as_reader)
    stand_in = replace(reader, id=0, email=address.mailbox, status="active", paused=False)
    with EditionIndex(entries) as index:
        selection = composer.select(stand_in, index, model)
    decision = decide_with(planned, stand_in, now, settings.policy, lambda _: selection)
    if not isinstance(decision, Send):
        reason = reason_of(decision)
        raise SendTestRefused(f"{reader.email} would get nothing from {planned.day}: {reason}")
    rendered = composer.render(planned, stand_in, selection)
    rendered = replace(rendered, subject="[test] " + rendered.subject)
    factory = composer.factory
    envelope, message = factory.build(
        rendered,
        stand_in,
        message_id=factory.one_off_id("test"),
        sent_at=now,
        to=address.wire,
    )
    with transport:
        transport.send(envelope, message)
    return f"sent {address} a test of {planned.day} as {reader.email}: {rendered.shown} papers"


class ResendRefused(DigestError):
    """A resend that must not be queued: to someone who left or paused, of an edition
    that does not exist, or of a delivery still queued."""


def resend(store: Store, reader: Subscriber, day: date, *, now: datetime) -> Delivery:
    """Queue ``reader``'s copy of the edition of ``day`` again, on purpose; the next
    run (or ``digest send``) sends it as a new message with a Message-ID of its own.

    Refused for a reader who left (consent is theirs) or paused (they asked for
    quiet), and for a delivery still queued (its first message is still to come).
    """
    if has_left(reader) or reader.paused:
        state = "paused" if reader.paused and not has_left(reader) else reader.state
        hint = " (resume them first)" if state == "paused" else ""
        raise ResendRefused(f"{reader.email} is {state}: digest resends them nothing{hint}")
    edition = store.get_edition(day)
    if edition is None:
        raise ResendRefused(f"no edition for {day} (see 'digest editions list')")
    queued = store.resend_delivery(edition.id, reader.id, now=now)
    if queued is None:
        raise ResendRefused(
            f"{reader.email}'s delivery of {day} is still queued: 'digest send' sends it"
        )
    log_event(log, "delivery_resent", delivery=queued.id, resends=queued.resends)
    return queued


def render_preview(
    settings: Settings, found: Preview, *, theme: str, subscriber: Subscriber | None
) -> RenderedEmail:
    """The email a preview's selection makes, as ``run`` would render it."""
    compose = ComposeSettings.of(settings)
    return make_renderer(compose.email).render(
        edition_date=found.day,
        selection=found.selection,
        links=personal_links(compose, subscriber.id if subscriber else 0),
        theme=theme,
        personal=found.personal,
    )
