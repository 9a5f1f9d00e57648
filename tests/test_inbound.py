"""Mail that comes back: bounces, complaints and mailto unsubscribes, end to end."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from digest.app import job, queries
from digest.cli import cli
from digest.config import InboundSettings
from digest.deliver.transports import transport_for
from digest.inbound.parse import read_inbound
from digest.inbound.policy import BouncePolicy, BounceScore, outcome
from digest.ingest.dedupe import dedupe
from digest.models import Entry
from digest.store import Store
from digest.subscribers import check_input
from digest.tokens import tagged_address

from .conftest import DATA, NOW, THEMES, Clock, Sleeps, make_settings, run, subscribe, wait_until
from .imap_server import dovecot_available
from .mta_server import postfix_available
from .smtp_server import smtp_server

INBOUND = DATA / "inbound"
PLACEHOLDER = "bounces+41.abcdefghijklmnopqrst@example.org"
POLICY = BouncePolicy(threshold=3.0, decay_days=14)

# -- the policy


def test_hard_bounces_add_up_to_a_suppression_once_a_day() -> None:
    score = BounceScore()
    for day in range(3):
        at = NOW + timedelta(days=day)
        first = outcome("hard", score, at, POLICY)
        again = outcome("hard", first.score, at + timedelta(hours=1), POLICY)
        assert again.score == first.score  # the same day counts once
        score = first.score
    assert score.value == 3.0 and first.suppress == "bounced"


def test_a_soft_bounce_counts_half_and_a_harder_one_that_day_the_difference() -> None:
    soft = outcome("soft", BounceScore(), NOW, POLICY)
    assert soft.score.value == 0.5 and soft.suppress is None
    hard = outcome("hard", soft.score, NOW + timedelta(hours=2), POLICY)
    assert hard.score.value == 1.0


def test_the_score_starts_again_after_quiet_days_and_complaints_suppress_at_once() -> None:
    score = BounceScore(2.5, NOW, 1.0)
    later = outcome("hard", score, NOW + timedelta(days=15), POLICY)
    assert later.score.value == 1.0 and later.suppress is None
    assert outcome("complaint", BounceScore(), NOW, POLICY).suppress == "complained"
    assert outcome("unsubscribe", BounceScore(), NOW, POLICY).suppress == "unsubscribed"
    assert outcome("autoreply", score, NOW, POLICY).score == score


@given(
    st.lists(
        st.tuples(st.sampled_from(["hard", "soft", "autoreply"]), st.integers(0, 30 * 24)),
        max_size=30,
    )
)
def test_a_score_rises_by_at_most_one_a_day(events: list[tuple[str, int]]) -> None:
    score = BounceScore()
    for kind, hours in sorted(events, key=lambda e: e[1]):
        at = NOW + timedelta(hours=hours)
        new = outcome(kind, score, at, POLICY).score
        if score.counted_at is None or at - score.counted_at < timedelta(days=14):
            assert new.value >= score.value
        if score.counted_at is not None and score.counted_at.date() == at.date():
            assert new.counted_today <= 1.0
        score = new


# -- reading what comes back


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("postfix-hard.eml", "hard"),
        ("postfix-soft.eml", "soft"),
        ("exim-hard.eml", "hard"),
        ("qmail-hard.eml", "hard"),
        ("sendmail-hard.eml", "hard"),
        ("exchange-hard.eml", "hard"),
        ("gmail-hard.eml", "hard"),
        ("yahoo-hard.eml", "hard"),
        ("arf-complaint.eml", "complaint"),
        ("out-of-office.eml", "autoreply"),
        # Only the tag's signature can say it is an unsubscribe (see the end-to-end test).
        ("mailto-unsubscribe.eml", "unknown"),
    ],
)
def test_each_kind_of_message_is_told_apart(name: str, kind: str) -> None:
    found = read_inbound((INBOUND / name).read_bytes())
    assert found.kind == kind
    assert found.tagged  # each names a tagged address of ours
    if name.startswith("mailto"):
        assert found.addressed_to.startswith("unsubscribe+7.")
    if kind in ("hard", "soft"):
        assert found.failed == ("nobody@example.net",)


@given(st.binary(max_size=2000))
def test_any_bytes_are_read_without_crashing(data: bytes) -> None:
    assert read_inbound(data).kind in (
        "hard",
        "soft",
        "complaint",
        "unsubscribe",
        "autoreply",
        "unknown",
    )


def test_a_huge_message_is_refused() -> None:
    with pytest.raises(ValueError, match="over"):
        read_inbound(b"x" * 10_000_001)


# -- end to end, through `digest inbound` as an MTA's pipe runs it


SECRET = "test-secret-key-for-digest-tests-0123456789"  # make_settings's


def _inbound(tmp_path: Path, store: Store, data: bytes, *args: str) -> tuple[int, str]:
    """`digest inbound` as Postfix's pipe runs it: the message on stdin."""
    config = tmp_path / "inbound.toml"
    config.write_text(
        '[inbound]\nbounce_address = "bounces@example.org"\n'
        'unsubscribe_address = "unsubscribe@example.org"\n'
    )
    result = CliRunner().invoke(
        cli,
        ["--config", str(config), "inbound", *args],
        input=data,
        env={"DIGEST_DATABASE_URL": store.url, "SECRET_KEY": SECRET},
    )
    return result.exit_code, result.output


