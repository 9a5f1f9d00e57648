"""Each reader's cadence: parsing, the decider's answer, and a simulated month of real
runs against the test SMTP server, on both backends, with a DST change, a week with
the worker stopped, and a send stopped half way."""

from __future__ import annotations

import email.utils
import re
import threading
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from digest.app import job
from digest.cadence import (
    WEEKDAYS,
    Cadence,
    CadenceError,
    latest_due,
    parse_cadence,
    weekly_due,
)
from digest.config import Settings, load_settings
from digest.deliver.transports import transport_for
from digest.ingest.dedupe import dedupe
from digest.models import Edition, Entry, Subscriber
from digest.plan import Policy, Send, Skip, Wait, decide, next_email_day
from digest.store import Store
from digest.subscribers import check_input

from .conftest import THEMES, Sleeps
from .conftest import subscribe as add_subscriber
from .smtp_server import smtp_server

cadences = st.one_of(
    st.just(Cadence()),
    st.integers(0, 6).map(lambda d: Cadence("weekly", weekday=d)),
    st.integers(1, 1000).map(lambda n: Cadence("threshold", papers=n)),
)


@given(cadences)
def test_a_cadence_reads_back_what_it_writes(cadence: Cadence) -> None:
    assert parse_cadence(str(cadence)) == cadence
    assert parse_cadence(str(cadence).upper()) == cadence


@given(st.text(max_size=30))
def test_any_text_is_a_cadence_or_one_clear_error(text: str) -> None:
    try:
        parsed = parse_cadence(text)
    except CadenceError as e:
        assert "\n" not in str(e) and "cadence" in str(e) or "weekly" in str(e)
    else:
        assert parse_cadence(str(parsed)) == parsed


def test_cadences_people_type() -> None:
    assert str(parse_cadence("Weekly:Mon")) == "weekly:monday"
    assert str(parse_cadence(" threshold:10 ")) == "threshold:10"
    assert parse_cadence("") == parse_cadence("daily") == Cadence()
    for wrong in ("weekly", "weekly:m", "weekly:funday", "threshold:0", "threshold:x", "hourly"):
        with pytest.raises(CadenceError):
            parse_cadence(wrong)


@given(st.integers(0, 6), st.dates(date(2000, 1, 1), date(2100, 1, 1)))
def test_a_weekly_email_is_due_on_its_day_within_the_week_after_the_last(
    weekday: int, since: date
) -> None:
    due = weekly_due(weekday, since)
    assert due.weekday() == weekday and since < due <= since + timedelta(days=7)
    assert latest_due(since) == since + timedelta(days=7)


def test_the_decider_folds_an_edition_a_weekly_reader_is_not_due_for() -> None:
    bob = Subscriber(1, "bob@example.org", "active", cadence=parse_cadence("weekly:monday"))
    tuesday = Edition(1, date(2026, 11, 3), datetime(2026, 11, 3, 7, tzinfo=UTC), 5)
    waited = decide(tuesday, bob, tuesday.created_at, Policy(), since=date(2026, 11, 2))
    assert isinstance(waited, Wait) and waited.gathered
    assert waited.until.date() == date(2026, 11, 9)
    # A resend, or a page with no history, asks about the edition alone.
    assert decide(tuesday, bob, tuesday.created_at, Policy()) == Send(bob)
    assert next_email_day(bob, date(2026, 11, 2), date(2026, 11, 3)) == date(2026, 11, 9)
    gone = Subscriber(2, "gone@example.org", "unsubscribed", cadence=parse_cadence("weekly:monday"))
    assert next_email_day(gone, date(2026, 11, 2), date(2026, 11, 3)) is None


# -- a simulated month

START = date(2026, 11, 2)  # a Monday
STOPPED = {START + timedelta(days=n) for n in range(10, 17)}  # Thu 12 to Wed 18: a Monday too
FAIRNESS_A_DAY, OTHERS_A_DAY = 4, 1


def month_settings(tmp_path: Path, port: int, database: str, **schedule: str) -> Settings:
    config = tmp_path / "digest.toml"
    lines = "".join(f'{key} = "{value}"\n' for key, value in schedule.items())
    config.write_text(
        '[digest]\ntitle = "Daily papers"\ntimezone = "Europe/Paris"\n'
        '[sender]\nname = "Daily papers"\naddress = "digest@example.org"\n'
        f"[schedule]\n{lines}"
    )
    return load_settings(
        config,
        environ={
            "DIGEST_BASE_URL": "https://digest.example.org",
            "SECRET_KEY": "test-secret-key-for-digest-tests-0123456789",
            "DIGEST_DATABASE_URL": database,
            "SMTP_SECURITY": "none",
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(port),
        },
    )


