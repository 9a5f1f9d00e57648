"""Ownership that lives as long as the owner: claims and the run lock are renewed from a
thread of their own while a process works, and a process that was paused past its
lease stops before sending anything more.

Real processes (``digest send`` and ``digest run``), a real relay that is slower than
the lease, SIGSTOP and SIGCONT; on PostgreSQL (shared claims) and SQLite (the lock).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from digest.errors import StorageError
from digest.locking import Keeper, LostOwnership
from digest.models import Claim
from digest.store import Store

from .conftest import DAY, empty_postgres, fill, wait_until
from .smtp_server import smtp_server

SECRET = "test-secret-key-for-digest-tests-0123456789"


def test_a_keeper_renews_until_told_to_stop_and_knows_when_it_lost() -> None:
    renewals: list[float] = []
    with Keeper(
        lambda: renewals.append(time.monotonic()) or True,
        lease=timedelta(seconds=1.5),
        what="test lease",
    ) as keeper:
        wait_until(lambda: len(renewals) >= 3)
        assert keeper.holds()
    taken = Keeper(lambda: False, lease=timedelta(seconds=0.3), what="test lease")
    with taken:
        wait_until(lambda: taken.lost is not None)
        assert not taken.holds()
        with pytest.raises(LostOwnership, match="another process took it over"):
            taken.check()


def test_a_pause_longer_than_the_lease_is_a_loss_even_if_renewing_would_work() -> None:
    keeper = Keeper(lambda: True, lease=timedelta(seconds=60), what="test lease")
    with keeper:
        assert keeper.holds()
        keeper._last = (time.monotonic() - 61, time.time() - 61)  # as after a SIGSTOP
        assert not keeper.holds()
        with pytest.raises(LostOwnership, match="paused"):
            keeper.check()


def test_a_database_out_of_reach_lets_the_lease_lapse() -> None:
    def failing() -> bool:
        raise StorageError("db", "connection refused")

    keeper = Keeper(failing, lease=timedelta(seconds=0.3), what="test lease")
    with keeper:
        wait_until(lambda: not keeper.holds())


# -- real processes


def _env(tmp_path: Path, url: str, port: int, **delivery: object) -> dict[str, str]:
    lines = "".join(f"{k} = {v}\n" for k, v in delivery.items())
    (tmp_path / "config.toml").write_text(
        f'[sender]\naddress = "digest@example.org"\n[delivery]\n{lines}'
    )
    return os.environ | {
        "DIGEST_CONFIG": str(tmp_path / "config.toml"),
        "DIGEST_DATABASE_URL": url,
        "SECRET_KEY": SECRET,
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(port),
        "SMTP_SECURITY": "none",
    }


def _planned(url: str, subscribers: int) -> None:
    store = Store.open(url)
    fill(store, subscribers, topics=["title:fairness"])
    store.create_edition(DAY, now=datetime.now(UTC))
    store.close()


def _digest(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "digest", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _exactly_once(server: object, count: int, in_flight: int = 0) -> None:
    by = server.by_recipient()  # type: ignore[attr-defined]
    assert len(by) == count
    repeats = [v for v in by.values() if len(v) > 1]
    assert len(repeats) <= in_flight, [len(v) for v in repeats]
    for copies in repeats:  # a repeat is the same message: the server may drop it
        assert len({c.message["Message-ID"] for c in copies}) == 1


@pytest.mark.slow
def test_four_senders_on_a_relay_slower_than_the_lease_send_each_once(
    postgres_url: str, tmp_path: Path
) -> None:
    empty_postgres(postgres_url)
    _planned(postgres_url, 160)
    with smtp_server() as (server, port):
        # A batch of 100 at 20 a second takes 5 s: more than the lease.
        env = _env(tmp_path, postgres_url, port, lease_seconds=3, rate_limit_per_second=20)
        senders = [_digest(env, "send") for _ in range(4)]
        outputs = [p.communicate(timeout=300) for p in senders]
        assert [p.returncode for p in senders] == [0] * 4, [e for _, e in outputs]
    _exactly_once(server, 160)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_sender_paused_past_its_lease_stops_before_sending_more(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'digest.sqlite3'}"
    else:
        url = request.getfixturevalue("postgres_url")
        empty_postgres(url)
    _planned(url, 80)
    command = "run" if backend == "sqlite" else "send"  # SQLite: the run lock is at stake
    with smtp_server() as (server, port):
        # A slow relay keeps the sender mid-run (a rate limit would too, but a sender
        # frozen inside the buckets' transaction holds every other sender's token).
        server.answer_delay = 0.05
        env = _env(tmp_path, url, port, lease_seconds=3)
        frozen = _digest(env, command, "--no-ingest") if command == "run" else _digest(env, command)
        wait_until(lambda: len(server.received) >= 10)
        frozen.send_signal(signal.SIGSTOP)
        connections = server.sessions_seen  # the frozen one's: a message in flight on each
        try:
            stopped_at = time.monotonic()
            wait_until(lambda: time.monotonic() - stopped_at > 4)  # past the 3 s lease
            other = (
                _digest(env, command, "--no-ingest") if command == "run" else _digest(env, command)
            )
            other_said = other.communicate(timeout=300)
        finally:
            frozen.send_signal(signal.SIGCONT)
            frozen_said = frozen.communicate(timeout=120)
        # The paused one may have been stopped inside a transaction that holds a row
        # (PostgreSQL): the other cannot take that row and says it is still queued
        # (exit 1); the next run sends whatever is left.  On SQLite a writer stopped
        # inside its transaction holds the whole file: the other waits out the busy
        # timeout and says in one line that it could not go on (exit 2).
        locked = backend == "sqlite" and "database is locked" in other_said[1]
        assert other.returncode in (0, 1) or (other.returncode == 2 and locked), other_said
        calm = _env(tmp_path, url, port, lease_seconds=60)
        final = subprocess.run(
            [sys.executable, "-m", "digest", command, "--no-ingest"]
            if command == "run"
            else [sys.executable, "-m", "digest", command],
            env=calm,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert final.returncode == 0, (final.stdout, final.stderr)
    if not locked:  # else the paused one kept its lock, and may have finished the run
        assert frozen.returncode == 2, frozen_said
        assert "lost its" in frozen_said[1] and "stopped on request" not in frozen_said[1]
    _exactly_once(server, 80, in_flight=connections)


@pytest.mark.slow
def test_a_long_wait_for_the_end_of_data_keeps_the_run_lock(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'digest.sqlite3'}"
    _planned(url, 1)
    with smtp_server() as (server, port):
        server.answer_delay = 6.0  # two leases: RFC 5321 allows a relay ten minutes
        env = _env(tmp_path, url, port, lease_seconds=3)
        first = _digest(env, "run", "--no-ingest")
        wait_until(lambda: server.data_commands >= 1)
        second = subprocess.run(
            [sys.executable, "-m", "digest", "run", "--no-ingest"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert second.returncode == 1 and "in progress" in second.stderr, second.stderr
        out, err = first.communicate(timeout=120)
        assert first.returncode == 0, err
    _exactly_once(server, 1)


@pytest.mark.slow
def test_a_rerun_after_a_kill_finishes_at_once_and_says_the_dead_run_failed(
    postgres_url: str, tmp_path: Path
) -> None:
    empty_postgres(postgres_url)
    _planned(postgres_url, 400)
    with smtp_server() as (server, port):
        env = _env(tmp_path, postgres_url, port, lease_seconds=300)
        victim = _digest(env, "send")
        wait_until(lambda: len(server.received) >= 50)
        victim.send_signal(signal.SIGKILL)
        victim.communicate()
        connections = server.sessions_seen  # the victim's: a message in flight on each
        rerun = subprocess.run(
            [sys.executable, "-m", "digest", "send"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert rerun.returncode == 0, rerun.stderr  # the dead one's claims: taken at once
        assert "still queued 0" in rerun.stdout
    _exactly_once(server, 400, in_flight=connections)
    status = subprocess.run(
        [sys.executable, "-m", "digest", "status", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert '"failed"' in status.stdout and "killed or crashed" in status.stdout


@pytest.mark.slow
def test_deliveries_a_live_sender_elsewhere_holds_are_said_not_hidden(
    postgres_url: str, tmp_path: Path
) -> None:
    empty_postgres(postgres_url)
    _planned(postgres_url, 20)
    store = Store.open(postgres_url)
    edition = store.get_edition(DAY)
    assert edition is not None
    # Another machine's sender holds five for a long lease, and does not move.
    elsewhere = Claim("elsewhere:4242:abcd", timedelta(hours=1))
    store.claim_deliveries(edition.id, elsewhere, now=datetime.now(UTC), limit=5)
    store.close()
    with smtp_server() as (server, port):
        env = _env(tmp_path, postgres_url, port, lease_seconds=4)
        rerun = subprocess.run(
            [sys.executable, "-m", "digest", "send"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert rerun.returncode == 1, rerun.stderr
    assert "5 deliveries are held by another sender" in rerun.stderr
    assert "still queued 5" in rerun.stdout
    assert len(server.received) == 15


def _readers_of_mixed_cadences(url: str, count: int) -> None:
    """``count`` readers, daily, weekly and threshold, and the day's edition."""
    from digest.subscribers import check_input

    from .conftest import THEMES, import_subscribers

    store = Store.open(url)
    fill(store, 0)
    cadences = ["daily"] * 3 + ["weekly:saturday", "threshold:1"]  # DAY is a Saturday
    items = [
        check_input(
            f"reader{n}@example.org",
            topics=["title:fairness"],
            themes=THEMES,
            cadence=cadences[n % len(cadences)],
        )
        for n in range(count)
    ]
    import_subscribers(store, items)
    store.create_edition(DAY, now=datetime.now(UTC))
    store.close()


