"""When runs happen: the cron trigger, the next run, and which past run is still due.

Pure: every function takes the time it needs as an argument.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger

#: The fields of a cron expression, in order, as a person names them.
CRON_FIELDS = ("minute", "hour", "day of month", "month", "day of week")
_TRIGGER_FIELDS = ("minute", "hour", "day", "month", "day_of_week")


def make_trigger(expression: str, zone: ZoneInfo) -> BaseTrigger:
    """Build a trigger from five cron fields, or six with seconds first; ``ValueError``
    names the field that is wrong.  It reads them as cron does, where APScheduler
    differs: 0 or 7 is Sunday (APScheduler's 0 is Monday), and a day of the month with
    a day of the week means either one."""
    fields = expression.split()
    if len(fields) not in (5, 6):
        raise ValueError(f"it has {len(fields)} fields")
    names: tuple[str, ...] = CRON_FIELDS
    keys: tuple[str, ...] = _TRIGGER_FIELDS
    if len(fields) == 6:
        names, keys = ("second", *names), ("second", *keys)
    values: dict[str, str] = {}
    for name, key, value in zip(names, keys, fields, strict=True):
        try:
            values[key] = cron_weekdays(value) if key == "day_of_week" else value
            CronTrigger(**{key: values[key]}, timezone=zone)
        except ValueError as e:
            reason = str(e).split(": ", 1)[-1]
            raise ValueError(f"its {name} field {value!r}: {reason}") from e
    if values["day"] != "*" and values["day_of_week"] != "*":
        # Cron fires when either day field matches ("the 1st, and every Monday").
        return OrTrigger(
            [
                CronTrigger(**(values | {"day_of_week": "*"}), timezone=zone),
                CronTrigger(**(values | {"day": "*"}), timezone=zone),
            ]
        )
    return CronTrigger(**values, timezone=zone)


#: Cron's names of the days of the week, from 0; 7 is Sunday again.
_CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def cron_weekdays(field: str) -> str:
    """A cron day-of-week field (numbers 0-7, names, lists, ranges, steps) as the list of
    day names APScheduler reads the same way."""
    if field == "*":
        return field
    days: set[int] = set()
    for part in field.lower().split(","):
        span, slash, step_text = part.partition("/")
        step = int(step_text) if step_text.isdigit() and int(step_text) > 0 else 0
        if slash and not step:
            raise ValueError(f"the step in {part!r} is not a positive number")
        if span == "*":
            first, last = 0, 6
        elif "-" in span:
            first, last = (_cron_day(end) for end in span.split("-", 1))
        else:
            first = last = _cron_day(span)
            last = 7 if slash else last  # "1/2": from Monday on, every other day
        if last < first:
            raise ValueError(f"the range {span!r} runs backwards")
        days.update(day % 7 for day in range(first, last + 1, step or 1))
    return ",".join(_CRON_DAYS[day] for day in sorted(days))


def _cron_day(text: str) -> int:
    if text.isdigit() and int(text) <= 7:
        return int(text)
    if text[:3] in _CRON_DAYS and len(text) == 3:
        return _CRON_DAYS.index(text)
    raise ValueError(f"{text!r} is no day of the week (0-7 or sun-sat)")


def next_run(expression: str, zone: ZoneInfo, now: datetime) -> datetime | None:
    """Return the first scheduled time after ``now``."""
    fire: datetime | None = make_trigger(expression, zone).get_next_fire_time(None, now)
    return fire


def last_due_run(
    expression: str, zone: ZoneInfo, now: datetime, grace: timedelta
) -> datetime | None:
    """Return the latest scheduled time in (now - grace, now], if any: a run still worth doing."""
    trigger = make_trigger(expression, zone)
    found = None
    fire = trigger.get_next_fire_time(None, now - grace)
    while fire is not None and fire <= now:
        found = fire
        fire = trigger.get_next_fire_time(fire, fire + timedelta(microseconds=1))
    return found
