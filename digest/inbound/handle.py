"""Apply what came back: check its tag, score or suppress the reader, keep the event.

I/O at the edge of ``parse`` and ``policy``: nothing is decided here.  A
message whose tag is missing, forged or names nobody changes nothing; it is
kept as an event of kind ``unknown`` and said in the returned line.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from digest.config import InboundSettings, Settings
from digest.errors import StorageError
from digest.inbound.mailbox import PollReport, Verdict, poll
from digest.inbound.parse import Inbound, TooBig, read_inbound
from digest.inbound.policy import BouncePolicy, BounceScore, names_the_mailbox, outcome, status_of
from digest.logs import log_event
from digest.models import Delivery, InboundRecord, Subscriber
from digest.store import Store
from digest.subscriptions import suppresses
from digest.text import printable
from digest.tokens import TokenError, read_tagged_address

log = logging.getLogger(__name__)
#: The channel each suppression is recorded under in a reader's history.
_CHANNEL = {"unsubscribed": "mailto", "complained": "complaint", "bounced": "bounce"}


@dataclass(frozen=True)
class Handled:
    """What was done with one message, in one line, and whether a reader changed."""

    line: str
    changed: bool = False
    #: Whether the message named a reader of ours (by a valid tag).
    known: bool = True


def handle(store: Store, settings: Settings, inbound: Inbound, *, now: datetime) -> Handled:
    """Act on one message that came back."""
    delivery_id = _tag(inbound.tagged, settings.secret_key, "bounce")
    reader_id = _tag(inbound.tagged, settings.secret_key, "unsubscribe")
    delivery = store.get_delivery(delivery_id) if delivery_id is not None else None
    subscriber_id = delivery.subscriber_id if delivery is not None else reader_id
    subscriber = store.get_subscriber_by_id(subscriber_id) if subscriber_id else None
    kind = inbound.kind
    if (
        kind not in ("complaint", "autoreply")
        and _tag((inbound.addressed_to,), settings.secret_key, "unsubscribe") is not None
    ):
        kind = "unsubscribe"  # a mail to the List-Unsubscribe address, whatever it says
    event = Event(now, inbound.message_id, inbound.detail, delivery)
    if subscriber is None or kind in ("autoreply", "unknown"):
        store.record_inbound(
            event.record(kind if subscriber else "unknown", subscriber.id if subscriber else None)
        )
        if subscriber is None:
            log_event(
                log,
                "inbound_ignored",
                logging.WARNING,
                kind=kind,
                message_id=inbound.message_id,
                reason="no valid tag",
            )
            return Handled(f"ignored: a {kind} message with no valid tag", known=False)
        return Handled(f"ignored: an {kind} message about {subscriber.email}")
    return _apply(store, settings.inbound, subscriber, kind, inbound.status, event)


@dataclass(frozen=True)
class Event:
    """What is kept of one message that came back, whatever it does."""

    now: datetime
    message_id: str
    detail: str
    delivery: Delivery | None

    def record(self, kind: str, subscriber_id: int | None) -> InboundRecord:
        """The event as it is kept."""
        return InboundRecord(
            kind,
            self.now,
            subscriber_id,
            self.delivery.id if self.delivery else None,
            self.delivery.edition_id if self.delivery else None,
            printable(self.message_id),
            printable(self.detail, 2000),
        )


def refused_at_send(
    store: Store, settings: InboundSettings, delivery: Delivery, reply: str, *, now: datetime
) -> Handled:
    """A recipient the mail server refused for good while sending: a hard bounce."""
    subscriber = store.get_subscriber_by_id(delivery.subscriber_id)
    if subscriber is None:
        return Handled("ignored: the reader is gone", known=False)
    event = Event(now, delivery.message_id or "", reply, delivery)
    return _apply(store, settings, subscriber, "hard", status_of(reply), event)


def _apply(
    store: Store,
    settings: InboundSettings,
    subscriber: Subscriber,
    kind: str,
    status: str,
    event: Event,
) -> Handled:
    """Score (or suppress) a reader for what came back, and keep the event: one transaction."""
    stored = BounceScore(*store.bounce_score(subscriber.id))
    policy = BouncePolicy(settings.bounce_threshold, settings.bounce_decay_days)
    decided = outcome(kind, stored, event.now, policy, status=status)
    suppress = decided.suppress
    changed = store.apply_inbound(
        event.record(kind, subscriber.id),
        score=decided.score if decided.score != stored else None,
        rule=suppresses(suppress, printable(event.detail, 2000) or None) if suppress else None,
        channel=_CHANNEL[suppress] if suppress else "",
        everywhere=leaves_every_newsletter(suppress, status),
    )
    state = f"; now {suppress}" if changed else ""
    return Handled(f"{kind} for {subscriber.email}: score {decided.score.value:g}{state}", changed)


def leaves_every_newsletter(suppressed: str | None, status: str) -> bool:
    """Whether a suppression holds for the address in every newsletter, not only the one
    the mail was from: a complaint (the reader told their provider our mail is spam, and
    the newsletters share a sender's reputation) and a mailbox that does not exist do;
    an unsubscribe, and a bounce that may be about one message, do not."""
    return suppressed == "complained" or (suppressed == "bounced" and names_the_mailbox(status))


def _tag(tagged: tuple[str, ...], secret_key: str, purpose: str) -> int | None:
    """The number the first tag signed for ``purpose`` names, or None.  The signature
    alone says what a tag is for: the local part is whatever the settings made it."""
    for address in tagged:
        if not address:
            continue
        try:
            return read_tagged_address(address, secret_key, purpose)
        except TokenError:
            continue
    return None


def verdict(
    store: Store,
    settings: Settings,
    data: bytes,
    *,
    recipient: str | None = None,
    now: datetime,
) -> tuple[Verdict, str]:
    """Read and act on one message, whatever it holds: what to do with it and one line.

    The boundary of one message: "retry" only while the database is unreachable,
    "refused" for a message too big to read, "unreadable" for one that names
    nobody of ours (or that the database will not take), else "handled".
    """
    try:
        found = read_inbound(data, recipient=recipient)
    except TooBig as e:
        log_event(log, "inbound_refused", logging.WARNING, reason=str(e))
        return "refused", f"refused: {e}"
    try:
        done = handle(store, settings, found, now=now)
    except StorageError as e:
        if e.transient:
            return "retry", f"{e.message}; the mail server will try again"
        log_event(
            log,
            "inbound_not_stored",
            logging.WARNING,
            message_id=found.message_id,
            reason=printable(e.reason),
        )
        return "unreadable", f"not stored: {printable(e.reason)}"
    unreadable = found.kind == "unknown" or not done.known
    return ("unreadable" if unreadable else "handled"), done.line


def from_mailbox(store: Store, settings: Settings, *, now: datetime) -> PollReport:
    """Handle every message waiting in the ``INBOUND_IMAP_URL`` mailbox.

    A handled message goes to ``digest-processed``; one that names no reader
    of ours, or cannot be read, to ``digest-unreadable`` for a person to look
    at; while the database is down, messages stay for the next poll.
    """
    assert settings.inbound.imap_url is not None

    return poll(settings.inbound.imap_url, lambda data: verdict(store, settings, data, now=now)[0])