@pytest.mark.slow
def test_chaos_kills_and_freezes_on_a_slow_greylisting_refusing_relay(tmp_path: Path) -> None:
    """20 kills and 5 freezes past the lease across mixed cadences: every reader gets the
    email they are due once (a repeat only of a message in flight, with its Message-ID),
    the refused ones none, and nobody is lost."""
    import random

    chance = random.Random(20261207)
    url = f"sqlite:///{tmp_path / 'digest.sqlite3'}"
    _readers_of_mixed_cadences(url, 250)
    refused = {f"reader{n}@example.org" for n in range(0, 250, 61)}
    interruptions = ["kill"] * 20 + ["freeze"] * 5
    chance.shuffle(interruptions)
    with smtp_server() as (server, port):
        server.answer_delay = 0.002  # slow enough that every interruption finds work
        for n in range(0, 250, 7):  # greylisted once
            server.refuse[f"reader{n}@example.org"] = ("451 4.7.1 greylisted", 1)
        for address in refused:
            server.refuse[address] = ("550 5.1.1 no such user", None)
        env = _env(tmp_path, url, port, lease_seconds=1, retry_delay_seconds=0.05)
        in_flight = 0  # messages that may be in flight at an interruption: one a connection
        for what in interruptions:
            before, sessions = len(server.received), server.sessions_seen
            process = _digest(env, "run", "--no-ingest")
            wait_until(
                lambda b=before, p=process: (
                    len(server.received) >= b + chance.randint(3, 12)  # noqa: B023
                    or p.poll() is not None
                )
            )
            if what == "kill":
                process.send_signal(signal.SIGKILL)
                process.communicate()
                in_flight += server.sessions_seen - sessions
                continue
            process.send_signal(signal.SIGSTOP)
            stopped_at = time.monotonic()
            wait_until(lambda s=stopped_at: time.monotonic() - s > 1.5)  # past the lease
            other = _digest(env, "run", "--no-ingest")
            started = len(server.received)
            wait_until(
                lambda b=started, o=other: (
                    len(server.received) > b + 3  # noqa: B023
                    or o.poll() is not None
                )
            )
            other.send_signal(signal.SIGKILL)
            other.communicate()
            process.send_signal(signal.SIGCONT)
            _, err = process.communicate(timeout=120)
            in_flight += server.sessions_seen - sessions
            assert process.returncode in (2, 0, 1), err  # 2: it lost its lock, and said so
        # Then the runs finish what is left, with a lease no loaded machine can miss.
        calm = _env(tmp_path, url, port, lease_seconds=60, retry_delay_seconds=0.05)
        for _ in range(2):
            final = subprocess.run(
                [sys.executable, "-m", "digest", "run", "--no-ingest"],
                env=calm,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert final.returncode in (0, 1), final.stderr
    by = server.by_recipient()
    assert refused.isdisjoint(by)
    assert set(by) == {f"reader{n}@example.org" for n in range(250)} - refused
    repeats = [copies for copies in by.values() if len(copies) > 1]
    assert len(repeats) <= in_flight  # at most the message in flight on each connection
    for copies in repeats:
        assert len({c.message["Message-ID"] for c in copies}) == 1
    store = Store.open(url)
    assert {store.get_subscriber(a).state for a in refused} == {"bounced"}  # type: ignore[union-attr]
    store.close()
