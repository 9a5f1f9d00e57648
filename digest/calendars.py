"""When a source announces new papers, so that a silence is told from a quiet day.

Pure.  arXiv announces new submissions Sunday to Thursday evenings US Eastern, which
are Monday to Friday by the day of the morning after; Hugging Face's daily papers
come on weekdays; other feeds may bring something any day.
"""

from __future__ import annotations

from datetime import date, timedelta

#: Each calendar's days of new papers (Python's weekday: 0 is Monday).
CALENDARS: dict[str, frozenset[int]] = {
    "arxiv": frozenset(range(5)),
    "weekdays": frozenset(range(5)),
    "daily": frozenset(range(7)),
}

#: What a calendar says of a day without papers, for a reader or an operator.
_QUIET = {
    "arxiv": "arXiv does not announce on Fridays and Saturdays (US Eastern)",
    "weekdays": "the source publishes on weekdays only",
    "daily": "",
}


def default_calendar(location: str) -> str:
    """The calendar a source's location suggests (arXiv, Hugging Face, or any day)."""
    lowered = location.lower()
    if "arxiv.org" in lowered:
        return "arxiv"
    if "huggingface.co" in lowered:
        return "weekdays"
    return "daily"


def announces(calendar: str, day: date) -> bool:
    """Whether the source brings new papers on ``day`` by its calendar."""
    return day.weekday() in CALENDARS.get(calendar, CALENDARS["daily"])


def missed_days(calendar: str, last_new: date, today: date) -> int:
    """Days of announcements after the last one that brought papers, before today
    (today's may not have come yet)."""
    days = (today - last_new).days
    return sum(announces(calendar, last_new + timedelta(n)) for n in range(1, max(days, 0)))


def staleness(calendar: str, last_new: date | None, today: date) -> str | None:
    """Why a source that has brought papers before seems stale (None: it does not):
    an announcement day has passed with nothing new."""
    if last_new is None:
        return None
    missed = missed_days(calendar, last_new, today)
    if missed < 1:
        return None
    days = "day" if missed == 1 else "days"
    return f"nothing new since {last_new}: {missed} announcement {days} passed ({calendar})"


def quiet_day(calendars: list[str], day: date) -> str | None:
    """Why none of these sources brings papers on ``day`` (None: one of them may)."""
    reasons = [why_quiet(calendar, day) for calendar in calendars]
    if not calendars or not all(reasons):
        return None
    return reasons[0]


def why_quiet(calendar: str, day: date) -> str | None:
    """Why a day brings no papers by the calendar (None: it should bring some)."""
    return None if announces(calendar, day) else _QUIET.get(calendar) or None