def test_bounces_complaints_and_mailto_unsubscribes_suppress_their_reader(
    store: Store, tmp_path: Path
) -> None:
    inbound = InboundSettings(
        bounce_address="bounces@example.org", unsubscribe_address="unsubscribe@example.org"
    )
    for name in ("dead", "ada", "eve", "bob"):
        subscribe(store, check_input(f"{name}@example.net", themes=THEMES), now=NOW)
    store.add_entries(
        [Entry(title="A paper", arxiv_id="2611.00001")], decide=dedupe, source="feed", now=NOW
    )
    with smtp_server() as (server, port):
        run(store, replace(make_settings(tmp_path, port), inbound=inbound))
    by = server.by_recipient()
    dead = by["dead@example.net"][0].sender
    assert dead.startswith("bounces+") and dead.endswith("@example.org")  # VERP
    assert "unsubscribe+" in str(by["eve@example.net"][0].message["List-Unsubscribe"])
    # 5.7.1 (refused by policy): a hard bounce that says the mailbox exists, so it is scored.
    bounce = (
        (INBOUND / "postfix-hard.eml").read_bytes().replace(PLACEHOLDER.encode(), dead.encode())
    )
    bounce = bounce.replace(b"5.1.1", b"5.7.1")
    for _ in range(2):  # twice the same day: counted once
        code, output = _inbound(tmp_path, store, bounce, "--recipient", dead)
        assert code == 0 and "hard for dead@example.net: score 1" in output, output
    reader = store.get_subscriber("dead@example.net")
    assert reader is not None
    # Two more days of bounces, as the score would stand two days later.
    store.save_bounce_score(
        reader.id, value=2.0, counted_at=datetime.now(UTC) - timedelta(days=1), counted_today=1.0
    )
    code, output = _inbound(tmp_path, store, bounce, "--recipient", dead)
    assert code == 0 and "score 3; now bounced" in output, output
    # A complaint names its delivery by the original's Return-Path.
    eve = by["eve@example.net"][0].sender
    complaint = (
        (INBOUND / "arf-complaint.eml")
        .read_bytes()
        .replace(b"bounces+42.abcdefghijklmnopqrst@example.org", eve.encode())
    )
    assert "now complained" in _inbound(tmp_path, store, complaint)[1]
    # A mail to the List-Unsubscribe address unsubscribes its reader.
    bob = store.get_subscriber("bob@example.net")
    assert bob is not None
    mailto = tagged_address("unsubscribe@example.org", SECRET, "unsubscribe", bob.id)
    letter = (
        (INBOUND / "mailto-unsubscribe.eml")
        .read_bytes()
        .replace(b"unsubscribe+7.abcdefghijklmnopqrst@example.org", mailto.encode())
    )
    assert "now unsubscribed" in _inbound(tmp_path, store, letter)[1]
    # A forged tag, or an auto-reply, changes nothing.
    code, output = _inbound(tmp_path, store, bounce.replace(dead.encode(), PLACEHOLDER.encode()))
    assert code == 0 and "no valid tag" in output
    away = (
        (INBOUND / "out-of-office.eml")
        .read_bytes()
        .replace(
            b"bounces+43.abcdefghijklmnopqrst@example.org", by["ada@example.net"][0].sender.encode()
        )
    )
    assert "ignored: an autoreply" in _inbound(tmp_path, store, away)[1]
    states = {s.email: s.state for s in store.iter_subscribers()}
    assert states == {
        "dead@example.net": "bounced",
        "ada@example.net": "active",
        "eve@example.net": "complained",
        "bob@example.net": "unsubscribed",
    }
    edition = store.recent_editions(1)[0]
    assert store.inbound_counts(edition.id) == {"hard": 3, "complaint": 1, "autoreply": 1}
    config = str(tmp_path / "inbound.toml")
    shown = CliRunner().invoke(
        cli,
        ["--config", config, "subscribers", "show", "dead@example.net"],
        env={"DIGEST_DATABASE_URL": store.url, "SECRET_KEY": SECRET},
    )
    assert "bounced      by bounce (5.7.1)" in shown.output
    assert shown.output.count("came back: hard (5.7.1)") == 3
    # Only the reader still wanted is planned for the next edition.
    next_day = NOW + timedelta(days=1)
    store.add_entries(
        [Entry(title="Another paper", arxiv_id="2611.00002")],
        decide=dedupe,
        source="feed",
        now=next_day,
    )
    with smtp_server() as (server, port):
        settings = replace(make_settings(tmp_path, port), inbound=inbound)
        job.run(
            store,
            settings,
            job.Runtime(now=Clock(next_day), transport=transport_for(settings), sleep=Sleeps()),
            job.RunOptions(day=next_day.date(), ingest_sources=False),
        )
    assert [r.recipients for r in server.received] == [["ada@example.net"]]


