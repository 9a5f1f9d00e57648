"""Whatever comes back in the mail, digest reads it, files it and goes on.

Hostile and broken messages (malformed headers, any nesting, long runs, NULs,
odd charsets, no From) each end in one line and exit 0, and a message that
names nobody of ours changes nobody; the tags are read back with whatever
local parts the settings give them.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digest.cli import cli
from digest.config import InboundSettings
from digest.inbound.handle import verdict
from digest.inbound.parse import read_inbound
from digest.inbound.policy import BouncePolicy, BounceScore, outcome, status_of
from digest.ingest.dedupe import dedupe
from digest.models import Entry
from digest.store import Store
from digest.subscribers import check_input
from digest.tokens import tagged_address

from .conftest import DATA, NOW, THEMES, make_settings, run, subscribe
from .imap_server import dovecot_available
from .smtp_server import smtp_server

INBOUND = DATA / "inbound"
SECRET = "test-secret-key-for-digest-tests-0123456789"  # make_settings's
FORGED = "bounces+41.abcdefghijklmnopqrst@example.org"


def _nested(depth: int, kind: str) -> bytes:
    if kind == "rfc822":
        body = b"From: a@b\r\nSubject: x\r\n\r\nhello\r\n"
        for _ in range(depth):
            body = b"Content-Type: message/rfc822\r\n\r\n" + body
        return b"From: x@y\r\nTo: " + FORGED.encode() + b"\r\n" + body
    inner = b"Content-Type: text/plain\r\n\r\nhi\r\n"
    for n in range(depth):
        b = b"b%d" % n
        inner = (
            b'Content-Type: multipart/mixed; boundary="'
            + b
            + b'"\r\n\r\n--'
            + b
            + b"\r\n"
            + inner
            + b"\r\n--"
            + b
            + b"--\r\n"
        )
    return b"From: x@y\r\n" + inner


#: Each message that stopped `digest inbound` (or hung it) before.
POISON = {
    "to-unclosed-literal": b"From: spam@example.com\r\nTo: a@[\r\nSubject: hi\r\n\r\nbuy\r\n",
    "to-two-groups": b"From: s@example.com\r\nTo: undisclosed-recipients:;undisclosed-recipients:;"
    b"\r\nSubject: hi\r\n\r\nbuy\r\n",
    "nested-multipart": _nested(1000, "multipart"),
    "nested-rfc822": _nested(1000, "rfc822"),
    "long-run": b"From: s@example.com\r\nSubject: "
    + b"a" * 200_000
    + b"\r\n\r\n"
    + b"b" * 200_000
    + b"+1.",
    "nul-header": b"From: s@example.com\r\nMessage-ID: <a\x00b@x>\r\nSubject: a\x00b\x1b]0;t\x07"
    b"\r\n\r\nbody\r\n",
    "no-from": b"Subject: Undelivered Mail\r\nContent-Type: text/plain\r\n\r\nmailbox unknown\r\n",
    "bad-charset": b"From: =?x-nope?q?a?= <a@b>\r\nSubject: =?utf-8?b?////?=\r\n"
    b'Content-Type: text/plain; charset="\xff\xfe"\r\n\r\n\xff\xfe\r\n',
}


def _config(tmp_path: Path, bounce: str = "bounces@example.org", unsubscribe: str = "") -> Path:
    config = tmp_path / "inbound.toml"
    lines = f'[inbound]\nbounce_address = "{bounce}"\n'
    if unsubscribe:
        lines += f'unsubscribe_address = "{unsubscribe}"\n'
    config.write_text(lines)
    return config


def _inbound(
    tmp_path: Path, store: Store, data: bytes, *args: str, **config: str
) -> tuple[int, str]:
    result = CliRunner().invoke(
        cli,
        ["--config", str(_config(tmp_path, **config)), "inbound", *args],
        input=data,
        env={"DIGEST_DATABASE_URL": store.url, "SECRET_KEY": SECRET},
    )
    return result.exit_code, result.output


@pytest.mark.parametrize("name", sorted(POISON))
def test_a_poison_message_is_one_line_and_exit_0(
    name: str, any_store: Store, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    subscribe(any_store, check_input("ada@example.net", themes=THEMES), now=NOW)
    started = time.monotonic()
    code, output = _inbound(tmp_path, any_store, POISON[name])
    assert time.monotonic() - started < 30  # minutes before (a quadratic regex)
    assert code == 0, output
    assert "ignored" in output and "Traceback" not in output
    assert "Traceback" not in capfd.readouterr().err  # flufl.bounce's own, before
    assert {s.state for s in any_store.iter_subscribers()} == {"active"}


def test_a_message_over_the_cap_is_refused_with_65(store: Store, tmp_path: Path) -> None:
    code, output = _inbound(tmp_path, store, b"x" * 10_000_001)
    assert code == 65 and "over" in output


# -- the class: generated hostile messages

_TEXT = st.one_of(
    st.text(max_size=80),
    st.sampled_from(
        [
            "a@[",
            "undisclosed-recipients:;",
            "<>",
            "=?utf-8?q?=00?=",
            "\x00",
            "\x1b]0;x\x07",
            "=?x-unknown?b?AAAA?=",
            FORGED,
            "+1.",
            "@" * 50,
        ]
    ),
    st.integers(1, 100_000).map(lambda n: "a" * n),
)
_HEADER = st.tuples(
    st.sampled_from(
        [
            "From",
            "To",
            "Subject",
            "Message-ID",
            "Content-Type",
            "Delivered-To",
            "Auto-Submitted",
            "Precedence",
            "Content-Transfer-Encoding",
            "X-Weird",
        ]
    ),
    _TEXT,
)
_CONTENT = st.sampled_from(
    [
        "text/plain",
        "multipart/report; report-type=delivery-status",
        "multipart/report; report-type=feedback-report",
        "message/delivery-status",
        "message/feedback-report",
        "text/plain; charset=utf-7",
        "text/plain; charset=x-nope",
    ]
)


@st.composite
def hostile_messages(draw: st.DrawFn) -> bytes:
    headers = draw(st.lists(_HEADER, max_size=8))
    text = b"".join(f"{k}: {v}\r\n".encode("utf-8", "surrogatepass") for k, v in headers)
    body = draw(
        st.one_of(st.binary(max_size=500), _TEXT.map(lambda t: t.encode("utf-8", "replace")))
    )
    message = text + f"Content-Type: {draw(_CONTENT)}\r\n\r\n".encode() + body
    depth = draw(st.integers(0, 1200))
    if depth:
        kind = draw(st.sampled_from(["multipart", "rfc822"]))
        message = (
            _nested(depth, kind).replace(b"hello", message[:2000]).replace(b"hi", message[:2000])
        )
    return message


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hostile_messages())
def test_any_hostile_message_is_read_quickly(data: bytes) -> None:
    started = time.monotonic()
    found = read_inbound(data)
    assert time.monotonic() - started < 2
    assert found.kind in ("hard", "soft", "complaint", "autoreply", "unknown")
    assert "\x00" not in found.message_id + found.detail
    assert all(c.isprintable() for c in found.message_id + found.detail)


def test_hostile_messages_that_name_nobody_change_nobody(any_store: Store, tmp_path: Path) -> None:
    subscribe(any_store, check_input("ada@example.net", themes=THEMES), now=NOW)
    inbound = InboundSettings(bounce_address="bounces@example.org")
    configured = replace(make_settings(tmp_path, None), inbound=inbound)

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(hostile_messages())
    def each(data: bytes) -> None:
        said, line = verdict(any_store, configured, data, now=NOW)
        assert said == "unreadable" and "\n" not in line

    each()
    assert {s.state for s in any_store.iter_subscribers()} == {"active"}
    assert any_store.bounce_score(1)[0] == 0


# -- the tags: whatever local parts the settings give them


def test_bounces_and_unsubscribes_come_back_to_addresses_of_any_name(
    store: Store, tmp_path: Path
) -> None:
    inbound = InboundSettings(
        bounce_address="returns@example.org", unsubscribe_address="leave@example.org"
    )
    for name in ("dead", "bob"):
        subscribe(store, check_input(f"{name}@example.net", themes=THEMES), now=NOW)
    store.add_entries([Entry(title="A paper")], decide=dedupe, source="feed", now=NOW)
    with smtp_server() as (server, port):
        run(store, replace(make_settings(tmp_path, port), inbound=inbound))
    by = server.by_recipient()
    dead = by["dead@example.net"][0].sender
    assert dead.startswith("returns+")
    unsubscribe = str(by["bob@example.net"][0].message["List-Unsubscribe"])
    assert "mailto:leave+" in unsubscribe
    bounce = (INBOUND / "postfix-hard.eml").read_bytes().replace(FORGED.encode(), dead.encode())
    config = {"bounce": "returns@example.org", "unsubscribe": "leave@example.org"}
    code, output = _inbound(tmp_path, store, bounce, "--recipient", dead, **config)
    assert code == 0 and "now bounced" in output, output
    mailto = unsubscribe.split("mailto:")[1].split("?")[0]
    letter = (
        (INBOUND / "mailto-unsubscribe.eml")
        .read_bytes()
        .replace(b"unsubscribe+7.abcdefghijklmnopqrst@example.org", mailto.encode())
    )
    code, output = _inbound(tmp_path, store, letter, **config)
    assert code == 0 and "now unsubscribed" in output, output
    states = {s.email: s.state for s in store.iter_subscribers()}
    assert states == {"dead@example.net": "bounced", "bob@example.net": "unsubscribed"}


def test_an_unsubscribe_tag_on_the_bounce_address_unsubscribes(
    store: Store, tmp_path: Path
) -> None:
    subscribe(store, check_input("bob@example.net", themes=THEMES), now=NOW)
    bob = store.get_subscriber("bob@example.net")
    assert bob is not None
    mailto = tagged_address("bounces@example.org", SECRET, "unsubscribe", bob.id)
    letter = (
        (INBOUND / "mailto-unsubscribe.eml")
        .read_bytes()
        .replace(b"unsubscribe+7.abcdefghijklmnopqrst@example.org", mailto.encode())
    )
    assert "now unsubscribed" in _inbound(tmp_path, store, letter)[1]


# -- a dead mailbox


@pytest.mark.parametrize("status", ["5.1.1", "5.1.2", "5.1.10"])
def test_a_mailbox_that_does_not_exist_is_suppressed_at_once(status: str) -> None:
    decided = outcome("hard", BounceScore(), NOW, BouncePolicy(), status=status)
    assert decided.suppress == "bounced"


@pytest.mark.parametrize("status", ["5.7.1", "5.2.2", ""])
def test_other_hard_bounces_are_scored(status: str) -> None:
    decided = outcome("hard", BounceScore(), NOW, BouncePolicy(), status=status)
    assert decided.suppress is None and decided.score.value == 1.0


def test_the_status_is_read_from_a_servers_reply() -> None:
    assert status_of("550 5.1.1 <a@b>: Recipient address rejected") == "5.1.1"
    assert status_of("550 5.1.10 null MX") == "5.1.10"
    assert status_of("550 no such user 1.2.3.4") == ""


# -- IMAP: a poison message between two complaints, on servers with and without MOVE


@pytest.mark.skipif(
    not dovecot_available(),
    reason="Dovecot not installed (apt-get install dovecot-imapd; .ci/run does it)",
)
@pytest.mark.parametrize(
    "capabilities",
    [None, "IMAP4rev1 LITERAL+ SASL-IR ID ENABLE IDLE UIDPLUS", "IMAP4rev1 LITERAL+ ID"],
    ids=["move", "no-move-uidplus", "no-move-no-uidplus"],
)
def test_a_poison_message_never_blocks_the_mailbox(
    capabilities: str | None, store: Store, tmp_path: Path
) -> None:
    from .imap_server import dovecot, file_into, messages_in

    inbound = InboundSettings(bounce_address="bounces@example.org")
    for name in ("eve", "mallory"):
        subscribe(store, check_input(f"{name}@example.net", themes=THEMES), now=NOW)
    store.add_entries([Entry(title="A paper")], decide=dedupe, source="feed", now=NOW)
    with smtp_server() as (server, port):
        run(store, replace(make_settings(tmp_path, port), inbound=inbound))
    by = server.by_recipient()
    complaint = (INBOUND / "arf-complaint.eml").read_bytes()
    placeholder = b"bounces+42.abcdefghijklmnopqrst@example.org"
    with dovecot(capabilities) as url:
        imap_port = int(url.rsplit(":", 1)[1].split("/")[0])
        file_into(
            imap_port, complaint.replace(placeholder, by["eve@example.net"][0].sender.encode())
        )
        file_into(imap_port, POISON["to-unclosed-literal"])
        file_into(imap_port, POISON["nested-multipart"])
        file_into(
            imap_port, complaint.replace(placeholder, by["mallory@example.net"][0].sender.encode())
        )
        env = {"DIGEST_DATABASE_URL": store.url, "SECRET_KEY": SECRET, "INBOUND_IMAP_URL": url}
        for poll in range(2):  # the second poll finds nothing left to handle again
            result = CliRunner().invoke(
                cli, ["--config", str(_config(tmp_path)), "inbound", "--imap"], env=env
            )
            assert result.exit_code == 0, result.output
            expected = "2 handled, 2 unreadable, 0 left" if poll == 0 else "0 handled, 0 unreadable"
            assert expected in result.output
        assert (
            messages_in(imap_port, "INBOX"),
            messages_in(imap_port, "digest-processed"),
            messages_in(imap_port, "digest-unreadable"),
        ) == (0, 2, 2)
    assert {s.state for s in store.iter_subscribers()} == {"complained"}
    assert sum(store.inbound_counts(store.recent_editions(1)[0].id).values()) == 2
