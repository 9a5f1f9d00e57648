"""How often a reader wants their digest: daily, weekly on a day, or once enough papers match.

Pure: parsing, and the day a reader's next email is due.  What happens on
that day (gathering the period's editions, waiting for local time) is the
decider's (``digest.plan``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

#: A threshold reader gets an email at the latest this many days after the last one.
LONGEST_WAIT_DAYS = 7
MAX_THRESHOLD = 1000


class CadenceError(ValueError):
    """A cadence digest cannot read; the message says what it accepts."""


@dataclass(frozen=True)
class Cadence:
    """``daily``; ``weekly`` on ``weekday`` (0 is Monday); or ``threshold`` once
    ``papers`` new papers match (and at the latest after a week)."""

    kind: str = "daily"
    weekday: int = 0
    papers: int = 0

    def __str__(self) -> str:
        if self.kind == "weekly":
            return f"weekly:{WEEKDAYS[self.weekday]}"
        if self.kind == "threshold":
            return f"threshold:{self.papers}"
        return "daily"

    @property
    def gathers(self) -> bool:
        """Whether one email may carry several editions."""
        return self.kind != "daily"

    def describe(self) -> str:
        """The cadence in words, for a page or a report."""
        if self.kind == "weekly":
            return f"weekly, on {WEEKDAYS[self.weekday].capitalize()}s"
        if self.kind == "threshold":
            return (
                f"once {self.papers} new papers match "
                f"(at the latest after {LONGEST_WAIT_DAYS} days)"
            )
        return "daily"


DAILY = Cadence()


def parse_cadence(text: str | None) -> Cadence:
    """Read ``daily``, ``weekly:<weekday>`` (``weekly:mon`` too) or ``threshold:<N>``;
    empty means daily.  Raises ``CadenceError``."""
    cleaned = (text or "").strip().lower()
    if cleaned in ("", "daily"):
        return DAILY
    kind, _, value = cleaned.partition(":")
    value = value.strip()
    if kind.strip() == "weekly":
        matches = [n for n, day in enumerate(WEEKDAYS) if value and day.startswith(value[:3])]
        if len(value) >= 3 and len(matches) == 1 and WEEKDAYS[matches[0]].startswith(value):
            return Cadence("weekly", weekday=matches[0])
        raise CadenceError(f"{text!r}: a weekly cadence names its day, as weekly:monday")
    if kind.strip() == "threshold":
        if value.isdigit() and 1 <= int(value) <= MAX_THRESHOLD:
            return Cadence("threshold", papers=int(value))
        raise CadenceError(
            f"{text!r}: a threshold is a number of papers from 1 to {MAX_THRESHOLD}, "
            "as threshold:10"
        )
    raise CadenceError(f"{text!r}: a cadence is daily, weekly:<day> or threshold:<papers>")


@lru_cache(maxsize=256)
def read_cadence(text: str | None) -> Cadence:
    """A stored cadence; one stored before a check existed (unreadable) counts as daily."""
    try:
        return parse_cadence(text)
    except CadenceError:
        return DAILY


def weekly_due(weekday: int, since: date) -> date:
    """The first day after ``since`` (the last email, or the day they joined) that falls
    on ``weekday``: a missed one is not made up, it is the next edition's."""
    return since + timedelta(days=(weekday - since.weekday() - 1) % 7 + 1)


def latest_due(since: date) -> date:
    """The day a threshold reader gets an email even if too few papers matched."""
    return since + timedelta(days=LONGEST_WAIT_DAYS)
