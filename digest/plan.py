"""The decider: does this reader get this edition now, with what, and if not, why not.

Pure: ``decide`` takes the edition, the subscriber as read, the time and the
policy, and returns an intent: ``Send(reader)``, ``Skip(reason)`` or
``Wait(until)``.  The send path asks it once per delivery (a dry run is the
same path); composing then only selects, and ``on_selection`` says whether
what was selected is worth an email.  Previews ask ``decide_with``, both at
once, so they can never disagree with a run.

A reader's cadence (``digest.cadence``) is part of the answer: a weekly or
threshold reader who is not due yet gets ``Wait(until, gathered=True)``, and
the papers of that edition go into their next email, which gathers every
edition since ``since`` (the day of the last email they got).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from digest.cadence import latest_due, weekly_due
from digest.models import Edition, Subscriber, Topic
from digest.select import Selection
from digest.subscriptions import is_mailed, why_not_mailed

#: What selecting for a subscriber's topics gives (an edition's index, bound).
Select = Callable[[tuple[Topic, ...]], Selection]

NOTHING_NEW = "nothing new on their topics"
#: How a delivery folded into a later email of the reader's cadence begins its note.
GATHERED = "gathered into the email of "
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
    """Mail this reader (as read when decided); ``since``: where the period their email
    gathers begins (None: this edition alone)."""

    reader: Subscriber
    since: date | None = None


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


def decide(
    edition: Edition,
    subscriber: Subscriber,
    now: datetime,
    policy: Policy,
    since: date | None = None,
) -> Decision:
    """Whether the reader is mailed this edition now, and if not, why not.

    ``since`` is where a weekly reader's period begins (None: this edition is
    the whole period, as for a resend).
    """
    refused = why_not_mailed(subscriber)
    if refused is not None:
        return Skip(refused)
    cadence = subscriber.cadence
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
    return Wait(until) if until > now else Send(subscriber, since)


def on_selection(
    intent: Send, selection: Selection, edition: Edition, policy: Policy
) -> Skip | Wait | None:
    """What the selection changes: None to mail it; a threshold reader with too few
    papers waits for more, and an empty selection is skipped unless ``send_empty``."""
    cadence = intent.reader.cadence
    if cadence.kind == "threshold" and intent.since is not None:
        latest = latest_due(intent.since)
        if selection.matched + selection.cut < cadence.papers and edition.day < latest:
            return Wait(_period_due(latest, intent.reader, policy), gathered=True)
    if selection.is_empty and not policy.send_empty:
        return Skip(NOTHING_NEW)
    return None


def decide_with(
    edition: Edition,
    subscriber: Subscriber,
    now: datetime,
    policy: Policy,
    select: Select,
    since: date | None = None,
) -> Decision:
    """The whole answer for a preview: ``decide``, then what the selection changes."""
    intent = decide(edition, subscriber, now, policy, since)
    if not isinstance(intent, Send):
        return intent
    return on_selection(intent, select(subscriber.topics), edition, policy) or intent


def reason_of(decision: Skip | Wait) -> str:
    """What a delivery that is not mailed records."""
    if isinstance(decision, Skip):
        return decision.reason
    return gathered_note(decision) if decision.gathered else "not due yet"


def gathered_note(wait: Wait) -> str:
    """What a folded delivery records: the day of the email that carries its papers."""
    return f"{GATHERED}{wait.until:%Y-%m-%d}"


def next_email_day(subscriber: Subscriber, since: date, earliest: date) -> date | None:
    """The day a reader's next email is due, as far as their cadence says, given the
    first edition that can still mail them (a threshold reader may get it sooner, once
    enough papers match); None for someone not mailed."""
    if not is_mailed(subscriber):
        return None
    cadence = subscriber.cadence
    if cadence.kind == "weekly":
        return max(weekly_due(cadence.weekday, since), earliest)
    if cadence.kind == "threshold":
        return max(latest_due(since), earliest)
    return earliest