def test_a_recipient_refused_while_sending_is_a_hard_bounce(store: Store, tmp_path: Path) -> None:
    subscribe(store, check_input("ada@example.net", themes=THEMES), now=NOW)
    subscribe(store, check_input("gone@example.net", themes=THEMES), now=NOW)
    store.add_entries([Entry(title="A paper")], decide=dedupe, source="feed", now=NOW)
    with smtp_server() as (server, port):
        server.refuse["gone@example.net"] = ("550 5.1.1 no such user", None)
        run(store, make_settings(tmp_path, port))
    gone = store.get_subscriber("gone@example.net")
    assert gone is not None and gone.state == "bounced"  # 5.1.1: the mailbox does not exist
    edition = store.recent_editions(1)[0]
    assert store.inbound_counts(edition.id) == {"hard": 1}
    (shown,) = queries.status(store, make_settings(tmp_path, None), editions=1, now=NOW).editions
    assert shown.rate("hard", "soft") == 1.0  # one sent (Ada), one bounce


def test_without_a_database_the_mta_is_told_to_try_again(tmp_path: Path) -> None:
    (tmp_path / "digest.toml").write_text("")
    result = CliRunner().invoke(
        cli,
        ["--config", str(tmp_path / "digest.toml"), "inbound"],
        input=(INBOUND / "postfix-hard.eml").read_bytes(),
        env={
            "DIGEST_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none",
            "SECRET_KEY": SECRET,
        },
    )
    assert result.exit_code == 75, result.output


