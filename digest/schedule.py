"""When runs happen: the cron trigger, the next run, and which past run is still due.

Pure: every function takes the time it needs as an argument.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

#: The fields of a cron expression, in order, as a person names them.
CRON_FIELDS = ("minute", "hour", "day of month", "month", "day of week")
_TRIGGER_FIELDS = ("minute", "hour", "day", "month", "day_of_week")


def make_trigger(expression: str, zone: ZoneInfo) -> CronTrigger:
    """Build a trigger from five cron fields, or six with seconds first; ``ValueError``
    names the field that is wrong."""
    fields = expression.split()
    if len(fields) not in (5, 6):
        raise ValueError(f"it has {len(fields)} fields")
    names: tuple[str, ...] = CRON_FIELDS
    keys: tuple[str, ...] = _TRIGGER_FIELDS
    if len(fields) == 6:
        names, keys = ("second", *names), ("second", *keys)
    for name, key, value in zip(names, keys, fields, strict=True):
        try:
            CronTrigger(**{key: value}, timezone=zone)
        except ValueError as e:
            reason = str(e).split(": ", 1)[-1]
            raise ValueError(f"its {name} field {value!r}: {reason}") from e
    if len(fields) == 5:
        return CronTrigger.from_crontab(expression, timezone=zone)
    return CronTrigger(**dict(zip(keys, fields, strict=True)), timezone=zone)


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
