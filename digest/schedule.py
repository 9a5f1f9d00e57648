"""When runs happen: the cron trigger, the next run, and which past run is still due.

Pure: every function takes the time it needs as an argument.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger


def make_trigger(expression: str, zone: ZoneInfo) -> CronTrigger:
    """Build a trigger from five cron fields, or six with seconds first."""
    fields = expression.split()
    if len(fields) == 5:
        return CronTrigger.from_crontab(expression, timezone=zone)
    if len(fields) == 6:
        second, minute, hour, day, month, weekday = fields
        return CronTrigger(
            second=second,
            minute=minute,
            hour=hour,
            day=day,
            month=month,
            day_of_week=weekday,
            timezone=zone,
        )
    raise ValueError(f"expected five or six cron fields, got {len(fields)}")


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
