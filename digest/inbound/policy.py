"""What a bounce or complaint does to a reader: one pure decision, Mailman's scoring.

A hard bounce counts 1 and a soft one 0.5, at most once a day per address
(a harder bounce later that day counts the difference).  The score starts
again after ``decay_days`` without a bounce.  At ``threshold`` the address
is suppressed as bounced; a complaint suppresses at once; a mailto
unsubscribe is an unsubscribe.  Lifting any of them is the consent rules'
business: only the reader's own confirmed opt-in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

#: What comes back, as ``digest.inbound.parse`` names it.
KINDS = ("hard", "soft", "complaint", "unsubscribe", "autoreply", "unknown")
_WEIGHT = {"hard": 1.0, "soft": 0.5}


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


def outcome(kind: str, score: BounceScore, now: datetime, policy: BouncePolicy) -> Outcome:
    """What a message of this kind does to a reader whose score is ``score``."""
    if kind == "complaint":
        return Outcome(score, "complained")
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
