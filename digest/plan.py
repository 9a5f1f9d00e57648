"""The decider: does this reader get this edition now, with what, and if not, why not.

Pure: takes the edition, the subscriber as stored, the time and the policy,
and returns ``Send(selection)``, ``Skip(reason)`` or ``Wait(until)``.  The
send path, ``--dry-run`` and previews all ask it, so they can never disagree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from digest.models import Edition, Subscriber, Topic
from digest.select.index import Selection

#: What selecting for a subscriber's topics gives (an edition's index, bound).
Select = Callable[[tuple[Topic, ...]], Selection]

NOTHING_NEW = "nothing new on their topics"
PAUSED = "paused"
LEFT = "unsubscribed before sending"


@dataclass(frozen=True)
class Policy:
    """The settings the decision depends on."""

    #: Mail "nothing new on your topics" instead of skipping.
    send_empty: bool = False
    #: "fixed": everyone at once; "local": at ``local_time`` in each reader's timezone.
    mode: str = "fixed"
    local_time: tuple[int, int] = (7, 0)
    #: The timezone of readers who gave none.
    zone: ZoneInfo = ZoneInfo("UTC")


@dataclass(frozen=True)
class Send:
    """Mail this selection."""

    selection: Selection


@dataclass(frozen=True)
class Skip:
    """Mail nothing, for this reason (recorded with the delivery)."""

    reason: str


@dataclass(frozen=True)
class Wait:
    """Not yet: the reader's delivery time is ``until``."""

    until: datetime


Decision = Send | Skip | Wait


def due_at(day: date, subscriber: Subscriber, policy: Policy) -> datetime:
    """When a subscriber may get the edition of ``day``."""
    if policy.mode != "local":
        return datetime.min.replace(tzinfo=UTC)
    hour, minute = policy.local_time
    zone = ZoneInfo(subscriber.timezone) if subscriber.timezone else policy.zone
    return datetime.combine(day, time(hour, minute), tzinfo=zone)


def availability(
    edition: Edition, subscriber: Subscriber, now: datetime, policy: Policy
) -> Skip | Wait | None:
    """Whether the reader can be mailed now at all: None when they can."""
    if subscriber.status != "active":
        return Skip(LEFT)
    if subscriber.paused:
        return Skip(PAUSED)
    until = due_at(edition.day, subscriber, policy)
    return Wait(until) if until > now else None


def decide(
    edition: Edition, subscriber: Subscriber, now: datetime, policy: Policy, select: Select
) -> Decision:
    """The whole decision, the selection included."""
    blocked = availability(edition, subscriber, now, policy)
    if blocked is not None:
        return blocked
    selection = select(subscriber.topics)
    if selection.is_empty and not policy.send_empty:
        return Skip(NOTHING_NEW)
    return Send(selection)