def add_papers(store: Store, day: date, at: datetime) -> None:
    papers = [
        Entry(title=f"Fairness study {day:%m%d} number {n}", abstract="fairness in ranking")
        for n in range(FAIRNESS_A_DAY)
    ]
    papers += [
        Entry(title=f"Speech codec {day:%m%d} number {n}", abstract="audio coding")
        for n in range(OTHERS_A_DAY)
    ]
    store.add_entries(papers, decide=dedupe, source="feed", now=at)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _stop_at(number: int, stop: threading.Event, accepted: int) -> None:
    if accepted == number:
        stop.set()


def titles_in(item: object) -> list[str]:
    """The papers an email shows, as its plain-text part lists them."""
    body = item.message.get_body(("plain",)).get_content()  # type: ignore[attr-defined]
    return re.findall(r"(?:Fairness study|Speech codec) \d{4} number \d", body)


def sent_days(received: list[object], address: str) -> list[date]:
    found = []
    for item in received:
        if address in item.recipients:  # type: ignore[attr-defined]
            moment = email.utils.parsedate_to_datetime(item.message["Date"])  # type: ignore[attr-defined]
            found.append(moment.astimezone(ZoneInfo("Europe/Paris")).date())
    return found


def _run_the_month(store: Store, server: Any, settings: Settings) -> None:
    """A run each day but the stopped week; the Monday after, stopped at its third message
    and run again."""
    day = START
    while day < START + timedelta(days=28):
        clock = Clock(datetime.combine(day, time(7), tzinfo=UTC))
        add_papers(store, day, clock.now - timedelta(hours=1))
        if day in STOPPED:
            day += timedelta(days=1)
            continue
        interrupt = day == date(2026, 11, 23)  # a Monday: stop the weekly send half way
        stop = threading.Event()
        # As SIGTERM would, while the third message of the run is being accepted: it
        # is sent, and nothing after it.
        third = len(server.received) + 2
        server.before_accept = partial(_stop_at, third, stop) if interrupt else None
        report = job.run(
            store,
            settings,
            job.Runtime(now=clock, transport=transport_for(settings), sleep=Sleeps(), stop=stop),
            job.RunOptions(day=day, ingest_sources=False),
        )
        if interrupt:
            assert report.delivery.interrupted and report.delivery.sent == 3
            assert report.still_queued
            report = job.run(
                store,
                settings,
                job.Runtime(now=clock, transport=transport_for(settings), sleep=Sleeps()),
                job.RunOptions(day=day, ingest_sources=False),
            )
        assert report.still_queued == 0, day
        day += timedelta(days=1)


