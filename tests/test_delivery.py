"""`digest run` against a real SMTP server: every subscriber exactly once, whatever happens."""

from __future__ import annotations

import email.policy
from datetime import timedelta
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest

from digest.address import parse_address
from digest.app import accounts, job, tryouts
from digest.deliver.transports import (
    Envelope,
    OutboxTransport,
    SessionRefused,
    TransportError,
    transport_for,
)
from digest.errors import DigestError
from digest.ingest.dedupe import dedupe
from digest.models import MAX_SMTP_CONNECTIONS, Entry, Topic
from digest.store import Store
from digest.subscribers import check_input
from digest.subscriptions import chooses
from digest.tokens import read_token

from . import smtp_server as smtp_server_module
from .conftest import (
    DAY,
    NOW,
    THEMES,
    Clock,
    Sleeps,
    dkim_key,
    fill,
    import_subscribers,
    make_settings,
    run,
    set_paused,
    subscribe,
    unsubscribe,
    wait_until,
)
from .smtp_server import free_port, server_tls, smtp_server


@pytest.fixture(params=[True, False], ids=["pipelined", "lock-step"])
def relay_pipelining(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """The test servers offer PIPELINING, or do not: digest judges each reply alike."""
    monkeypatch.setattr(smtp_server_module, "PIPELINING", request.param)
    return bool(request.param)


#: Tests of what the server's replies mean, run against a relay that pipelines and one
#: that does not.
both_ways = pytest.mark.usefixtures("relay_pipelining")


@both_ways
def test_every_active_subscriber_gets_one_message_with_the_right_headers(
    store: Store, tmp_path: Path
) -> None:
    fill(store, 3)
    subscribe(store, check_input("zoe@example.org", name="Zoë Ünicode", themes=THEMES), now=NOW)
    with smtp_server() as (server, port):
        settings = make_settings(tmp_path, port)
        report = run(store, settings)
    assert (report.delivery.sent, report.delivery.failed, report.still_queued) == (4, 0, 0)
    assert report.ok
    by_recipient = server.by_recipient()
    assert sorted(by_recipient) == [
        "reader0@example.org",
        "reader1@example.org",
        "reader2@example.org",
        "zoe@example.org",
    ]
    assert all(len(messages) == 1 for messages in by_recipient.values())
    raw = by_recipient["zoe@example.org"][0].data
    assert raw.count(b"\n") == raw.count(b"\r\n"), "every line ends in CRLF"
    message = message_from_bytes(raw, policy=email.policy.default)
    assert message["From"] == "Daily papers <digest@example.org>"
    assert message["To"] == "Zoë Ünicode <zoe@example.org>"
    assert b"Zo=C3=AB" in raw or b"=?utf-8?" in raw  # the name is encoded on the wire
    assert message["Subject"] == "Daily papers, Nov 28: 73 new papers"
    assert message["Date"] and message["MIME-Version"] == "1.0"
    assert message["Message-ID"].startswith("<20261128.") and message["Message-ID"].endswith(
        "@example.org>"
    )
    assert message["List-Id"] == "Daily papers <daily-papers.example.org>"
    unsubscribe = message["List-Unsubscribe"]
    assert unsubscribe.startswith("<https://digest.example.org/unsubscribe/")
    assert "mailto:" not in unsubscribe  # with [inbound] off, nothing would read one
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message.get_content_type() == "multipart/alternative"
    text, html = message.iter_parts()
    assert text.get_content_type() == "text/plain" and html.get_content_type() == "text/html"
    assert "Unsubscribe: https://digest.example.org/unsubscribe/" in text.get_content()
    token = unsubscribe.split("/unsubscribe/")[1].split(">")[0]
    subscriber = store.get_subscriber("zoe@example.org")
    assert subscriber is not None
    assert (
        read_token("test-secret-key-for-digest-tests-0123456789", "unsubscribe", token)
        == subscriber.id
    )
    # Each delivery records the Message-ID and the server's reply.
    edition = store.get_edition(DAY)
    assert edition is not None
    sent = store.list_deliveries(edition.id, status="sent")
    assert len(sent) == 4 and all(d.detail and d.detail.startswith("250 ") for d in sent)


def test_a_rerun_sends_nothing_and_builds_nothing_new(store: Store, tmp_path: Path) -> None:
    fill(store, 5)
    with smtp_server() as (server, port):
        settings = make_settings(tmp_path, port)
        first = run(store, settings)
        second = run(store, settings)
    assert first.delivery.sent == 5 and second.delivery.sent == 0
    assert first.edition == second.edition
    assert len(server.received) == 5


def test_starttls_with_auth(store: Store, tmp_path: Path) -> None:
    server_tls_context, ca_file = server_tls(tmp_path)
    fill(store, 2)
    with smtp_server(starttls=server_tls_context, credentials=("bot", "s3cret")) as (server, port):
        settings = make_settings(
            tmp_path,
            port,
            SMTP_SECURITY="starttls",
            SMTP_CA_FILE=str(ca_file),
            SMTP_USERNAME="bot",
            SMTP_PASSWORD="s3cret",
        )
        report = run(store, settings)
    assert report.delivery.sent == 2 and len(server.received) == 2


def test_implicit_tls_with_auth(store: Store, tmp_path: Path) -> None:
    server_tls_context, ca_file = server_tls(tmp_path)
    fill(store, 2)
    with smtp_server(implicit_tls=server_tls_context, credentials=("bot", "s3cret")) as (
        server,
        port,
    ):
        settings = make_settings(
            tmp_path,
            port,
            SMTP_SECURITY="ssl",
            SMTP_CA_FILE=str(ca_file),
            SMTP_USERNAME="bot",
            SMTP_PASSWORD="s3cret",
        )
        report = run(store, settings)
    assert report.delivery.sent == 2 and len(server.received) == 2


def test_an_untrusted_certificate_stops_the_run_and_sends_nothing(
    store: Store, tmp_path: Path
) -> None:
    untrusted, _ = server_tls(tmp_path)  # its CA file is never given to digest
    fill(store, 2)
    with smtp_server(starttls=untrusted) as (server, port):
        settings = make_settings(tmp_path, port, SMTP_SECURITY="starttls")
        with pytest.raises(TransportError, match="TLS with 127.0.0.1"):
            run(store, settings)
    assert server.received == []
    edition = store.get_edition(DAY)
    assert edition is not None and store.delivery_counts(edition.id)["queued"] == 2


def test_a_wrong_password_stops_the_run_with_a_hint(store: Store, tmp_path: Path) -> None:
    fill(store, 2)
    with smtp_server(credentials=("bot", "s3cret")) as (_, port):
        settings = make_settings(tmp_path, port, SMTP_USERNAME="bot", SMTP_PASSWORD="wrong")
        with pytest.raises(TransportError) as raised:
            run(store, settings)
    assert "refused the login: 535" in str(raised.value)
    assert raised.value.hint == "check SMTP_USERNAME and SMTP_PASSWORD"


@both_ways
def test_a_temporary_refusal_is_retried_later_in_the_run(store: Store, tmp_path: Path) -> None:
    fill(store, 3)
    sleeps = Sleeps()
    with smtp_server() as (server, port):
        server.refuse["reader1@example.org"] = ("451 4.7.1 try again later", 2)
        settings = make_settings(tmp_path, port)
        report = run(store, settings, sleep=sleeps)
    assert report.delivery.sent == 3 and report.ok
    assert sleeps == [4.0, 8.0]  # a round for what was deferred, each waiting once
    assert len(server.by_recipient()["reader1@example.org"]) == 1


@both_ways
def test_greylisting_costs_one_wait_a_round_never_one_a_reader(
    store: Store, tmp_path: Path
) -> None:
    fill(store, 30)
    sleeps = Sleeps()
    with smtp_server() as (server, port):
        for n in range(30):  # every recipient greylisted once, as a greylisting server does
            server.refuse[f"reader{n}@example.org"] = ("451 4.7.1 greylisted, come back", 1)
        report = run(store, make_settings(tmp_path, port), sleep=sleeps)
    assert report.delivery.sent == 30 and report.ok and not report.delivery.stopped
    assert sleeps == [4.0]
    assert all(len(m) == 1 for m in server.by_recipient().values())


@pytest.mark.parametrize(
    ("reply", "why"),
    [("552 5.3.4 message too big", "too big"), ("554 5.7.1 rejected by content filter", "content")],
)
@both_ways
def test_one_refused_message_fails_alone_and_the_run_goes_on(
    store: Store, tmp_path: Path, reply: str, why: str
) -> None:
    fill(store, 30)
    with smtp_server() as (server, port):
        server.refuse_data["reader0@example.org"] = reply
        report = run(store, make_settings(tmp_path, port))
    assert report.delivery.sent == 29 and report.delivery.failed == 1, why
    assert not report.delivery.stopped
    failed = store.get_subscriber("reader0@example.org")
    assert failed is not None and failed.state == "active"  # the message, not the reader


@both_ways
def test_stale_addresses_at_the_head_of_the_queue_fail_alone(store: Store, tmp_path: Path) -> None:
    fill(store, 30)
    with smtp_server() as (server, port):
        for n in range(6):
            server.refuse[f"reader{n}@example.org"] = ("550 5.1.1 user unknown", None)
        report = run(store, make_settings(tmp_path, port))
    assert report.delivery.sent == 24 and report.delivery.failed == 6
    assert not report.delivery.stopped


@both_ways
def test_several_messages_refused_in_a_row_stop_the_session(store: Store, tmp_path: Path) -> None:
    fill(store, 30)
    with smtp_server() as (server, port):
        server.refuse_data_all = "554 5.7.1 our policy refuses your mail"
        # With four connections, one or three more may be refused as the fifth is counted.
        with pytest.raises(DigestError, match="refused [5-8] messages in a row"):
            run(store, make_settings(tmp_path, port))


@both_ways
def test_retries_run_out_and_the_delivery_stays_queued(store: Store, tmp_path: Path) -> None:
    fill(store, 3)
    with smtp_server() as (server, port):
        server.refuse["reader1@example.org"] = ("452 4.2.2 mailbox full", None)
        settings = make_settings(tmp_path, port)
        report = run(store, settings)
        assert (report.delivery.sent, report.delivery.deferred, report.still_queued) == (2, 1, 1)
        assert not report.ok
        # The next run, with the mailbox emptied, delivers it.
        del server.refuse["reader1@example.org"]
        again = run(store, settings)
    assert again.delivery.sent == 1 and again.ok
    assert {r: len(m) for r, m in server.by_recipient().items()} == {
        "reader0@example.org": 1,
        "reader1@example.org": 1,
        "reader2@example.org": 1,
    }


@both_ways
def test_a_permanent_refusal_fails_one_and_the_batch_goes_on(store: Store, tmp_path: Path) -> None:
    fill(store, 20)
    with smtp_server() as (server, port):
        server.refuse["reader7@example.org"] = ("550 5.1.1 no such user here", None)
        settings = make_settings(tmp_path, port)
        report = run(store, settings)
    assert (report.delivery.sent, report.delivery.failed) == (19, 1)
    assert report.delivery.failures == [
        ("reader7@example.org", "RCPT TO: 550 5.1.1 no such user here")
    ]
    edition = store.get_edition(DAY)
    assert edition is not None
    (failed,) = store.list_deliveries(edition.id, status="failed")
    assert failed.detail == "RCPT TO: 550 5.1.1 no such user here"
    assert len(server.received) == 19


@both_ways
def test_a_dropped_connection_is_reconnected_and_nobody_is_missed(
    store: Store, tmp_path: Path
) -> None:
    fill(store, 10)
    with smtp_server() as (server, port):
        server.drop_at = {3, 7}
        settings = make_settings(tmp_path, port)
        report = run(store, settings)
        # Dropped after the message was sent: it may have arrived, so it is not sent
        # again in this run; the next run sends it (and at most max_attempts times).
        assert (report.delivery.sent, report.delivery.deferred) == (8, 2)
        again = run(store, settings)
    assert again.delivery.sent == 2 and again.ok
    assert sorted(len(m) for m in server.by_recipient().values()) == [1] * 10


def test_a_server_that_is_down_stops_the_run_early_leaving_the_rest_queued(
    store: Store, tmp_path: Path
) -> None:
    fill(store, 30)
    settings = make_settings(tmp_path, free_port())  # nothing listens there
    report = run(store, settings)
    assert report.delivery.sent == 0
    assert report.delivery.stopped is not None
    assert "10 temporary failures in a row" in report.delivery.stopped
    assert "cannot connect to 127.0.0.1" in report.delivery.stopped
    assert report.still_queued == 30


def test_who_unsubscribes_before_sending_is_skipped_and_who_joins_gets_the_next(
    store: Store, tmp_path: Path
) -> None:
    fill(store, 3)
    store.create_edition(DAY, now=NOW)
    unsubscribe(store, "reader0@example.org", now=NOW, channel="cli")
    subscribe(store, check_input("late@example.org", themes=THEMES), now=NOW)
    with smtp_server() as (server, port):
        settings = make_settings(tmp_path, port)
        report = run(store, settings)
        assert (report.delivery.sent, report.delivery.skipped) == (2, 1)
        assert "late@example.org" not in server.by_recipient()
        new = [Entry(title="Tomorrow's Paper", abstract="New.")]
        store.add_entries(new, decide=dedupe, source="x", now=NOW + timedelta(days=1))
        tomorrow = job.run(
            store,
            settings,
            job.Runtime(
                now=Clock(NOW + timedelta(days=1)),
                transport=transport_for(settings),
                sleep=Sleeps(),
            ),
            job.RunOptions(ingest_sources=False),
        )
    assert tomorrow.edition is not None and tomorrow.edition.entry_count == 1
    assert len(server.by_recipient()["late@example.org"]) == 1
    assert "reader0@example.org" not in server.by_recipient()


def test_subscribers_whose_topics_match_nothing_are_skipped(store: Store, tmp_path: Path) -> None:
    fill(store, 2, topics=["quantum chromodynamics"])
    settings = make_settings(tmp_path, None)
    report = run(store, settings)
    assert (report.delivery.sent, report.delivery.skipped) == (0, 2)
    assert report.ok


def test_without_smtp_mail_is_written_as_eml_files(store: Store, tmp_path: Path) -> None:
    fill(store, 2)
    settings = make_settings(tmp_path, None)
    assert isinstance(transport_for(settings), OutboxTransport)
    report = run(store, settings)
    files = sorted((tmp_path / "outbox").glob("*.eml"))
    assert report.delivery.sent == 2 and len(files) == 2
    message = message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_a_dry_run_changes_nothing(store: Store, tmp_path: Path) -> None:
    fill(store, 3)
    settings = make_settings(tmp_path, None)
    report = job.dry_run(store, settings, now=Clock(), day=DAY)
    assert report.dry_run and report.delivery.sent == 3
    assert store.get_edition(DAY) is None
    assert not (tmp_path / "outbox").exists()


def test_feed_text_cannot_add_or_split_a_header(store: Store, tmp_path: Path) -> None:
    hostile = Entry(title="Evil\r\nBcc: victim@example.org\r\nSubject: pwned", abstract="x")
    store.add_entries([hostile], decide=dedupe, source="feed", now=NOW)
    subscribe(store, check_input("ada@example.org", name="Ada", themes=THEMES), now=NOW)
    with smtp_server() as (server, port):
        run(store, make_settings(tmp_path, port))
    (received,) = server.received
    message = received.message
    assert message.get_all("Bcc") is None and len(message.get_all("Subject")) == 1
    assert received.recipients == ["ada@example.org"]


@pytest.mark.parametrize("offered", [True, False], ids=["8bitmime", "7bit-only"])
@both_ways
def test_an_edition_in_cjk_goes_as_8bit_only_to_a_server_that_offers_it(
    store: Store, tmp_path: Path, offered: bool
) -> None:
    papers = [
        Entry(title=f"\u6f22\u5b57\u306e\u8ad6\u6587 {n}", abstract="\u6f22\u5b57" * 300)
        for n in range(5)
    ]
    store.add_entries(papers, decide=dedupe, source="feed", now=NOW)
    subscribe(store, check_input("ada@example.org", themes=THEMES), now=NOW)
    with smtp_server() as (server, port):
        server.offer_8bitmime = offered
        run(store, make_settings(tmp_path, port))
    (received,) = server.received
    html = received.message.get_body(("html",))
    assert html is not None and "\u6f22\u5b57\u306e\u8ad6\u6587 4" in html.get_content()
    if offered:
        assert received.options == ["BODY=8BITMIME"]
        assert html["Content-Transfer-Encoding"] == "8bit"
    else:
        assert received.options == [] and received.data.isascii()
        assert html["Content-Transfer-Encoding"] == "base64"


def test_old_queued_deliveries_expire_instead_of_arriving_late(
    store: Store, tmp_path: Path
) -> None:
    fill(store, 2)
    store.create_edition(DAY - timedelta(days=3), now=NOW - timedelta(days=3))
    report = run(store, make_settings(tmp_path, None))
    assert report.delivery.expired == 2 and report.delivery.sent == 0


def test_every_kind_of_mail_is_signed_and_the_signature_verifies(
    store: Store, tmp_path: Path
) -> None:
    import dkim

    from digest.tokens import ConfirmRequest

    key_file, record = dkim_key(tmp_path)
    fill(store, 1)
    subscribe(store, check_input("zoe@example.org", name="Zoë Ünicode", themes=THEMES), now=NOW)
    with smtp_server() as (server, port):
        settings = make_settings(
            tmp_path, port, DKIM_PRIVATE_KEY_FILE=str(key_file), DKIM_SELECTOR="mail"
        )
        run(store, settings)  # digests, one with 8-bit text
        reader = store.get_subscriber("reader0@example.org")
        assert reader is not None
        tryouts.resend(store, reader, DAY, now=NOW)
        run(store, settings)  # its resend
        tryouts.send_test(
            store,
            settings,
            transport_for(settings),
            tryouts.TestSend(parse_address("ops@example.org"), None, DAY),
            now=NOW,
        )
        for address in ("new@example.org", "reader0@example.org"):  # confirm; already
            accounts.sign_up(
                store,
                settings,
                transport_for(settings),
                check_input(address, themes=THEMES),
                now=NOW,
                channel="web",
            )
        new = store.get_subscriber("new@example.org")
        assert new is not None
        accounts.confirm(  # a welcome
            store,
            settings,
            transport_for(settings),
            ConfirmRequest(new.id),
            now=NOW,
        )
    kinds = [m.message["Subject"] for m in server.received]
    assert len(kinds) == 7 and len(set(kinds)) >= 5, kinds
    lookups: list[bytes] = []

    def dns(name: bytes, timeout: int = 5) -> bytes:
        lookups.append(name)
        return record.encode()

    for received in server.received:
        assert received.data.startswith(b"DKIM-Signature:"), received.message["Subject"]
        assert dkim.verify(received.data, dnsfunc=dns), received.message["Subject"]
        # Signed mail goes 7-bit even to a server that offers 8BITMIME: a relay that
        # converts 8-bit parts would break the signature.
        assert b"Content-Transfer-Encoding: 8bit" not in received.data
        assert "BODY=8BITMIME" not in received.options
        # Over-signed: a header added in transit breaks it.
        forged = b"From: Someone Else <ceo@example.org>\r\n" + received.data
        assert not dkim.verify(forged, dnsfunc=dns)
        for added in (b"Subject: [urgent] act now\r\n", b"To: victim@example.org\r\n"):
            assert not dkim.verify(added + received.data, dnsfunc=dns), added
        head = received.data.split(b"\r\n\r\n")[0].decode().replace("\r\n", "")
        signed = head.split("h=")[1].split(";")[0].replace(" ", "")
        assert "list-unsubscribe:list-unsubscribe-post" in signed
    assert set(lookups) == {b"mail._domainkey.example.org."}


def real_run(tmp_path: Path, database: str, port: int) -> tuple[list[str], dict[str, str]]:
    """The command line and environment of a real `digest run` into the test server."""
    import os
    import sys

    (tmp_path / "config.toml").write_text('[sender]\naddress = "digest@example.org"\n')
    env = os.environ | {
        "DIGEST_CONFIG": str(tmp_path / "config.toml"),
        "DIGEST_DATABASE_URL": database,
        "SECRET_KEY": "test-secret-key-for-digest-tests-0123456789",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(port),
        "SMTP_SECURITY": "none",
    }
    return [sys.executable, "-m", "digest", "run", "--no-ingest", "--date", "2026-11-28"], env


def kill_mid_batch_and_rerun(tmp_path: Path, database: str, readers: int, kill_at: int) -> Any:
    """Kill a real `digest run` once ``kill_at`` messages arrived, run it again, and
    check that every reader got one message (only the one in flight on each connection
    at the kill may come twice, with its Message-ID); return what each address received."""
    import subprocess

    with smtp_server() as (server, port):
        command, env = real_run(tmp_path, database, port)
        first = subprocess.Popen(command, env=env, cwd=tmp_path, stderr=subprocess.DEVNULL)
        wait_until(lambda: len(server.received) >= kill_at, seconds=120)
        first.kill()
        first.wait()
        connections = server.sessions_seen  # the pool's, when it was killed
        assert kill_at <= len(server.received) < readers, "the kill should land mid-batch"
        rerun = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True)
        assert rerun.returncode == 0, rerun.stderr
        assert "still queued 0" in rerun.stdout
    by_recipient = server.by_recipient()
    assert len(by_recipient) == readers
    repeats = {address: items for address, items in by_recipient.items() if len(items) > 1}
    assert len(repeats) <= connections
    for items in repeats.values():
        assert len(items) == 2
        assert items[0].message["Message-ID"] == items[1].message["Message-ID"]
    return by_recipient


