"""A relay's quotas: token buckets in the database, shared by every run and sender."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from digest.config import load_settings
from digest.deliver.quotas import take_token
from digest.store import Store

from .conftest import fill, make_settings, run
from .smtp_server import smtp_server
from .test_postgres import _planned, _send_env


def most_in_any_window(times: list[float], seconds: float) -> int:
    """The most events that fall in one window of ``seconds``."""
    times, most, start = sorted(times), 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= seconds:
            start += 1
        most = max(most, end - start + 1)
    return most


@given(
    messages=st.integers(1, 50),
    seconds=st.sampled_from([1.0, 60.0, 3600.0]),
    gaps=st.lists(st.floats(0.0, 5.0), min_size=1, max_size=200),
)
def test_a_bucket_never_lets_more_through_than_its_limit_and_its_burst(
    messages: int, seconds: float, gaps: list[float]
) -> None:
    tokens, at, counted, granted = float(messages), 0.0, 0.0, []
    for gap in gaps:
        at += gap * seconds / messages
        left, wait = take_token([(messages, seconds, tokens, at - counted)])
        tokens, counted = left[0], at
        if wait:
            assert take_token([(messages, seconds, tokens, wait)])[1] == 0.0  # then it goes
        else:
            granted.append(at)
    assert most_in_any_window(granted, seconds) <= 2 * messages  # a full bucket, refilled


def test_senders_on_two_connections_share_one_bucket(any_store: Store) -> None:
    """Two senders (two stores: two connections) spending in turns over ten simulated
    seconds get 20 a second between them, plus the first full bucket."""
    other = Store.open(any_store.url)
    start = datetime(2026, 11, 28, 7, tzinfo=UTC)
    granted = 0
    for step in range(1000):  # every 10 ms
        now = start + timedelta(milliseconds=10 * step)
        for store in (any_store, other):
            granted += store.spend_token("relay:587", [(20.0, 1.0)], take_token, now=now) == 0
    other.close()
    assert 200 <= granted <= 20 + 20 * 10


def test_a_spent_daily_quota_holds_the_rest_and_the_run_says_until_when(
    store: Store, tmp_path: Path
) -> None:
    fill(store, 12)
    with smtp_server() as (server, port):
        settings = make_settings(tmp_path, port)
        quota = tmp_path / "quota.toml"
        quota.write_text('[delivery]\nrate_limits = ["5 per day"]\n')
        delivery = load_settings(quota, environ={}).delivery
        assert delivery.limits() == ((5.0, 86400.0),)
        settings = replace(settings, delivery=delivery)
        first = run(store, settings)
        again = run(store, settings)  # the next run: the day's quota is still spent
    assert len(server.received) == 5 and first.delivery.sent == 5
    assert first.still_queued == 7 and not first.ok
    assert "why still queued: held by the relay's limit (5 per day) until about" in first.summary()
    assert again.delivery.sent == 0 and again.still_queued == 7


@pytest.mark.slow
def test_two_sender_processes_keep_one_rate_between_them(postgres_url: str, tmp_path: Path) -> None:
    _planned(postgres_url, 300)
    with smtp_server() as (server, port):
        env = _send_env(tmp_path, postgres_url, port)
        config = Path(env["DIGEST_CONFIG"])
        config.write_text(config.read_text() + 'rate_limits = ["40 per second"]\n')
        senders = [
            subprocess.Popen(
                [sys.executable, "-m", "digest", "send"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        outputs = [process.communicate(timeout=300) for process in senders]
    assert [p.returncode for p in senders] == [0, 0], [e for _, e in outputs]
    arrivals = [item.arrived for item in server.received]
    assert len(arrivals) == len({r for m in server.received for r in m.recipients}) == 300
    # One bucket for both: 300 messages take at least (300 - the first full bucket) / 40
    # seconds (two buckets of their own would let them through in half that), and no
    # second sees much more than the limit and the first bucket (arrivals lag the
    # tokens by the time a message takes, so a little more may land in one second).
    assert max(arrivals) - min(arrivals) >= (300 - 40) / 40 * 0.95
    assert most_in_any_window(arrivals, 1.0) <= 3 * 40
