"""Stale sources: a silence past an announcement day of a source's calendar is a finding."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from digest.app import queries
from digest.calendars import (
    CALENDARS,
    announces,
    default_calendar,
    missed_days,
    staleness,
    why_quiet,
)
from digest.cli import cli
from digest.config import SourceSpec
from digest.models import Subscriber
from digest.store import SourceCheck, Store

from .conftest import make_settings


def test_arxiv_and_hugging_face_are_quiet_at_weekends_and_say_so() -> None:
    friday, monday, tuesday = date(2026, 11, 27), date(2026, 11, 30), date(2026, 12, 1)
    assert default_calendar("https://rss.arxiv.org/rss/cs.LG") == "arxiv"
    assert default_calendar("https://huggingface.co/api/daily_papers") == "weekdays"
    assert default_calendar("/srv/lab-news.json") == "daily"
    assert staleness("arxiv", friday, monday) is None  # Saturday and Sunday bring nothing
    assert staleness("arxiv", friday, tuesday) == (
        "nothing new since 2026-11-27: 1 announcement day passed (arxiv)"
    )
    assert staleness("daily", friday, monday) is not None
    assert staleness("arxiv", None, tuesday) is None  # never brought anything: not stale
    assert why_quiet("arxiv", date(2026, 11, 28)) == (
        "arXiv does not announce on Fridays and Saturdays (US Eastern)"
    )
    assert why_quiet("arxiv", monday) is None and why_quiet("daily", date(2026, 11, 28)) is None


@given(
    st.sampled_from(sorted(CALENDARS)),
    st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 1, 1)),
    st.integers(0, 40),
)
def test_missed_days_count_the_announcements_between(calendar: str, last: date, gap: int) -> None:
    today = last + timedelta(days=gap)
    between = [last + timedelta(days=n) for n in range(1, gap)]
    assert missed_days(calendar, last, today) == sum(announces(calendar, d) for d in between)
    assert (staleness(calendar, last, today) is None) == (missed_days(calendar, last, today) == 0)


def test_a_stale_source_is_said_where_operators_look(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, None, DIGEST_DATABASE_URL=f"sqlite:///{tmp_path / 'c.sqlite3'}"
    )
    spec = SourceSpec("arxiv-cs", "https://rss.arxiv.org/rss/cs.LG", calendar="arxiv")
    settings = replace(settings, sources=(spec,))
    store = Store.open(settings.database_url)
    friday = datetime(2026, 11, 27, 7, tzinfo=UTC)
    store.record_source_check(SourceCheck("arxiv-cs", friday, "ok", None, 40, 40))
    for days in (3, 4):  # Monday and Tuesday: read, nothing new
        later = friday + timedelta(days=days)
        store.record_source_check(SourceCheck("arxiv-cs", later, "unchanged", None, 40, 0))
    _, [monday] = queries.sources(store, settings, now=friday + timedelta(days=3))
    _, [tuesday] = queries.sources(store, settings, now=friday + timedelta(days=4))
    assert monday.stale is None and tuesday.stale is not None
    store.close()


def test_sources_list_says_stale_and_exits_1(project: Path) -> None:
    (project / "config" / "digest.toml").write_text(
        '[[sources]]\nname = "arxiv-cs"\nlocation = "https://rss.arxiv.org/rss/cs.LG"\n',
        encoding="utf-8",
    )
    store = Store.open("sqlite:///var/digest.sqlite3", create_folder=True)
    long_ago = datetime.now(UTC) - timedelta(days=9)
    store.record_source_check(SourceCheck("arxiv-cs", long_ago, "ok", None, 40, 40))
    store.record_source_check(SourceCheck("arxiv-cs", datetime.now(UTC), "unchanged", None, 40, 0))
    store.close()
    listed = CliRunner().invoke(cli, ["sources", "list", "--json"])
    assert listed.exit_code == 1
    [source] = json.loads(listed.output)["sources"]
    assert source["calendar"] == "arxiv" and "announcement days passed" in source["stale"]
    assert "stale" in CliRunner().invoke(cli, ["sources", "list"]).output


def test_a_day_its_sources_announce_nothing_is_said_as_no_email(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, None, DIGEST_DATABASE_URL=f"sqlite:///{tmp_path / 'q.sqlite3'}"
    )
    arxiv = SourceSpec("arxiv-cs", "https://rss.arxiv.org/rss/cs.LG", calendar="arxiv")
    settings = replace(settings, sources=(arxiv,))
    friday_noon = datetime(2026, 11, 27, 12, tzinfo=UTC)  # the runs are at 07:00 UTC
    quiet = queries.quiet_runs(settings, friday_noon)
    assert [(at.strftime("%A"), why) for at, why in quiet] == [
        ("Saturday", "arXiv does not announce on Fridays and Saturdays (US Eastern)"),
        ("Sunday", "arXiv does not announce on Fridays and Saturdays (US Eastern)"),
    ]
    store = Store.open(settings.database_url)
    status = queries.status(store, settings, editions=1, now=friday_noon)
    assert status.quiet == quiet
    with_lab_news = replace(settings, sources=(arxiv, SourceSpec("news", "/srv/news.json")))
    assert queries.quiet_runs(with_lab_news, friday_noon) == []  # a daily source may bring some
    sending_empty = replace(settings, delivery=replace(settings.delivery, send_empty=True))
    assert queries.quiet_runs(sending_empty, friday_noon) == []  # "nothing new" goes out then
    store.close()


def test_the_next_email_skips_the_quiet_days(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, None, DIGEST_DATABASE_URL=f"sqlite:///{tmp_path / 'n.sqlite3'}"
    )
    settings = replace(
        settings,
        sources=(SourceSpec("arxiv-cs", "https://rss.arxiv.org/rss/cs.LG", calendar="arxiv"),),
    )
    store = Store.open(settings.database_url)
    reader = Subscriber(1, "ada@example.org", "active")
    friday_noon = datetime(2026, 11, 27, 12, tzinfo=UTC)
    due = queries.next_email(store, settings, reader, now=friday_noon)
    assert due is not None and due.strftime("%A %H:%M") == "Monday 07:00"
    store.close()
