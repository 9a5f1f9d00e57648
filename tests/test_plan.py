"""The decider: one answer to "does this reader get this edition now, and why not",
asked by the send path and by --dry-run alike."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from digest import pipeline
from digest.deliver.transports import transport_for
from digest.models import Edition, Subscriber, Topic
from digest.plan import NOTHING_NEW, PAUSED, Policy, Send, Skip, Wait, decide, due_at
from digest.select.index import Section, Selection
from digest.store import Store
from digest.subscribers import check_input

from .conftest import (
    DAY,
    NOW,
    THEMES,
    Clock,
    Sleeps,
    fill,
    make_settings,
    set_paused,
    subscribe,
    unsubscribe,
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


def test_dry_run_agrees_with_run_on_paused_readers_local_times_and_empty_selections(
    store: Store, tmp_path: Path
) -> None:
    fill(store, 3, topics=["learning"])
    extra = [
        check_input("paused@example.org", topics=["learning"], themes=THEMES),
        check_input("nothing@example.org", topics=["quantum chromodynamics"], themes=THEMES),
        check_input("west@example.org", timezone="America/Los_Angeles", themes=THEMES),
        check_input("east@example.org", timezone="Asia/Tokyo", themes=THEMES),
        check_input("gone@example.org", themes=THEMES),
    ]
    for item in extra:
        subscribe(store, item, now=NOW)
    set_paused(store, "paused@example.org", paused=True, now=NOW)
    unsubscribe(store, "gone@example.org", now=NOW, channel="cli")
    settings = replace(make_settings(tmp_path, None), delivery_mode="local", schedule="0 7 * * *")
    dry = pipeline.dry_run(store, settings, now=Clock(NOW), day=DAY)
    real = pipeline.run(
        store,
        settings,
        now=Clock(NOW),
        day=DAY,
        ingest_sources=False,
        sleep=Sleeps(),
        transport=transport_for(settings),
    )
    counted = lambda r: (r.delivery.sent, r.delivery.skipped, r.delivery.waiting)  # noqa: E731
    assert counted(dry) == counted(real) == (4, 2, 1)  # 3 + Tokyo; paused, nothing; LA waits
    edition = store.get_edition(DAY)
    assert edition is not None
    reasons = sorted(d.detail or "" for d in store.list_deliveries(edition.id, status="skipped"))
    assert reasons == [NOTHING_NEW, PAUSED]
