"""The decider: does this reader get this edition now, with what, and if not, why not.

Pure: takes the edition, the subscriber as stored, the time and the policy,
and returns ``Send(selection)``, ``Skip(reason)`` or ``Wait(until)``.  The
send path, ``--dry-run`` and previews all ask it, so they can never disagree.

A reader's cadence (``digest.cadence``) is part of the answer: a weekly or
threshold reader who is not due yet gets ``Wait(until, gathered=True)``, and
the papers of that edition go into their next email, which gathers every
edition since ``since`` (the day of the last email they got).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from functools import lru_cache
from zoneinfo import ZoneInfo

from digest.cadence import DAILY, Cadence, CadenceError, latest_due, parse_cadence, weekly_due
from digest.models import Edition, Subscriber, Topic
from digest.select.index import Selection

#: What selecting for a subscriber's topics gives (an edition's index, bound).
Select = Callable[[tuple[Topic, ...]], Selection]

NOTHING_NEW = "nothing new on their topics"
#: How a delivery folded into a later email of the reader's cadence begins its note.
GATHERED = "gathered into the email of "
PAUSED = "paused"
LEFT = "unsubscribed before sending"
#: Why a late edition, for a day before a gathering reader's last email, is not mailed.
PERIOD_CLOSED = "for a day before their last email, which closed its period on "


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
    """Not yet: the reader's delivery time is ``until``.  ``gathered``: their cadence
    waits for a later edition, whose email carries this one's papers too."""

    until: datetime
    gathered: bool = False


Decision = Send | Skip | Wait


def due_at(day: date, subscriber: Subscriber, policy: Policy) -> datetime:
    """When a subscriber may get the edition of ``day``."""
    if policy.mode != "local":
        return datetime.min.replace(tzinfo=UTC)
    hour, minute = policy.local_time
    zone = ZoneInfo(subscriber.timezone) if subscriber.timezone else policy.zone
    return datetime.combine(day, time(hour, minute), tzinfo=zone)


def _period_due(day: date, subscriber: Subscriber, policy: Policy) -> datetime:
    """When a later email of the reader's cadence may go: their local time that day, or
    with everyone mailed at once, the day's start."""
    if policy.mode == "local":
        return due_at(day, subscriber, policy)
    return datetime.combine(day, time(0), tzinfo=policy.zone)


def availability(
    edition: Edition,
    subscriber: Subscriber,
    now: datetime,
    policy: Policy,
    since: date | None = None,
) -> Skip | Wait | None:
    """Whether the reader can be mailed now at all: None when they can.

    ``since`` is where a weekly reader's period begins (None: this edition is
    the whole period, as for a resend).
    """
    if subscriber.status != "active":
        return Skip(LEFT)
    if subscriber.paused:
        return Skip(PAUSED)
    cadence = cadence_of(subscriber)
    if cadence.gathers and since is not None and edition.day <= since:
        # Built late for a day a mailed email already passed (the clock went back, a
        # --date for a missed day): periods only move forward, so it is not folded
        # into an email that would not carry it.
        return Skip(f"{PERIOD_CLOSED}{since:%Y-%m-%d}")
    if cadence.kind == "weekly" and since is not None:
        due = weekly_due(cadence.weekday, since)
        if edition.day < due:
            return Wait(_period_due(due, subscriber, policy), gathered=True)
    until = due_at(edition.day, subscriber, policy)
    return Wait(until) if until > now else None


def decide(
    edition: Edition,
    subscriber: Subscriber,
    now: datetime,
    policy: Policy,
    select: Select,
    since: date | None = None,
) -> Decision:
    """The whole decision, the selection included (``select`` draws from the period's
    editions for a reader whose cadence gathers them)."""
    blocked = availability(edition, subscriber, now, policy, since)
    if blocked is not None:
        return blocked
    selection = select(subscriber.topics)
    cadence = cadence_of(subscriber)
    if cadence.kind == "threshold" and since is not None:
        latest = latest_due(since)
        if selection.count + selection.cut < cadence.papers and edition.day < latest:
            return Wait(_period_due(latest, subscriber, policy), gathered=True)
    if selection.is_empty and not policy.send_empty:
        return Skip(NOTHING_NEW)
    return Send(selection)


def gathered_note(wait: Wait) -> str:
    """What a folded delivery records: the day of the email that carries its papers."""
    return f"{GATHERED}{wait.until:%Y-%m-%d}"


def is_gathered(reason: str | None) -> bool:
    """Whether a reason not to mail is that the papers wait for a later email."""
    return reason is not None and reason.startswith(GATHERED)


def gathers(subscriber: Subscriber) -> bool:
    """Whether the reader's email may carry several editions (not a daily reader)."""
    return cadence_of(subscriber).gathers


def cadence_of(subscriber: Subscriber) -> Cadence:
    """A reader's cadence; one stored before a check existed counts as daily."""
    # Most readers are daily, and this is asked of each one at every edition.
    return DAILY if subscriber.cadence == "daily" else cadence_of_text(subscriber.cadence)


def cadence_of_text(text: str) -> Cadence:
    """A stored cadence; an unreadable one counts as daily."""
    try:
        return _parsed(text)
    except CadenceError:
        return DAILY


@lru_cache(maxsize=256)
def _parsed(text: str) -> Cadence:
    return parse_cadence(text)


def next_email_day(subscriber: Subscriber, since: date, today: date) -> date | None:
    """The day a reader's next email is due, as far as their cadence says (a threshold
    reader may get it sooner, once enough papers match); None for someone not mailed."""
    if subscriber.status != "active" or subscriber.paused:
        return None
    cadence = cadence_of(subscriber)
    if cadence.kind == "weekly":
        return max(weekly_due(cadence.weekday, since), today)
    if cadence.kind == "threshold":
        return max(latest_due(since), today)
    return today
