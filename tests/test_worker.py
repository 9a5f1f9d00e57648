"""The worker and the run lock: runs are never missed, never doubled, never cut dirty."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.app import job
from digest.deliver.transports import transport_for
from digest.locking import RUN_LOCK
from digest.logs import JsonFormatter, KeyValueFormatter, log_event
from digest.schedule import last_due_run, make_trigger, next_run
from digest.store import Store
from digest.subscribers import check_input
from digest.worker import Worker

from .conftest import NOW, THEMES, Clock, Sleeps, fill, make_settings, subscribe, wait_until
from .smtp_server import smtp_server

PARIS = ZoneInfo("Europe/Paris")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def test_the_job_fires_at_the_configured_local_time_across_dst_changes() -> None:
    # Paris moves to summer time on 2026-03-29 and back on 2026-10-25.
    assert next_run("0 7 * * *", PARIS, utc(2026, 3, 28, 0)) == datetime(
        2026, 3, 28, 7, tzinfo=PARIS
    )
    assert next_run("0 7 * * *", PARIS, utc(2026, 3, 28, 6, 30)).astimezone(UTC) == utc(
        2026, 3, 29, 5
    )
    assert next_run("0 7 * * *", PARIS, utc(2026, 10, 25, 0)).astimezone(UTC) == utc(
        2026, 10, 25, 6
    )
    # Every fire is 07:00 on the wall clock, whatever the offset.
    trigger = make_trigger("0 7 * * *", PARIS)
    fire = trigger.get_next_fire_time(None, utc(2026, 3, 27))
    for _ in range(5):
        assert fire is not None and (fire.hour, fire.minute) == (7, 0)
        fire = trigger.get_next_fire_time(fire, fire + timedelta(seconds=1))


def test_six_fields_mean_seconds_first() -> None:
    assert next_run("*/10 * * * * *", ZoneInfo("UTC"), utc(2026, 1, 1, 0, 0, 1)) == utc(
        2026, 1, 1, 0, 0, 10
    )
    with pytest.raises(ValueError):
        make_trigger("7 * *", ZoneInfo("UTC"))


_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


@st.composite
def _weekday_fields(draw: st.DrawFn) -> tuple[str, set[int]]:
    """A cron day-of-week field, in one of the ways people write one, and its days
    (0 Sunday ... 6 Saturday, as cron counts)."""
    days = draw(st.sets(st.integers(0, 6), min_size=1))
    way = draw(st.sampled_from(["numbers", "names", "range", "step"]))
    if way == "range":
        first = draw(st.integers(0, 6))
        last = draw(st.integers(first, 7))
        return f"{first}-{last}", {d % 7 for d in range(first, last + 1)}
    if way == "step":
        first, step = draw(st.integers(0, 6)), draw(st.integers(1, 3))
        return f"{first}/{step}", {d % 7 for d in range(first, 8, step)}
    parts = [
        _DAY_NAMES[d].upper()
        if way == "names"
        else ("7" if d == 0 and draw(st.booleans()) else str(d))
        for d in sorted(days)
    ]
    return ",".join(parts), days


@settings(max_examples=60, deadline=None)
@given(_weekday_fields(), st.sampled_from(["*", "1", "13"]))
def test_cron_days_are_read_as_cron_reads_them(weekdays: tuple[str, set[int]], day: str) -> None:
    field, days = weekdays
    trigger = make_trigger(f"0 7 {day} * {field}", PARIS)
    start = datetime(2026, 3, 1, tzinfo=PARIS)
    fired = set()
    fire = trigger.get_next_fire_time(None, start)
    while fire is not None and fire < start + timedelta(days=42):
        fired.add(fire.date())
        fire = trigger.get_next_fire_time(fire, fire + timedelta(minutes=1))
    expected = set()
    for n in range(42):
        when = (start + timedelta(days=n)).date()
        on_weekday = (when.weekday() + 1) % 7 in days  # Python's Monday is 0, cron's 1
        # With both restricted, cron fires on either: "the 13th, and every Friday".
        if on_weekday or (day != "*" and when.day == int(day)):
            expected.add(when)
    assert fired == expected, field


def test_a_missed_run_is_due_within_the_grace_window_only() -> None:
    grace = timedelta(hours=6)
    assert last_due_run("0 7 * * *", PARIS, datetime(2026, 5, 4, 9, tzinfo=PARIS), grace) == (
        datetime(2026, 5, 4, 7, tzinfo=PARIS)
    )
    assert last_due_run("0 7 * * *", PARIS, datetime(2026, 5, 4, 14, tzinfo=PARIS), grace) is None
    assert last_due_run("0 7 * * *", PARIS, datetime(2026, 5, 4, 6, tzinfo=PARIS), grace) is None


def test_catch_up_after_downtime_sends_once(store: Store, tmp_path: Path) -> None:
    fill(store, 3)
    url = store.url
    settings = make_settings(tmp_path, None)
    worker = Worker(settings, lambda: Store.open(url), clock=Clock(NOW))  # 08:00 UTC, due 07:00
    assert worker.due_now(NOW) == utc(2026, 11, 28, 7)
    report = worker.run_job()
    assert report is not None and report.delivery.sent == 3
    assert worker.due_now(NOW) is None  # delivered: nothing more to catch up
    assert worker.run_job() is not None
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 3


def test_local_delivery_waits_for_each_subscribers_own_morning(
    store: Store, tmp_path: Path
) -> None:
    fill(store, 0)
    subscribe(
        store, check_input("tokyo@example.org", timezone="Asia/Tokyo", themes=THEMES), now=NOW
    )
    subscribe(
        store, check_input("la@example.org", timezone="America/Los_Angeles", themes=THEMES), now=NOW
    )
    config = tmp_path / "local.toml"
    config.write_text('[schedule]\ncron = "0 7 * * *"\ndelivery = "local"\n')
    from digest.config import load_settings

    settings = load_settings(config, environ={"DIGEST_OUTBOX_DIR": str(tmp_path / "outbox")})
    day = date(2026, 11, 28)
    # 07:00 UTC: past 07:00 in Tokyo (16:00), not yet in Los Angeles (23:00 the day before).
    first = job.run(
        store,
        settings,
        job.Runtime(
            now=Clock(utc(2026, 11, 28, 7)), transport=transport_for(settings), sleep=Sleeps()
        ),
        job.RunOptions(day=day, ingest_sources=False),
    )
    assert (first.delivery.sent, first.delivery.waiting, first.still_queued) == (1, 1, 1)
    assert first.ok  # waiting for a local morning is not a failure
    later = job.run(
        store,
        settings,
        job.Runtime(
            now=Clock(utc(2026, 11, 28, 15, 30)), transport=transport_for(settings), sleep=Sleeps()
        ),
        job.RunOptions(day=day, plan=False),
    )
    assert (later.delivery.sent, later.still_queued) == (1, 0)


def test_log_lines_are_key_value_or_json_and_hide_secrets() -> None:
    record = logging.LogRecord("digest.worker", logging.INFO, "x", 1, "run_finished", (), None)
    record.fields = {"sent": 3, "note": "two words", "smtp_password": "hunter2", "token": "t"}  # type: ignore[attr-defined]
    line = KeyValueFormatter().format(record)
    assert line.endswith(
        'INFO digest.worker run_finished sent=3 note="two words" '
        "smtp_password=[hidden] token=[hidden]"
    )
    payload = json.loads(JsonFormatter().format(record))
    assert payload["event"] == "run_finished" and payload["sent"] == 3
    assert "hunter2" not in json.dumps(payload)
    log_event(logging.getLogger("digest.test"), "smoke")  # no crash without handlers


# -- real processes


def env_for(tmp_path: Path, port: int, **extra: str) -> dict[str, str]:
    return (
        os.environ
        | {
            "DIGEST_CONFIG": str(tmp_path / "config.toml"),
            "DIGEST_DATABASE_URL": f"sqlite:///{tmp_path / 'digest.sqlite3'}",
            "SECRET_KEY": "test-secret-key-for-digest-tests-0123456789",
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(port),
            "SMTP_SECURITY": "none",
        }
        | extra
    )


def prepare(tmp_path: Path, subscribers: int, config: str) -> None:
    (tmp_path / "config.toml").write_text('[sender]\naddress = "digest@example.org"\n' + config)
    store = Store.open(f"sqlite:///{tmp_path / 'digest.sqlite3'}")
    fill(store, subscribers)
    store.close()


def _finished_runs(tmp_path: Path) -> int:
    store = Store.open(f"sqlite:///{tmp_path / 'digest.sqlite3'}")
    try:
        return sum(1 for r in store.recent_runs(1000) if r.finished_at is not None)
    finally:
        store.close()


def _lines_of(process: subprocess.Popen[str]) -> list[str]:
    """The process's stderr lines as they come, gathered by a thread that closes the
    pipe at its end."""
    lines: list[str] = []

    def gather() -> None:
        assert process.stderr is not None
        with process.stderr:
            lines.extend(iter(process.stderr.readline, ""))

    threading.Thread(target=gather, daemon=True).start()
    return lines


@pytest.mark.slow
def test_two_workers_started_together_deliver_once_per_subscriber(tmp_path: Path) -> None:
    prepare(tmp_path, 300, '[schedule]\ncron = "*/2 * * * * *"\n')
    with smtp_server() as (server, port):
        command = [sys.executable, "-m", "digest", "worker"]
        workers = [
            subprocess.Popen(
                command, env=env_for(tmp_path, port), stderr=subprocess.PIPE, text=True
            )
            for _ in range(2)
        ]
        wait_until(lambda: len(server.received) >= 300)
        # Two more scheduled runs after the last message: they must find nothing to send.
        finished = _finished_runs(tmp_path)
        wait_until(lambda: _finished_runs(tmp_path) >= finished + 2)
        for process in workers:
            process.send_signal(signal.SIGTERM)
        logs = [process.communicate(timeout=30)[1] for process in workers]
    assert [process.returncode for process in workers] == [0, 0]
    counts = [len(items) for items in server.by_recipient().values()]
    assert len(counts) == 300 and set(counts) == {1}
    assert all("worker_started" in log and "worker_stopped" in log for log in logs)
    assert any("run_skipped" in log or "sent=0" in log for log in logs)


@pytest.mark.slow
def test_a_worker_catches_up_a_missed_run_once_at_start(tmp_path: Path) -> None:
    due = datetime.now(UTC) - timedelta(minutes=2)
    prepare(tmp_path, 20, f'[schedule]\ncron = "{due.minute} {due.hour} * * *"\n')
    with smtp_server() as (server, port):
        for start in range(2):  # the second start finds the edition delivered
            process = subprocess.Popen(
                [sys.executable, "-m", "digest", "--log-format", "json", "worker"],
                env=env_for(tmp_path, port),
                stderr=subprocess.PIPE,
                text=True,
            )
            lines = _lines_of(process)
            wait_until(lambda lines=lines: any('"worker_started"' in line for line in lines))
            if start == 0:  # the catch-up run: wait for it to finish
                wait_until(lambda: _finished_runs(tmp_path) >= 1)
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
            wait_until(lambda p=process: p.stderr is not None and p.stderr.closed)
            log = "".join(lines)
            assert process.returncode == 0, log
            events = [json.loads(line)["event"] for line in lines if line.startswith("{")]
            assert events[0] == ("catching_up" if start == 0 else "worker_started"), events
    assert len(server.received) == 20
    assert set(len(v) for v in server.by_recipient().values()) == {1}


@pytest.mark.slow
def test_sigterm_mid_run_leaves_a_consistent_outbox_the_next_run_completes(
    tmp_path: Path,
) -> None:
    prepare(tmp_path, 1000, "[delivery]\nrate_limit_per_second = 150\n")
    command = [sys.executable, "-m", "digest", "run", "--no-ingest", "--date", "2026-11-28"]
    with smtp_server() as (server, port):
        env = env_for(tmp_path, port)
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        wait_until(lambda: len(server.received) >= 100)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
        assert process.returncode == 0, err
        assert "finishing the message in flight" in err
        received = len(server.received)
        assert received < 1000
        store = Store.open(env["DIGEST_DATABASE_URL"])
        edition = store.get_edition(date(2026, 11, 28))
        assert edition is not None
        counts = store.delivery_counts(edition.id)
        assert counts["sent"] == received and counts["queued"] == 1000 - received
        assert store.lock_holder(RUN_LOCK, now=datetime.now(UTC)) is None
        assert store.recent_runs(1)[0].outcome == "interrupted"
        store.close()
        rerun = subprocess.run(command, env=env, capture_output=True, text=True)
        assert rerun.returncode == 0, rerun.stderr
    counts_by_address = [len(v) for v in server.by_recipient().values()]
    assert len(counts_by_address) == 1000 and set(counts_by_address) == {1}


@pytest.mark.slow
def test_sigterm_stops_a_worker_in_the_middle_of_a_slow_fetch(tmp_path: Path) -> None:
    from .http_server import http_site, trickle

    due = datetime.now(UTC) - timedelta(minutes=2)
    with http_site() as site, smtp_server() as (_, port):
        site.routes["/feed"] = lambda _h: (200, {}, trickle(b"<rss>" + b" " * 1000, 1.0))
        prepare(
            tmp_path,
            3,
            f'[schedule]\ncron = "{due.minute} {due.hour} * * *"\n'
            f"[limits]\nfetch_timeout_seconds = 600\n"
            f'[[sources]]\nname = "slow"\nlocation = "{site.url("/feed")}"\n',
        )
        process = subprocess.Popen(
            [sys.executable, "-m", "digest", "worker"],
            env=env_for(tmp_path, port),
            stderr=subprocess.PIPE,
            text=True,
        )
        wait_until(lambda: site.requests)  # the catch-up run is reading the trickling feed
        process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        _, log = process.communicate(timeout=30)
    assert time.monotonic() - started < 5, log
    assert process.returncode == 0, log