def test_a_month_of_runs_gives_each_reader_exactly_their_emails(
    any_store: Store, tmp_path: Path
) -> None:
    store = any_store
    joined = datetime.combine(START, time(6), tzinfo=UTC)
    people = {
        "ada@example.org": None,
        "bob@example.org": "weekly:monday",
        "cy@example.org": "threshold:10",
    }
    people |= {f"weekly{n}@example.org": "weekly:monday" for n in range(4)}
    people["dee@example.org"] = "weekly:monday"  # her topic never matches
    for address, cadence in people.items():
        topics = {"cy": ["title:fairness"], "de": ["title:quantum"]}.get(address[:2])
        add_subscriber(
            store, check_input(address, topics=topics, cadence=cadence, themes=THEMES), now=joined
        )
    with smtp_server() as (server, port):
        database = store.engine.url.render_as_string(hide_password=False)
        _run_the_month(store, server, month_settings(tmp_path, port, database))
    received = server.received
    run_days = [
        START + timedelta(days=n) for n in range(28) if START + timedelta(days=n) not in STOPPED
    ]
    assert sent_days(received, "ada@example.org") == run_days  # daily: one a run
    mondays = [date(2026, 11, 2), date(2026, 11, 9), date(2026, 11, 19), date(2026, 11, 23)]
    for address in ["bob@example.org"] + [f"weekly{n}@example.org" for n in range(4)]:
        assert sent_days(received, address) == mondays, address  # the missed Monday: folded
    assert sent_days(received, "cy@example.org") == [
        date(2026, 11, d) for d in (4, 7, 10, 19, 22, 25, 28)
    ]
    # Exactly once per reader and period, nothing lost and nothing twice.
    ids = [item.message["Message-ID"] for item in received]
    assert len(ids) == len(set(ids))
    bob = [item for item in received if "bob@example.org" in item.recipients]
    subjects = [str(item.message["Subject"]) for item in bob]
    assert subjects[1] == "Daily papers, 3\u20139 November: 35 new papers"
    assert subjects[2] == "Daily papers, 10\u201319 November: 50 new papers"
    counted = [int(re.search(r"(\d+) new papers", s).group(1)) for s in subjects]  # type: ignore[union-attr]
    through_23 = (FAIRNESS_A_DAY + OTHERS_A_DAY) * 22
    assert sum(counted) == through_23  # every paper up to the last Monday, once
    shown = [t for item in bob for t in titles_in(item)]
    assert len(shown) == len(set(shown))  # "and N more" for the rest, never a repeat
    cy = [t for item in received if "cy@example.org" in item.recipients for t in titles_in(item)]
    assert len(cy) == len(set(cy)) and all(t.startswith("Fairness") for t in cy)
    # What was folded says where it went; status and the reader's page can tell.
    bob_row = store.get_subscriber("bob@example.org")
    assert bob_row is not None
    states = {d.status for _, d in store.deliveries_of(bob_row.id)}
    assert states == {"sent", "folded"}
    folded = [d for _, d in store.deliveries_of(bob_row.id) if d.status == "folded"]
    assert all(d.detail and d.detail.startswith("gathered into the email of") for d in folded)
    # A period that found nothing still closes: nothing mailed, but weekly, not daily.
    dee = store.get_subscriber("dee@example.org")
    assert dee is not None and sent_days(received, "dee@example.org") == []
    skipped = sorted(day for day, d in store.deliveries_of(dee.id) if d.status == "skipped")
    assert skipped == mondays and dee.period_start == date(2026, 11, 23)


def test_local_time_holds_across_a_dst_change_for_daily_and_weekly_readers(
    tmp_path: Path,
) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'dst.sqlite3'}")
    first = date(2026, 10, 19)  # a Monday; Paris leaves summer time on Sunday 25 October
    joined = datetime.combine(first, time(2), tzinfo=UTC)
    for address, cadence in (("ada@example.org", None), ("bob@example.org", "weekly:monday")):
        add_subscriber(
            store,
            check_input(address, cadence=cadence, timezone="Europe/Paris", themes=THEMES),
            now=joined,
        )
    with smtp_server() as (server, port):
        database = f"sqlite:///{tmp_path / 'dst.sqlite3'}"
        settings = month_settings(tmp_path, port, database, delivery="local", cron="0 7 * * *")
        for n in range(15):
            day = first + timedelta(days=n)
            add_papers(store, day, datetime.combine(day, time(1), tzinfo=UTC))
            # The worker: the edition at 04:00 UTC, then a wake-up every half hour.
            for half_hours in range(8, 20):
                clock = Clock(
                    datetime.combine(day, time(0), tzinfo=UTC) + timedelta(minutes=30 * half_hours)
                )
                job.run(
                    store,
                    settings,
                    job.Runtime(now=clock, transport=transport_for(settings), sleep=Sleeps()),
                    job.RunOptions(day=day, ingest_sources=False, plan=half_hours == 8),
                )
    store.close()
    paris = ZoneInfo("Europe/Paris")
    for item in server.received:
        moment = email.utils.parsedate_to_datetime(item.message["Date"]).astimezone(paris)
        assert time(7) <= moment.time() < time(7, 30), (item.recipients, moment)
    assert len(sent_days(server.received, "ada@example.org")) == 15
    assert sent_days(server.received, "bob@example.org") == [
        date(2026, 10, 19),
        date(2026, 10, 26),
        date(2026, 11, 2),
    ]
    assert WEEKDAYS[0] == "monday"


def test_a_late_edition_for_a_day_a_mailed_period_passed_is_never_said_to_be_gathered() -> None:
    bob = Subscriber(1, "bob@example.org", "active", cadence=parse_cadence("weekly:monday"))
    # Bob's email of Monday 16 closed his period; an edition for Saturday 14 comes late.
    late = Edition(9, date(2026, 11, 14), datetime(2026, 11, 17, 7, tzinfo=UTC), 5)
    decided = decide(late, bob, late.created_at, Policy(), since=date(2026, 11, 16))
    assert isinstance(decided, Skip)
    assert "before their last email" in decided.reason and "2026-11-16" in decided.reason
    # A missed day after his last email folds into his next one, which carries it.
    missed = Edition(10, date(2026, 11, 18), datetime(2026, 11, 19, 7, tzinfo=UTC), 5)
    waited = decide(missed, bob, missed.created_at, Policy(), since=date(2026, 11, 16))
    assert (
        isinstance(waited, Wait) and waited.gathered and waited.until.date() == date(2026, 11, 23)
    )