@pytest.mark.skipif(
    not dovecot_available(),
    reason="Dovecot not installed (apt-get install dovecot-imapd; .ci/run does it)",
)
def test_the_mailbox_is_read_and_each_message_filed(store: Store, tmp_path: Path) -> None:
    from .imap_server import dovecot, file_into, messages_in

    inbound = InboundSettings(bounce_address="bounces@example.org")
    subscribe(store, check_input("dead@example.net", themes=THEMES), now=NOW)
    store.add_entries([Entry(title="A paper")], decide=dedupe, source="feed", now=NOW)
    with smtp_server() as (server, port):
        run(store, replace(make_settings(tmp_path, port), inbound=inbound))
    sender = server.received[0].sender
    bounce = (
        (INBOUND / "postfix-hard.eml").read_bytes().replace(PLACEHOLDER.encode(), sender.encode())
    )
    with dovecot() as url:
        imap_port = int(url.rsplit(":", 1)[1].split("/")[0])
        file_into(imap_port, bounce)
        file_into(imap_port, b"Subject: hello\r\n\r\nnot a bounce at all\r\n")
        file_into(imap_port, bounce.replace(sender.encode(), PLACEHOLDER.encode()))  # forged
        config = tmp_path / "inbound.toml"
        config.write_text('[inbound]\nbounce_address = "bounces@example.org"\n')
        result = CliRunner().invoke(
            cli,
            ["--config", str(config), "inbound", "--imap"],
            env={"DIGEST_DATABASE_URL": store.url, "SECRET_KEY": SECRET, "INBOUND_IMAP_URL": url},
        )
        assert result.exit_code == 0, result.output
        assert "1 handled, 2 unreadable, 0 left" in result.output
        assert (
            messages_in(imap_port, "INBOX"),
            messages_in(imap_port, "digest-processed"),
            messages_in(imap_port, "digest-unreadable"),
        ) == (0, 1, 2)
    reader = store.get_subscriber("dead@example.net")
    assert reader is not None and reader.state == "bounced"  # 5.1.1: at once


@pytest.mark.skipif(
    not postfix_available(),
    reason="Postfix not installed (apt-get install postfix; .ci/run does it)",
)
def test_a_dsn_from_a_real_postfix_suppresses_the_reader_and_nobody_else(
    store: Store, tmp_path: Path
) -> None:
    from .mta_server import postfix

    inbound = InboundSettings(bounce_address="bounces@inbound.test", bounce_threshold=1.0)
    for name in ("dead", "ada"):
        subscribe(store, check_input(f"{name}@example.net", themes=THEMES), now=NOW)
    store.add_entries([Entry(title="A paper")], decide=dedupe, source="feed", now=NOW)
    with postfix() as mta:
        report = run(store, replace(make_settings(tmp_path, mta.port), inbound=inbound))
        assert report.delivery.sent == 2  # Postfix took both; it bounces one later
        wait_until(lambda: list(mta.saved.glob("*.eml")), seconds=60)
        (dsn,) = mta.saved.glob("*.eml")
        data = dsn.read_bytes()
    assert b"message/delivery-status" in data and b"5.1.1" in data  # Postfix's own words
    found = read_inbound(data)
    assert found.kind == "hard" and found.failed == ("dead@example.net",)
    config = tmp_path / "inbound.toml"
    config.write_text(
        '[inbound]\nbounce_address = "bounces@inbound.test"\nbounce_threshold = 1.0\n'
    )
    result = CliRunner().invoke(
        cli,
        ["--config", str(config), "inbound", "--recipient", found.tagged[0]],
        input=data,
        env={"DIGEST_DATABASE_URL": store.url, "SECRET_KEY": SECRET},
    )
    assert result.exit_code == 0 and "now bounced" in result.output, result.output
    # The next edition is planned for everyone else only.
    next_day = NOW + timedelta(days=1)
    store.add_entries([Entry(title="Another paper")], decide=dedupe, source="feed", now=next_day)
    edition = store.create_edition(next_day.date(), now=next_day)
    planned = {d.subscriber_id for d in store.list_deliveries(edition.id)}
    ada = store.get_subscriber("ada@example.net")
    assert ada is not None and planned == {ada.id}
