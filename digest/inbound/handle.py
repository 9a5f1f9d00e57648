"""Apply what came back: check its tag, score or suppress the reader, keep the event.

I/O at the edge of ``parse`` and ``policy``: nothing is decided here.  A
message whose tag is missing, forged or names nobody changes nothing; it is
kept as an event of kind ``unknown`` and said in the returned line.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from digest.config import InboundSettings, Settings
from digest.errors import StorageError
from digest.inbound.mailbox import PollReport, Verdict, poll
from digest.inbound.parse import Inbound, read_inbound
from digest.inbound.policy import BouncePolicy, BounceScore, outcome
from digest.models import Delivery, Subscriber
from digest.store import Store
from digest.subscriptions import suppresses
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
    delivery_id = _tag(inbound, settings, "bounce", "bounces+")
    reader_id = _tag(inbound, settings, "unsubscribe", "unsubscribe+")
    delivery = store.get_delivery(delivery_id) if delivery_id is not None else None
    subscriber_id = delivery.subscriber_id if delivery is not None else reader_id
    subscriber = store.get_subscriber_by_id(subscriber_id) if subscriber_id else None
    event = {"now": now, "message_id": inbound.message_id, "detail": inbound.detail,
             "delivery_id": delivery.id if delivery else None,
             "edition_id": delivery.edition_id if delivery else None}  # fmt: skip
    if subscriber is None or inbound.kind in ("autoreply", "unknown"):
        kind = inbound.kind if subscriber else "unknown"
        store.record_inbound(kind, subscriber_id=subscriber.id if subscriber else None, **event)
        if subscriber is None:
            log.warning("inbound_ignored", extra={"kind": inbound.kind,
                        "message_id": inbound.message_id, "reason": "no valid tag"})  # fmt: skip
            return Handled(f"ignored: a {inbound.kind} message with no valid tag", known=False)
        return Handled(f"ignored: an {inbound.kind} message about {subscriber.email}")
    return _apply(store, settings.inbound, subscriber, inbound.kind, event)


def refused_at_send(
    store: Store, settings: InboundSettings, delivery: Delivery, reply: str, *, now: datetime
) -> Handled:
    """A recipient the mail server refused for good while sending: a hard bounce."""
    subscriber = store.get_subscriber_by_id(delivery.subscriber_id)
    if subscriber is None:
        return Handled("ignored: the reader is gone", known=False)
    event = {"now": now, "message_id": delivery.message_id or "", "detail": reply,
             "delivery_id": delivery.id, "edition_id": delivery.edition_id}  # fmt: skip
    return _apply(store, settings, subscriber, "hard", event)


def _apply(
    store: Store, settings: InboundSettings, subscriber: Subscriber, kind: str,
    event: dict[str, Any],
) -> Handled:  # fmt: skip
    """Score (or suppress) a reader for what came back, and keep the event."""
    now: datetime = event["now"]
    stored = BounceScore(*store.bounce_score(subscriber.id))
    policy = BouncePolicy(settings.bounce_threshold, settings.bounce_decay_days)
    decided = outcome(kind, stored, now, policy)
    if decided.score.counted_at is not None and decided.score != stored:
        store.save_bounce_score(subscriber.id, value=decided.score.value,
                                counted_at=decided.score.counted_at,
                                counted_today=decided.score.counted_today)  # fmt: skip
    store.record_inbound(kind, subscriber_id=subscriber.id, **event)
    changed = False
    if decided.suppress is not None:
        rule = suppresses(decided.suppress, event["detail"] or None)
        channel = _CHANNEL[decided.suppress]
        changed = (
            store.amend_subscriber(subscriber.id, rule, now=now, channel=channel).after is not None
        )
    state = f"; now {decided.suppress}" if changed else ""
    return Handled(f"{kind} for {subscriber.email}: score {decided.score.value:g}{state}", changed)


def _tag(inbound: Inbound, settings: Settings, purpose: str, prefix: str) -> int | None:
    """The number the message's first valid tag of this purpose names, or None."""
    for address in inbound.tagged:
        if address.startswith(prefix):
            try:
                return read_tagged_address(address, settings.secret_key, purpose)
            except TokenError:
                continue
    return None


def from_mailbox(store: Store, settings: Settings, *, now: datetime) -> PollReport:
    """Handle every message waiting in the ``INBOUND_IMAP_URL`` mailbox.

    A handled message goes to ``digest-processed``; one that names no reader
    of ours, or cannot be read, to ``digest-unreadable`` for a person to look
    at; while the database is down, messages stay for the next poll.
    """
    assert settings.inbound.imap_url is not None

    def each(data: bytes) -> Verdict:
        try:
            found = read_inbound(data)
        except ValueError as e:
            log.warning("inbound_refused", extra={"reason": str(e)})
            return "unreadable"
        try:
            done = handle(store, settings, found, now=now)
        except StorageError:
            return "retry"
        return "unreadable" if found.kind == "unknown" or not done.known else "handled"

    return poll(settings.inbound.imap_url, each)
