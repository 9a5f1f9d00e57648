"""Consent rules: what each channel may do to a subscriber.

Pure: a rule takes the subscriber as stored (None: an unknown address) and
the time, and returns the ``Change`` to store, or None to leave the row
exactly as it is; the store runs the rule inside the transaction that reads
and writes the row.  The reader owns their consent: whoever left (by link,
one-click, mailto, or later a complaint or a bounce) comes back only through
their own confirmed opt-in.  An operator's command, an import or a demo never
brings them back, and never changes their row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from digest.cadence import DAILY, Cadence
from digest.errors import DigestError
from digest.models import SUPPRESSED, Subscriber, Topic
from digest.subscribers import SubscriberInput

#: Who changed a subscriber's state, as the history records it.
CHANNELS = (
    "web",
    "confirm",
    "one-click",
    "link",
    "preferences",
    "cli",
    "import",
    "invite",
    "bounce",
    "complaint",
    "mailto",
)


class ConsentRefused(DigestError):
    """An operator asked to bring back someone who left; only they can opt in again."""

    hint = "only the reader can opt in again: 'digest subscribe --invite EMAIL' mails them a link"

    def __init__(self, subscriber: Subscriber) -> None:
        self.email = subscriber.email
        super().__init__(f"{subscriber.email} {_LEFT_HOW[subscriber.status]}; left unchanged")


#: How each suppression reads in a message.
_LEFT_HOW = {
    "unsubscribed": "unsubscribed",
    "bounced": "bounced for good",
    "complained": "reported the digest as spam",
}


def has_left(subscriber: Subscriber) -> bool:
    """Whether a subscriber is suppressed: never mailed until they opt in again."""
    return subscriber.status in SUPPRESSED


#: Why a reader is not mailed: they asked for quiet, or left (or were never confirmed).
PAUSED = "paused"
LEFT = "unsubscribed before sending"


def is_mailed(subscriber: Subscriber) -> bool:
    """Whether digest may mail a subscriber now: confirmed, not left, not paused."""
    return subscriber.state == "active"


def why_not_mailed(subscriber: Subscriber) -> str | None:
    """Why digest may not mail a subscriber now (None: it may)."""
    if is_mailed(subscriber):
        return None
    return PAUSED if subscriber.state == "paused" else LEFT


@dataclass(frozen=True)
class Change:
    """A subscriber as they are to be stored (id 0: a new one), and a note for the history."""

    subscriber: Subscriber
    detail: str | None = None


#: A consent rule: (the subscriber as stored, now) -> what to store, or None for nothing.
Rule = Callable[[Subscriber | None, datetime], Change | None]


@dataclass(frozen=True)
class State:
    """A status and a pause: what a state name stands for."""

    status: str
    paused: bool = False


def named(state: str) -> State:
    """The state a name in ``models.STATES`` stands for."""
    return State("active", True) if state == "paused" else State(state)


def operator_state(current: Subscriber | None, requested: str | None) -> State:
    """The state after an operator adds or updates someone (``digest subscribe``, a CSV row).

    A new address takes the requested state (active by default).  For a
    known one, a request for less mail (unsubscribed, paused) is applied;
    nothing else moves it: a pending sign-up becomes active (the operator
    vouches for it), and a pause stays until ``digest resume``.  Raises
    ``ConsentRefused`` for someone who left, unless the request keeps them out.
    """
    wanted = named(requested or "active")
    if current is None:
        return wanted
    if has_left(current):
        if wanted.status in SUPPRESSED:
            return State(current.status)  # they stay out as they left
        raise ConsentRefused(current)
    if wanted.status in SUPPRESSED:
        return wanted
    return State("active", current.paused or wanted.paused)


def operator_adds(item: SubscriberInput) -> Rule:
    """An operator adds or updates someone: the state as ``operator_state`` says.

    The row of someone who left never changes, not even its fields.
    """

    def rule(current: Subscriber | None, now: datetime) -> Change | None:
        state = operator_state(current, item.status)
        if current is None:
            return Change(with_state(new_subscriber(item), state, now))
        if has_left(current):
            return None
        return Change(with_state(with_input(current, item, email=item.email), state, now))

    return rule


def signs_up(item: SubscriberInput) -> Rule:
    """A sign-up (web form or an operator's invite): nothing changes until they confirm.

    A new or pending address becomes pending with these choices; an active
    one, and one that left, are left exactly as they are: a stranger must
    not change someone's topics, nor bring back someone who left.
    """

    def rule(current: Subscriber | None, now: datetime) -> Change | None:
        if current is None:
            return Change(with_state(new_subscriber(item), State("pending"), now))
        return None  # a later sign-up's choices travel only in its own link

    return rule


def sign_up_mail(before: Subscriber | None) -> str:
    """What a sign-up mails: "confirm" (a confirmation link) or "already" (they get it)."""
    return "already" if before is not None and before.status == "active" else "confirm"


#: How long after one sign-up mail to an address the next may go, whoever asks: a
#: stranger must not be able to use digest to mail someone, least of all someone who
#: left.  (The sign-up page's rate limits come on top.)
NOTICE_INTERVALS = {
    "pending": timedelta(minutes=10),
    "active": timedelta(days=1),
    "unsubscribed": timedelta(days=7),
    "bounced": timedelta(days=7),
    "complained": timedelta(days=30),
}


def notice_interval(subscriber: Subscriber) -> timedelta:
    """The least time between two sign-up mails to this subscriber's address."""
    return NOTICE_INTERVALS.get(subscriber.status, timedelta(0))


def confirms(left_at: str | None, topics: Sequence[Topic] | None, theme: str | None) -> Rule:
    """A confirmation link is followed: activate whom ``may_confirm`` accepts.

    ``topics`` and ``theme`` are what a returning reader asked for (None
    keeps the stored ones).
    """

    def rule(current: Subscriber | None, now: datetime) -> Change | None:
        if current is None or not may_confirm(current, left_at):
            return None
        detail = "opted in again" if has_left(current) else "confirmed"
        chosen = replace(
            current,
            topics=current.topics if topics is None else tuple(topics),
            theme=current.theme if theme is None else theme,
        )
        return Change(with_state(chosen, State("active"), now), detail)

    return rule


def may_confirm(current: Subscriber, left_at: str | None) -> bool:
    """Whether a confirmation link activates this subscriber now.

    A pending sign-up is confirmed by its link; someone who left is brought
    back only by a link issued after they left (``left_at`` is when they had
    left as the link was made), so an old link never undoes a newer unsubscribe.
    """
    if current.status == "pending":
        return True
    if has_left(current):
        return left_at is not None and left_at == _stamp(current)
    return False


@dataclass(frozen=True)
class Choices:
    """What a reader chose on their preferences page."""

    topics: Sequence[Topic]
    theme: str
    timezone: str | None
    paused: bool
    cadence: Cadence = DAILY
    #: Whether their emails may carry a card asking about a paper, to learn (None:
    #: unchanged, for callers that do not ask).
    explore: bool | None = None


def chooses(
    *,
    topics: Sequence[Topic],
    theme: str | None,
    timezone: str | None,
    paused: bool,
    cadence: Cadence | None = None,
    explore: bool | None = None,
) -> Rule:
    """A reader saves their preferences page; only an active reader can pause."""

    def rule(current: Subscriber | None, now: datetime) -> Change | None:
        if current is None:
            return None
        chosen = replace(
            current,
            topics=tuple(topics),
            theme=theme,
            timezone=timezone,
            explore=current.explore if explore is None else explore,
        )
        chosen = with_cadence(chosen, cadence or current.cadence)
        if may_pause(current):
            chosen = replace(chosen, paused=paused)
        return Change(chosen)

    return rule


def may_pause(subscriber: Subscriber) -> bool:
    """Whether a subscriber can be paused or resumed: only a confirmed one who is in."""
    return subscriber.status == "active"


def pauses(paused: bool) -> Rule:
    """An operator pauses or resumes an active subscriber (nobody else changes)."""

    def rule(current: Subscriber | None, now: datetime) -> Change | None:
        if current is None or not may_pause(current):
            return None
        return Change(replace(current, paused=paused))

    return rule


def leaves(current: Subscriber | None, now: datetime) -> Change | None:
    """Someone unsubscribes, by any channel: the row stays, marked with when they left."""
    return suppresses("unsubscribed")(current, now)


def suppresses(state: str, detail: str | None = None) -> Rule:
    """The reader's address is suppressed (``SUPPRESSED``): they left, it bounced for
    good, or they complained.  Someone already suppressed stays as they are."""

    def rule(current: Subscriber | None, now: datetime) -> Change | None:
        if current is None or has_left(current):
            return None
        return Change(with_state(current, State(state), now), detail)

    return rule


def left_stamp(subscriber: Subscriber) -> str | None:
    """When a subscriber left, as a confirmation link records it (None: they have not)."""
    return _stamp(subscriber) if has_left(subscriber) else None


def new_subscriber(item: SubscriberInput) -> Subscriber:
    """A subscriber not stored yet, as an input describes them."""
    return with_input(Subscriber(id=0, email=item.email, status="pending"), item)


def with_input(
    current: Subscriber, item: SubscriberInput, *, email: str | None = None
) -> Subscriber:
    """``current`` with the fields an input sets: None in the input leaves a field as it is."""
    changed = replace(
        current,
        email=email or current.email,
        name=current.name if item.name is None else item.name,
        topics=current.topics if item.topics is None else item.topics,
        theme=current.theme if item.theme is None else item.theme,
        timezone=current.timezone if item.timezone is None else item.timezone,
    )
    return with_cadence(changed, current.cadence if item.cadence is None else item.cadence)


def with_cadence(current: Subscriber, cadence: Cadence) -> Subscriber:
    """``current`` with this cadence; a new one forgets where the last period began (the
    deliveries tell it again), since it was kept only while the cadence gathered."""
    if cadence == current.cadence:
        return current
    return replace(current, cadence=cadence, period_start=None)


def with_state(current: Subscriber, state: State, now: datetime) -> Subscriber:
    """``current`` in another state; when they left is kept while they stay away."""
    left = current.unsubscribed_at if has_left(current) else now
    return replace(
        current,
        status=state.status,
        paused=state.paused,
        unsubscribed_at=left if state.status in SUPPRESSED else None,
    )


def _stamp(subscriber: Subscriber) -> str | None:
    left = subscriber.unsubscribed_at
    return left.isoformat() if left is not None else "unknown"


def operator_imports(item: SubscriberInput) -> Rule:
    """A row of an operator's import: as ``operator_adds``, but someone who left is
    passed over (and reported by ``import_result``) instead of stopping the import."""
    adds = operator_adds(item)

    def rule(current: Subscriber | None, now: datetime) -> Change | None:
        try:
            return adds(current, now)
        except ConsentRefused:
            return None

    return rule


@dataclass(frozen=True)
class ImportResult:
    """What a bulk import did: rows created, rows updated, unsubscribed rows kept so,
    and the addresses refused because they left (their rows untouched)."""

    created: int = 0
    updated: int = 0
    kept_unsubscribed: int = 0
    refused: tuple[str, ...] = ()


def import_result(
    items: Sequence[SubscriberInput],
    outcomes: Sequence[tuple[Subscriber | None, Subscriber | None]],
) -> ImportResult:
    """Sum up an import from each row's subscriber before and after (None: unchanged)."""
    created = updated = kept = 0
    refused: list[str] = []
    for item, (before, after) in zip(items, outcomes, strict=True):
        if before is None:
            created += 1
        elif after is not None:
            updated += 1
        elif named(item.status or "active").status in SUPPRESSED:
            kept += 1  # a suppression row for someone who left: nothing changes
        else:
            refused.append(item.email)
    return ImportResult(created, updated, kept, tuple(refused))
