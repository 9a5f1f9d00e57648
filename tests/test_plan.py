"""The decider: one answer to "does this reader get this edition now, and why not",
asked by the send path and by --dry-run alike."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from digest.models import Edition, Subscriber, Topic
from digest.plan import NOTHING_NEW, Policy, Send, Skip, Wait, due_at
from digest.plan import decide_with as decide
from digest.select.index import Section, Selection
from digest.subscriptions import PAUSED

from .conftest import (
    NOW,
)

EDITION = Edition(id=1, day=date(2026, 11, 28), created_at=NOW, entry_count=3)


def selecting(count: int):  # type: ignore[no-untyped-def]
    from digest.select.index import Match

    def select(_topics: tuple[Topic, ...]) -> Selection:
        return Selection((Section("x", tuple(Match(None, 1.0) for _ in range(count))),))  # type: ignore[arg-type]

    return select


def reader(**kw: object) -> Subscriber:
    return Subscriber(**({"id": 1, "email": "a@example.org", "status": "active"} | kw))  # type: ignore[arg-type]


def test_the_decision_for_each_kind_of_reader() -> None:
    fixed, local = Policy(), Policy(mode="local", local_time=(7, 0))
    assert isinstance(decide(EDITION, reader(), NOW, fixed, selecting(2)), Send)
    assert decide(EDITION, reader(paused=True), NOW, fixed, selecting(2)) == Skip(PAUSED)
    assert isinstance(
        decide(EDITION, reader(status="unsubscribed"), NOW, fixed, selecting(2)), Skip
    )
    assert decide(EDITION, reader(), NOW, fixed, selecting(0)) == Skip(NOTHING_NEW)
    assert isinstance(
        decide(EDITION, reader(), NOW, replace(fixed, send_empty=True), selecting(0)), Send
    )
    later = reader(timezone="America/Los_Angeles")
    until = datetime(2026, 11, 28, 7, 0, tzinfo=ZoneInfo("America/Los_Angeles"))
    assert decide(EDITION, later, NOW, local, selecting(2)) == Wait(until)
    assert isinstance(
        decide(EDITION, later, until + timedelta(seconds=1), local, selecting(2)), Send
    )
    assert due_at(EDITION.day, later, fixed) == datetime.min.replace(tzinfo=UTC)
