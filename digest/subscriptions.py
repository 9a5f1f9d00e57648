"""Consent rules: what each channel may do to a subscriber's state.

Pure: takes the subscriber as stored and what a channel asks, returns the
state to store or a refusal.  The reader owns their consent: whoever left
(by link, one-click, mailto, or later a complaint or a bounce) comes back
only through their own confirmed opt-in.  An operator's command, an import
or a demo never brings them back, and never changes their row.
"""

from __future__ import annotations

from dataclasses import dataclass

from digest.errors import DigestError
from digest.models import Subscriber

#: Who changed a subscriber's state, as the history records it.
CHANNELS = ("web", "confirm", "one-click", "link", "preferences", "cli", "import", "invite")

#: The states an operator may name (CLI, CSV ``status``): ``paused`` is active and paused.
STATES = ("pending", "active", "paused", "unsubscribed")


class ConsentRefused(DigestError):
    """An operator asked to bring back someone who left; only they can opt in again."""

    hint = "only the reader can opt in again: 'digest subscribe --invite EMAIL' mails them a link"

    def __init__(self, subscriber: Subscriber) -> None:
        self.email = subscriber.email
        super().__init__(f"{subscriber.email} unsubscribed; left unchanged")


@dataclass(frozen=True)
class State:
    """What to store: the status and the pause."""

    status: str
    paused: bool = False

    @property
    def name(self) -> str:
        return "paused" if self.status == "active" and self.paused else self.status


def state_of(subscriber: Subscriber) -> State:
    return State(subscriber.status, subscriber.paused)


def named(state: str) -> State:
    """The state a name in ``STATES`` stands for."""
    return State("active", True) if state == "paused" else State(state)


def operator_add(current: Subscriber | None, requested: str | None) -> State:
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
    if current.status == "unsubscribed":
        if wanted.status == "unsubscribed":
            return state_of(current)
        raise ConsentRefused(current)
    if wanted.status == "unsubscribed":
        return wanted
    return State("active", current.paused or wanted.paused)


@dataclass(frozen=True)
class SignUp:
    """What a sign-up (web form or an operator's invite) does."""

    #: The state to store, or None to leave the row exactly as it is.
    store: State | None
    #: "confirm": mail a confirmation link; "already": mail a note that they get it already.
    mail: str


def sign_up(current: Subscriber | None) -> SignUp:
    """What a sign-up does: nothing changes until the person confirms."""
    if current is None or current.status == "pending":
        return SignUp(State("pending"), "confirm")
    if current.status == "unsubscribed":
        return SignUp(None, "confirm")  # the row stays as they left it until they confirm
    return SignUp(None, "already")


def may_confirm(current: Subscriber, left_at: str | None) -> bool:
    """Whether a confirmation link activates this subscriber now.

    A pending sign-up is confirmed by its link; someone who left is brought
    back only by a link issued after they left (``left_at`` is when they had
    left as the link was made), so an old link never undoes a newer unsubscribe.
    """
    if current.status == "pending":
        return True
    if current.status == "unsubscribed":
        return left_at is not None and left_at == _stamp(current)
    return False


def left_stamp(subscriber: Subscriber) -> str | None:
    """When a subscriber left, as a confirmation link records it (None: they have not)."""
    return _stamp(subscriber) if subscriber.status == "unsubscribed" else None


def _stamp(subscriber: Subscriber) -> str | None:
    left = subscriber.unsubscribed_at
    return left.isoformat() if left is not None else "unknown"