@pytest.mark.slow
def test_killing_a_real_run_mid_batch_and_rerunning_delivers_everyone_exactly_once(
    tmp_path: Path,
) -> None:
    database = f"sqlite:///{tmp_path / 'digest.sqlite3'}"
    store = Store.open(database)
    fill(store, 2000)
    store.close()
    kill_mid_batch_and_rerun(tmp_path, database, 2000, kill_at=400)


def _children(pid: int) -> list[int]:
    """The process ids whose parent is ``pid`` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


@pytest.mark.slow
def test_if_the_composing_process_dies_the_run_says_so_and_a_rerun_sends_the_rest(
    tmp_path: Path,
) -> None:
    import os
    import signal
    import subprocess

    database = f"sqlite:///{tmp_path / 'digest.sqlite3'}"
    store = Store.open(database)
    fill(store, 1500)  # enough to compose in a child process
    store.close()
    with smtp_server() as (server, port):
        command, env = real_run(tmp_path, database, port)
        first = subprocess.Popen(
            command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        wait_until(lambda: len(server.received) >= 200, seconds=120)
        for child in _children(first.pid):
            os.kill(child, signal.SIGKILL)
        out, err = first.communicate(timeout=120)
        assert first.returncode == 2, (out + err).decode()
        assert b"the composing process ended unexpectedly" in err
        assert len(server.received) < 1500, "the kill should land mid-batch"
        rerun = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True)
        assert rerun.returncode == 0, rerun.stderr
    counts = [len(items) for items in server.by_recipient().values()]
    assert len(counts) == 1500 and set(counts) == {1}


@both_ways
@pytest.mark.parametrize("connections", [1, 4])
def test_each_accepted_message_is_recorded_before_the_next_can_be_accepted(
    store: Store, tmp_path: Path, connections: int
) -> None:
    """On each connection a message is recorded before the next can be accepted: when
    the relay takes one, at most one a connection (the others' in flight) is unrecorded."""
    import sqlite3

    fill(store, 60)
    recorded_then: list[tuple[int, int]] = []

    def count_recorded(accepted: int) -> None:
        with sqlite3.connect(tmp_path / "digest.sqlite3") as db:
            (sent,) = db.execute("SELECT count(*) FROM deliveries WHERE status = 'sent'").fetchone()
        recorded_then.append((accepted, sent))

    with smtp_server() as (server, port):
        server.before_accept = count_recorded
        report = run(store, make_settings(tmp_path, port, SMTP_CONNECTIONS=str(connections)))
    assert report.delivery.sent == 60
    assert [accepted for accepted, _ in recorded_then] == list(range(60))
    assert all(0 <= accepted - sent < connections for accepted, sent in recorded_then)


def test_a_pipelining_relay_hears_each_next_transaction_behind_the_message_before(
    tmp_path: Path,
) -> None:
    """One round trip a message: MAIL, RCPT and DATA of the next message go in the same
    write as this one's end, so the server has them before it answers."""
    from digest.deliver.transports import SmtpTransport

    envelopes = [Envelope("a@example.org", f"r{n}@example.org", f"<{n}@x>") for n in range(4)]
    message = b"Subject: one round trip\r\n\r\nHello.\r\n"
    with smtp_server() as (server, port):
        server.behind_wanted = 3
        with SmtpTransport(make_settings(tmp_path, port).smtp) as transport:
            for this, then in zip(envelopes, [*envelopes[1:], None], strict=True):
                assert transport.send(this, message, then=then).startswith("250 ")
    assert server.behind == [True, True, True]
    assert [r.recipients for r in server.received] == [[e.recipient] for e in envelopes]


@both_ways
def test_lines_starting_with_a_dot_arrive_intact(tmp_path: Path) -> None:
    from digest.deliver.transports import SmtpTransport

    message = b"Subject: dots\r\n\r\n.\r\n..two\r\n.x\r\nlast line .\r\n"
    with smtp_server() as (server, port):
        with SmtpTransport(make_settings(tmp_path, port).smtp) as transport:
            reply = transport.send(Envelope("a@example.org", "b@example.org", "<m@x>"), message)
            transport.send(Envelope("a@example.org", "c@example.org", "<n@x>"), message.rstrip())
    assert reply.startswith("250 ")
    assert [item.data for item in server.received] == [message, message.rstrip(b"\r\n") + b"\r\n"]


@both_ways
def test_several_connections_deliver_everyone_exactly_once(store: Store, tmp_path: Path) -> None:
    fill(store, 200)
    with smtp_server() as (server, port):
        settings = make_settings(tmp_path, port, SMTP_CONNECTIONS="4")
        assert settings.smtp.connections == 4
        report = run(store, settings)
    assert report.delivery.sent == 200 and report.ok
    assert sorted(len(items) for items in server.by_recipient().values()) == [1] * 200


def test_peak_memory_counts_the_process_itself_not_its_big_parent() -> None:
    import subprocess
    import sys

    from digest.logs import peak_rss_kb

    ballast = b"x" * (300 << 20)  # resident in this (parent) process
    probe = "from digest.logs import peak_rss_kb; print(peak_rss_kb())"
    child_kb = int(subprocess.run([sys.executable, "-c", probe], capture_output=True).stdout)
    assert 0 < child_kb < 150 << 10
    assert peak_rss_kb() >= len(ballast) >> 10


def test_two_installations_with_one_key_never_share_a_message_id(tmp_path: Path) -> None:
    ids = []
    for name in ("first", "second"):
        folder = tmp_path / name
        folder.mkdir()
        store = Store.open(f"sqlite:///{folder / 'digest.sqlite3'}")
        fill(store, 1)
        run(store, make_settings(folder, None))
        edition = store.get_edition(DAY)
        assert edition is not None
        (delivery,) = store.list_deliveries(edition.id, status="sent")
        ids.append(delivery.message_id)
        store.close()
    assert ids[0] != ids[1] and all(i and i.startswith("<20261128.1.") for i in ids)


@pytest.mark.parametrize("in_child", [False, True], ids=["composed-here", "composed-in-child"])
@pytest.mark.parametrize(
    "readers",
    [(85, 90, 95), (12, 14, 16)],
    ids=["not-composed-yet", "composed-and-waiting-for-the-relay"],
)
@both_ways
def test_changes_committed_during_a_send_are_honoured_until_the_hand_off(
    any_store: Store,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    in_child: bool,
    readers: tuple[int, int, int],
) -> None:
    from digest.deliver import gates
    from digest.deliver import sender as delivery

    store = any_store
    monkeypatch.setattr(delivery, "COMPOSE_IN_A_PROCESS_FROM", 100 if in_child else 10**9)
    # Every hand-off asks afresh (at full speed the answer is at most 0.25 s old), so the
    # messages that can ignore a commit are only the ones in flight.
    monkeypatch.setattr(gates, "LAST_WORD_SECONDS", 0.0)
    fill(store, 300)
    # Another process (the web app) changes three readers whose deliveries are already
    # claimed: their messages are not composed yet (85, 90, 95), or composed and
    # waiting in the senders' queue (12, 14, 16: past what four connections hold in flight).
    left, paused, chose = (f"reader{n}@example.org" for n in readers)
    web = Store.open(store.engine.url.render_as_string(hide_password=False))
    changed = False

    def readers_change_their_minds(accepted: int) -> None:
        nonlocal changed
        if accepted == 2 and not changed:
            changed = True
            later = NOW + timedelta(minutes=1)
            unsubscribe(web, left, now=later, channel="one-click")
            set_paused(web, paused, paused=True, now=later)
            fair = chooses(
                topics=[Topic("title:fairness", "Fair")],
                theme="compact",
                timezone=None,
                paused=False,
            )
            web.amend_subscriber(chose, fair, now=later, channel="preferences")

    try:
        with smtp_server() as (server, port):
            server.before_accept = readers_change_their_minds
            report = run(store, make_settings(tmp_path, port))
    finally:
        web.close()
    received = server.by_recipient()
    assert changed and report.delivery.sent == 298 and report.delivery.skipped == 2
    assert left not in received and paused not in received
    (message,) = received[chose]  # composed (again) with the new topic
    assert message.message["Subject"].endswith("7 new papers on your topics")
    edition = store.get_edition(DAY)
    assert edition is not None
    reasons = {d.detail for d in store.list_deliveries(edition.id, status="skipped")}
    assert reasons == {"unsubscribed before sending", "paused"}
    assert report.ok and _queued(store) == 0


# -- SMTP replies read for what they mean


def _queued(store: Store) -> int:
    edition = store.get_edition(DAY)
    assert edition is not None
    return len(store.list_deliveries(edition.id, status="queued"))


def test_a_server_that_requires_starttls_stops_the_run_and_leaves_everyone_queued(
    store: Store, tmp_path: Path
) -> None:
    context, ca_file = server_tls(tmp_path)
    fill(store, 30)
    with smtp_server(starttls=context) as (server, port):
        with pytest.raises(SessionRefused, match="530"):
            run(store, make_settings(tmp_path, port, SMTP_SECURITY="none"))
        assert _queued(store) == 30 and server.received == []
        fixed = run(
            store,
            make_settings(tmp_path, port, SMTP_SECURITY="starttls", SMTP_CA_FILE=str(ca_file)),
        )
    assert fixed.delivery.sent == 30 and fixed.ok


@pytest.mark.parametrize(
    ("setup", "words"),
    [
        (
            lambda s: s.refuse.update({"reader2@example.org": ("421 4.3.2 shutting down", None)}),
            "closing the session: RCPT TO: 421",
        ),
        (
            lambda s: setattr(s, "refuse_sender", "550 5.7.1 sender not allowed"),
            "refuses to take mail from us: MAIL FROM: 550 5.7.1",
        ),
        (
            lambda s: setattr(s, "refuse_sender", "553 sender address rejected"),
            "refused our sender address: MAIL FROM: 553",
        ),
    ],
)
@both_ways
def test_a_refusal_of_the_session_stops_the_run_and_fails_nobody(
    store: Store, tmp_path: Path, setup: Any, words: str
) -> None:
    fill(store, 10)
    with smtp_server() as (server, port):
        setup(server)
        with pytest.raises(SessionRefused, match=words):
            run(store, make_settings(tmp_path, port))
    edition = store.get_edition(DAY)
    assert edition is not None
    assert store.list_deliveries(edition.id, status="failed") == []
    assert _queued(store) == 10 - len(store.list_deliveries(edition.id, status="sent"))


@both_ways
def test_a_server_that_refuses_every_recipient_is_refusing_us(store: Store, tmp_path: Path) -> None:
    fill(store, 20)
    with smtp_server() as (server, port):
        for n in range(20):
            # Not a 5.1.x or 5.2.x: a refusal of us (relaying), not of a mailbox.
            server.refuse[f"reader{n}@example.org"] = ("554 5.7.1 relay access denied", None)
        with pytest.raises(SessionRefused, match="refused each of the first [5-8] recipients"):
            run(store, make_settings(tmp_path, port))
    assert _queued(store) == 20  # none of the five was marked failed


def test_554_on_connect_stops_the_run(store: Store, tmp_path: Path) -> None:
    import socket
    import threading

    fill(store, 3)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.settimeout(10)

    def greet_and_refuse() -> None:
        for _ in range(3):
            try:
                client, _ = listener.accept()
            except OSError:
                return
            with client:
                client.sendall(b"554 5.7.1 no mail from your network\r\n")

    thread = threading.Thread(target=greet_and_refuse, daemon=True)
    thread.start()
    try:
        with pytest.raises(SessionRefused, match="554 5.7.1 no mail from your network"):
            run(store, make_settings(tmp_path, port))
    finally:
        listener.close()
    assert _queued(store) == 3


@both_ways
def test_late_answers_never_multiply_copies(store: Store, tmp_path: Path) -> None:
    fill(store, 3)
    with smtp_server() as (server, port):
        server.answer_delay = 1.0  # the server keeps each message but answers after we gave up
        settings = make_settings(tmp_path, port, SMTP_DATA_TIMEOUT="0.3")
        reports = [run(store, settings) for _ in range(5)]
        wait_until(lambda: len(server.received) == 9)
    assert [r.delivery.deferred for r in reports] == [3, 3, 0, 0, 0]
    assert reports[2].delivery.failed == 3 and reports[4].delivery.sent == 0
    assert sorted(len(m) for m in server.by_recipient().values()) == [3, 3, 3]  # max_attempts
    edition = store.get_edition(DAY)
    assert edition is not None
    failed = store.list_deliveries(edition.id, status="failed")
    assert len(failed) == 3
    assert all(d.detail and d.detail.startswith("outcome unknown after 3 attempts") for d in failed)


def test_the_ehlo_name_is_the_public_host_of_the_base_url_or_the_setting(
    store: Store, tmp_path: Path
) -> None:
    fill(store, 1)
    other = Store.open(f"sqlite:///{tmp_path / 'other.sqlite3'}")
    fill(other, 1)
    with smtp_server() as (server, port):
        run(store, make_settings(tmp_path, port))
        run(other, make_settings(tmp_path, port, SMTP_EHLO_NAME="mail.example.net"))
    other.close()
    assert [r.helo for r in server.received] == ["digest.example.org", "mail.example.net"]


def test_a_test_send_reaches_the_operator_and_records_nothing(store: Store, tmp_path: Path) -> None:
    from digest.app import tryouts

    subscribe(
        store, check_input("ada@example.org", topics=["title:fairness"], themes=THEMES), now=NOW
    )
    subscribe(store, check_input("gone@example.org", themes=THEMES), now=NOW)
    unsubscribe(store, "gone@example.org", now=NOW, channel="cli")
    store.add_entries(
        [Entry(title="Fairness in ranking"), Entry(title="Speech codecs")],
        decide=dedupe,
        source="feed",
        now=NOW,
    )
    with smtp_server() as (server, port):
        settings = make_settings(tmp_path, port)
        ada = store.get_subscriber("ada@example.org")
        me, gone = parse_address("me@example.org"), parse_address("gone@example.org")
        said = tryouts.send_test(
            store, settings, transport_for(settings), tryouts.TestSend(me, ada, None), now=NOW
        )
        assert "1 papers" in said
        with pytest.raises(tryouts.SendTestRefused, match="unsubscribed"):
            tryouts.send_test(
                store,
                settings,
                transport_for(settings),
                tryouts.TestSend(gone, None, None),
                now=NOW,
            )
    (received,) = server.received
    assert received.recipients == ["me@example.org"]
    message = received.message
    assert str(message["Subject"]).startswith("[test] ")
    body = message.get_body(("plain",))
    assert body is not None and "Fairness in ranking" in body.get_content()
    assert "Speech codecs" not in body.get_content()  # Ada's topics chose
    # Its links are nobody's: the unsubscribe token names no reader.
    link = str(message["List-Unsubscribe"]).split("/unsubscribe/", 1)[1].split(">", 1)[0]
    assert read_token(settings.secret_key, "unsubscribe", link) == 0
    assert store.count_queued([e.id for e in store.recent_editions(5)]) == 0
    assert all(not store.list_deliveries(e.id) for e in store.recent_editions(5))


def test_a_resend_goes_once_as_a_new_message_and_never_to_someone_who_left(
    store: Store, tmp_path: Path
) -> None:
    for address in ("ada@example.org", "bob@example.org", "cy@example.org"):
        subscribe(store, check_input(address, themes=THEMES), now=NOW)
    store.add_entries([Entry(title="Fairness in ranking")], decide=dedupe, source="feed", now=NOW)
    with smtp_server() as (server, port):
        settings = make_settings(tmp_path, port)
        run(store, settings)
        ada = store.get_subscriber("ada@example.org")
        assert ada is not None
        # Days later, past the queue's expiry: a resend is on purpose, it still goes.
        later = NOW + timedelta(days=5)
        queued = tryouts.resend(store, ada, DAY, now=later)
        assert queued.resends == 1 and queued.status == "queued"
        with pytest.raises(tryouts.ResendRefused, match="still queued"):
            tryouts.resend(store, ada, DAY, now=later)
        unsubscribe(store, "bob@example.org", now=later, channel="web")
        set_paused(store, "cy@example.org", paused=True, now=later)
        for address, said in (("bob@example.org", "unsubscribed"), ("cy@example.org", "paused")):
            reader = store.get_subscriber(address)
            assert reader is not None
            with pytest.raises(tryouts.ResendRefused, match=said):
                tryouts.resend(store, reader, DAY, now=later)
        with pytest.raises(tryouts.ResendRefused, match="no edition"):
            tryouts.resend(store, ada, DAY + timedelta(days=1), now=later)
        for _ in range(2):  # the second run finds nothing more to send
            run(store, settings, plan=False, now=lambda: later)
    by_recipient = server.by_recipient()
    assert len(by_recipient["ada@example.org"]) == 2
    assert len(by_recipient["bob@example.org"]) == 1 and len(by_recipient["cy@example.org"]) == 1
    first, again = (m.message["Message-ID"] for m in by_recipient["ada@example.org"])
    assert first != again and ".r1." in again
    (delivery,) = [d for d in store.deliveries_of(ada.id)]
    assert delivery[1].status == "sent" and delivery[1].resends == 1
    assert delivery[1].message_id == again


@pytest.mark.slow
def test_killing_a_real_weekly_send_and_rerunning_mails_each_reader_once(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'digest.sqlite3'}"
    store = Store.open(database)
    fill(store, 0)
    # 28 November 2026 is a Saturday: the weekly readers' period email is due.
    import_subscribers(
        store,
        [
            check_input(
                f"reader{n}@example.org",
                cadence="weekly:saturday" if n % 2 else None,
                themes=THEMES,
            )
            for n in range(1600)
        ],
    )
    store.close()
    by_recipient = kill_mid_batch_and_rerun(tmp_path, database, 1600, kill_at=300)
    weekly = [
        items[0].message["Subject"]
        for a, items in by_recipient.items()
        if int(a.removeprefix("reader").split("@")[0]) % 2
    ]
    assert all(str(s).startswith("Daily papers, 28 November:") for s in weekly), weekly[:3]


def test_the_largest_documented_connection_count_delivers_each_reader_once(
    any_store: Store, tmp_path: Path
) -> None:
    fill(any_store, 300)
    with smtp_server() as (server, port):
        settings = make_settings(tmp_path, port, SMTP_CONNECTIONS=str(MAX_SMTP_CONNECTIONS))
        report = run(any_store, settings)
    assert report.ok and report.delivery.sent + report.delivery.skipped == 300
    sent = [r for m in server.received for r in m.recipients]
    assert len(sent) == len(set(sent)) == report.delivery.sent
    assert _queued(any_store) == 0


def test_signed_mail_still_verifies_after_a_relay_to_a_hop_without_8bitmime(
    store: Store, tmp_path: Path
) -> None:
    """Every kind of mail, through a real Postfix that relays to a next hop without
    8BITMIME (which makes Postfix convert any 8-bit part): each signature verifies at
    the hop, and a From prepended there does not."""
    import dkim

    from digest.tokens import ConfirmRequest

    from .mta_server import postfix, postfix_available

    if not postfix_available():
        pytest.skip("Postfix not installed (apt-get install postfix; .ci/run does it)")
    key_file, record = dkim_key(tmp_path)
    store.add_entries(
        [Entry(title="Éléments de réponse — ünïcode", abstract="Données à l'échelle.")],
        decide=dedupe,
        source="feed",
        now=NOW,
    )
    subscribe(
        store, check_input("zoe@relay.example.com", name="Zoë Ünicode", themes=THEMES), now=NOW
    )
    with smtp_server() as (hop, hop_port):
        hop.offer_8bitmime = False
        with postfix(relay_port=hop_port) as mta:
            settings = make_settings(
                tmp_path, mta.port, DKIM_PRIVATE_KEY_FILE=str(key_file), DKIM_SELECTOR="mail"
            )
            assert run(store, settings).delivery.sent == 1
            test = tryouts.TestSend(parse_address("ops@relay.example.com"), None, DAY)
            tryouts.send_test(store, settings, transport_for(settings), test, now=NOW)
            for address in ("new@relay.example.com", "zoe@relay.example.com"):  # confirm; already
                item = check_input(address, themes=THEMES)
                accounts.sign_up(
                    store, settings, transport_for(settings), item, now=NOW, channel="web"
                )
            new = store.get_subscriber("new@relay.example.com")
            assert new is not None
            request = ConfirmRequest(new.id)
            accounts.confirm(store, settings, transport_for(settings), request, now=NOW)
            wait_until(lambda: len(hop.received) == 5, seconds=60)

    def dns(name: bytes, timeout: int = 5) -> bytes:
        return record.encode()

    for received in hop.received:
        subject = received.message["Subject"]
        assert dkim.verify(received.data, dnsfunc=dns), subject
        assert not dkim.verify(b"From: ceo@example.org\r\n" + received.data, dnsfunc=dns)


def test_a_run_that_cannot_reach_the_relay_says_why_its_mail_stays_queued(
    store: Store, tmp_path: Path
) -> None:
    fill(store, 2)
    settings = make_settings(tmp_path, free_port())  # nothing listens there
    report = run(store, settings)
    assert report.delivery.sent == 0 and report.still_queued == 2
    summary = report.summary()
    assert "still queued 2" in summary and "why still queued: " in summary, summary
    assert "cannot connect" in summary or "temporary failures" in summary, summary


def test_the_pool_opens_connections_up_to_the_servers_limit_and_mails_each_reader_once(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SMTP_CONNECTIONS is a ceiling: the pool grows while growing pays (here: always),
    and a server that refuses the fourth session (421) sets the limit, not the run's end."""
    from digest.deliver import senders

    monkeypatch.setattr(senders, "POOL_GAIN", 0.0)  # every measure says: grow
    monkeypatch.setattr(senders, "POOL_WINDOW_SECONDS", 0.05)
    fill(store, 150)
    with smtp_server() as (server, port):
        server.max_sessions = 3
        server.answer_delay = 0.02  # a relay slower than composing: work waits for it
        report = run(store, make_settings(tmp_path, port, SMTP_CONNECTIONS="16"))
        sessions = server.sessions_seen
    assert report.ok and report.delivery.stopped is None
    assert report.delivery.sent == 150
    assert sorted(len(items) for items in server.by_recipient().values()) == [1] * 150
    assert sessions > 3  # it tried a fourth, was refused, and went on with three
    assert len({item.helo for item in server.received}) == 1


def _all_once(*servers: Any) -> dict[str, int]:
    """How many messages each address got, across every relay."""
    counts: dict[str, int] = {}
    for server in servers:
        for item in server.received:
            for recipient in item.recipients:
                counts[recipient] = counts.get(recipient, 0) + 1
    return counts


@both_ways
def test_a_relay_that_shuts_down_mid_run_hands_the_rest_to_the_next(
    store: Store, tmp_path: Path
) -> None:
    """The first relay takes 40 messages, then answers 421 to everything (the message at
    hand is not taken): the fallback relay sends the rest; each reader once in all."""
    fill(store, 120)
    with smtp_server() as (first, first_port), smtp_server() as (second, second_port):

        def shut_down_after_40(accepted: int) -> None:
            if accepted == 39:  # this one, the 40th, is still taken
                first.refuse_data_all = "421 4.3.2 Service shutting down"
                first.max_sessions = first.sessions_seen

        first.before_accept = shut_down_after_40
        settings = make_settings(
            tmp_path,
            first_port,
            SMTP_FALLBACK_URLS=f"smtp://127.0.0.1:{second_port}?security=none",
        )
        assert [r.where for r in settings.smtp.relays()][1] == f"127.0.0.1:{second_port}"
        report = run(store, settings)
    assert report.ok, report.summary()
    assert len(first.received) == 40 and len(second.received) == 80
    assert sorted(_all_once(first, second).values()) == [1] * 120
    assert f"relay 127.0.0.1:{first_port} -> 127.0.0.1:{second_port}" in report.summary()
    assert _queued(store) == 0


def test_a_relay_down_from_the_start_and_a_refused_login_go_to_the_next(
    store: Store, tmp_path: Path
) -> None:
    fill(store, 30)
    with (
        smtp_server(credentials=("bot", "right")) as (refusing, refusing_port),
        smtp_server() as (
            third,
            third_port,
        ),
    ):
        settings = make_settings(
            tmp_path,
            free_port(),  # nothing listens: cannot connect
            SMTP_USERNAME="bot",
            SMTP_PASSWORD="wrong",
            SMTP_FALLBACK_URLS=(
                f"smtp://bot:wrong@127.0.0.1:{refusing_port}?security=none, "
                f"smtp://127.0.0.1:{third_port}?security=none"
            ),
        )
        report = run(store, settings, sleep=lambda _: None)
    assert report.ok and report.delivery.sent == 30
    assert not refusing.received and sorted(_all_once(third).values()) == [1] * 30
    assert len(report.delivery.failovers) == 2
    assert "refused the login" in report.delivery.failovers[1]


def test_fallback_relays_are_read_once_and_their_passwords_never_shown(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path,
        2525,
        SMTP_FALLBACK_URLS="smtps://u%40x:p%2Fw@relay2.example.org, smtp://relay3.example.org:2587",
    )
    second, third = settings.smtp.relays()[1:]
    assert (second.host, second.port, second.security) == ("relay2.example.org", 465, "ssl")
    assert (second.username, second.password) == ("u@x", "p/w")
    assert (third.port, third.security, third.username) == (2587, "starttls", None)
    assert second.timeout == settings.smtp.timeout and third.fallbacks == ()
    with pytest.raises(DigestError) as raised:
        make_settings(tmp_path, 2525, SMTP_FALLBACK_URLS="http://user:secret@relay.example.org")
    assert "SMTP_FALLBACK_URLS: expected relay URLs" in str(raised.value.problems)  # type: ignore[attr-defined]
    assert "secret" not in str(raised.value.problems)  # type: ignore[attr-defined]


def test_a_relay_that_stops_answering_fails_over_without_sending_a_message_twice(
    store: Store, tmp_path: Path
) -> None:
    """Messages the first relay took but never answered may have arrived: they are not
    sent again through the next relay in this run (the next run tries them, with their
    Message-ID); everyone else gets theirs from the fallback."""
    fill(store, 30)
    with smtp_server() as (silent, silent_port), smtp_server() as (second, second_port):
        silent.answer_delay = 3.0  # it keeps each message, and answers too late
        settings = make_settings(
            tmp_path,
            silent_port,
            SMTP_DATA_TIMEOUT="0.3",
            SMTP_CONNECTIONS="1",
            SMTP_FALLBACK_URLS=f"smtp://127.0.0.1:{second_port}?security=none",
        )
        report = run(store, settings, sleep=lambda _: None)
        unanswered = {r for item in silent.received for r in item.recipients}
    delivered = {r for item in second.received for r in item.recipients}
    assert report.delivery.failovers and unanswered and not unanswered & delivered
    assert len(delivered) == len(second.received) == 30 - len(report.delivery.unknown)
    assert _queued(store) == len(report.delivery.unknown) <= 10