@pytest.mark.parametrize("cadence", ["daily", "weekly:monday", "threshold:3"])
def test_run_date_for_a_missed_day_catches_up_for_every_cadence(
    cadence: str, store: Store, tmp_path: Path
) -> None:
    with smtp_server() as (server, port):
        settings = month_settings(tmp_path, port, store.url)
        add_subscriber(
            store,
            check_input("ada@example.org", topics=["fairness"], cadence=cadence, themes=THEMES),
            now=datetime.combine(START, time(6), tzinfo=UTC),
        )

        def run_on(day: date) -> None:
            at = datetime.combine(day, time(7), tzinfo=UTC)
            job.run(
                store,
                settings,
                job.Runtime(now=Clock(at), transport=transport_for(settings), sleep=Sleeps()),
                job.RunOptions(day=day, ingest_sources=False),
            )

        add_papers(store, START, datetime.combine(START, time(6), tzinfo=UTC))
        run_on(START)  # Monday 2: everyone's first email
        tuesday = START + timedelta(days=1)
        add_papers(store, tuesday, datetime.combine(tuesday, time(6), tzinfo=UTC))
        # The worker was down on Tuesday: the operator catches up on Wednesday.
        run_on(tuesday)
        for n in range(2, 8):  # then the rest of the week, up to Monday 9
            day = START + timedelta(days=n)
            add_papers(store, day, datetime.combine(day, time(6), tzinfo=UTC))
            run_on(day)
    shown = [t for item in server.received for t in titles_in(item)]
    tuesdays = [t for t in shown if " 1103 " in t]
    assert len(tuesdays) == FAIRNESS_A_DAY  # the missed day's papers reached Ada once
    assert len(shown) == len(set(shown))


def test_the_next_email_counts_an_edition_already_built(store: Store, tmp_path: Path) -> None:
    """What the welcome mail, the preferences page, `subscribers show` and the dashboard
    promise: never an edition built before the reader joined, nor one already sent."""
    from digest.app import queries

    settings = Settings(config_path=tmp_path / "digest.toml", schedule="0 7 * * *")
    early = datetime(2026, 11, 28, 5, 0, tzinfo=UTC)  # a Saturday, before the 07:00 run
    at_seven = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)
    tomorrow = at_seven + timedelta(days=1)
    ada = reader(store, "ada@example.org", early)
    assert queries.next_email(store, settings, ada, now=early) == at_seven
    # An operator builds today's edition by hand at 05:00: it plans Ada.
    store.add_entries([Entry(title="A paper")], decide=dedupe, source="feed", now=early)
    edition = store.create_edition(date(2026, 11, 28), now=early, allow_empty=True)
    assert edition is not None
    assert queries.next_email(store, settings, ada, now=early) == early  # queued: this run
    bob = reader(store, "bob@example.org", early)
    assert queries.next_email(store, settings, bob, now=early) == tomorrow  # not today's
    (delivery,) = [d for _, d in store.deliveries_of(ada.id)]
    store.mark_sent(delivery.id, message_id="<m@x>", reply="250 ok", now=early)
    assert queries.next_email(store, settings, ada, now=early) == tomorrow
    monday = reader(store, "cy@example.org", early, cadence="weekly:monday")
    assert queries.next_email(store, settings, monday, now=early) == at_seven + timedelta(days=2)
    local = replace(settings, delivery_mode="local")
    # Local delivery: 07:00 in New York comes after the run; in Tokyo, before it.
    york = reader(store, "dan@example.org", early, timezone="America/New_York")
    expected = datetime(2026, 11, 29, 7, 0, tzinfo=ZoneInfo("America/New_York"))
    assert queries.next_email(store, local, york, now=early) == expected
    tokyo = reader(store, "eve@example.org", early, timezone="Asia/Tokyo")
    assert queries.next_email(store, local, tokyo, now=early) == tomorrow


def reader(store: Store, email: str, now: datetime, **fields: str) -> Subscriber:
    return add_subscriber(store, check_input(email, themes=THEMES, **fields), now=now)[0]
