"""What a bounce or complaint does to a reader: one pure decision, Mailman's scoring.

A hard bounce counts 1 and a soft one 0.5, at most once a day per address
(a harder bounce later that day counts the difference).  The score starts
again after ``decay_days`` without a bounce.  At ``threshold`` the address
is suppressed as bounced.  A permanent failure that says the mailbox or its
domain does not exist (5.1.1, 5.1.2, 5.1.10), in a bounce or in the server's
reply while sending, suppresses at once, as Gmail and Yahoo expect of a
sender; so does a complaint.  A mailto
unsubscribe is an unsubscribe.  Lifting any of them is the consent rules'
business: only the reader's own confirmed opt-in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

#: What comes back, as ``digest.inbound.parse`` names it.
KINDS = ("hard", "soft", "complaint", "unsubscribe", "autoreply", "unknown")
_WEIGHT = {"hard": 1.0, "soft": 0.5}
#: Enhanced status codes (RFC 3463) that say the address itself does not exist: bad
#: mailbox, bad system (domain), no such domain (RFC 7505's null MX).
DEAD_MAILBOX = frozenset({"5.1.1", "5.1.2", "5.1.10"})
_ENHANCED_STATUS = re.compile(r"(?<![\d.])([245]\.\d{1,3}\.\d{1,3})(?![\d.])")


@dataclass(frozen=True)
class BouncePolicy:
    """The scoring: from ``[inbound]`` in the settings."""

    threshold: float = 3.0
    decay_days: float = 14.0


@dataclass(frozen=True)
class BounceScore:
    """An address's bounce score and when a bounce last counted (and how much that day)."""

    value: float = 0.0
    counted_at: datetime | None = None
    counted_today: float = 0.0


@dataclass(frozen=True)
class Outcome:
    """What to do: the new score, and the state to suppress the reader as (or None)."""

    score: BounceScore
    suppress: str | None = None


def names_the_mailbox(status: str) -> bool:
    """Whether a permanent failure is about one mailbox (5.1.x address, 5.2.x mailbox),
    never about the sender or the session, however many come in a row."""
    return status.startswith(("5.1.", "5.2."))


def status_of(reply: str) -> str:
    """The enhanced status code (``5.1.1``) in a mail server's reply, or ""."""
    found = _ENHANCED_STATUS.search(reply[:200])
    return found.group(1) if found else ""


def outcome(
    kind: str, score: BounceScore, now: datetime, policy: BouncePolicy, *, status: str = ""
) -> Outcome:
    """What a message of this kind (with this DSN ``status``) does to a reader whose
    score is ``score``."""
    if kind == "complaint":
        return Outcome(score, "complained")
    if kind == "hard" and status in DEAD_MAILBOX:
        return Outcome(BounceScore(max(score.value, policy.threshold), now, 1.0), "bounced")
    if kind == "unsubscribe":
        return Outcome(score, "unsubscribed")
    weight = _WEIGHT.get(kind)
    if weight is None:  # an auto-reply, or something we cannot read: nothing changes
        return Outcome(score)
    value, today = score.value, 0.0
    if score.counted_at is not None:
        if now - score.counted_at >= timedelta(days=policy.decay_days):
            value = 0.0  # quiet for long enough: start again
        elif score.counted_at.date() == now.date():
            today = score.counted_today
    added = max(0.0, weight - today)  # at most once a day: the hardest bounce of the day
    if not added:
        return Outcome(score)
    new = BounceScore(value + added, now, today + added)
    return Outcome(new, "bounced" if new.value >= policy.threshold else None)
