"""One address value: the address typed is the address mailed, and every spelling of a
mailbox is one subscriber, so what is refused in one spelling is refused in all."""

from __future__ import annotations

from pathlib import Path

import idna
import pytest
from click.testing import CliRunner
from hypothesis import assume, given
from hypothesis import strategies as st

from digest.address import AddressError, parse_address, wire_form
from digest.cli import cli
from digest.ingest.dedupe import dedupe
from digest.models import Entry
from digest.store import Store
from digest.subscribers import check_input

from .conftest import NOW, THEMES, make_settings, run, subscribe, unsubscribe
from .smtp_server import smtp_server


@pytest.mark.parametrize(
    ("typed", "wire"),
    [
        ("anna@straße.de", "anna@xn--strae-oqa.de"),
        ("bert@xn--strae-oqa.de", "bert@xn--strae-oqa.de"),
        ("chris@σίσυφος.gr", "chris@xn--kxa6ajbbmh.gr"),
        ("kurt@strasse.de", "kurt@strasse.de"),
        ("bob@\uff45xample.org", "bob@example.org"),
        ("Kurt@Straße.DE", "Kurt@xn--strae-oqa.de"),
    ],
)
def test_the_wire_form_is_idna_2008(typed: str, wire: str) -> None:
    address = parse_address(typed)
    assert address.wire == wire
    assert wire_form(address.mailbox) == wire  # the stored form reaches the same wire


def test_two_domains_are_two_people_and_two_spellings_one() -> None:
    assert parse_address("kurt@strasse.de").key != parse_address("kurt@straße.de").key
    assert parse_address("bert@xn--strae-oqa.de").key == parse_address("bert@Straße.de").key


@pytest.mark.parametrize(
    "typed",
    [
        "not-an-address",
        "josé@example.org",
        "bob@exam\u00adple.org",
        "bob@exa\u200bmple.org",
        "",
        "a@" + "b" * 300 + ".org",
    ],
)
def test_text_that_is_no_address_is_one_clear_error(typed: str) -> None:
    with pytest.raises(AddressError):
        parse_address(typed)


_LABEL = st.text(alphabet="abcdefghijklmnopqrstuvwxyzßçéσςäöü0123456789", min_size=1, max_size=12)


_LOCAL = st.from_regex(r"[a-z0-9][a-z0-9._]{0,10}[a-z0-9]", fullmatch=True)


@given(_LOCAL, st.lists(_LABEL, min_size=1, max_size=3), st.sampled_from(["org", "de", "gr"]))
def test_the_rcpt_domain_is_the_idna_2008_form_of_the_typed_one(
    local: str, labels: list[str], tld: str
) -> None:
    typed_domain = ".".join([*labels, tld])
    try:
        address = parse_address(f"{local}@{typed_domain}")
    except AddressError:
        assume(False)
        return
    expected = idna.encode(typed_domain, uts46=True, transitional=False).decode()
    assert address.wire.rpartition("@")[2] == expected
    # Every spelling that reaches this mailbox is one subscriber.
    # (Not the Unicode domain upper-cased: "ß".upper() is "SS", another domain.)
    domain = address.mailbox.rpartition("@")[2]
    for spelling in (
        address.wire,
        address.mailbox,
        f"{local.upper()}@{domain}",
        f"{local}@{expected.upper()}",
    ):
        assert parse_address(spelling).key == address.key


def test_mail_goes_to_the_domain_that_was_typed(store: Store, tmp_path: Path) -> None:
    for typed in ("anna@straße.de", "chris@σίσυφος.gr", "kurt@strasse.de"):
        subscribe(store, check_input(typed, themes=THEMES), now=NOW)
    # Another spelling of Anna's mailbox is Anna, not a new reader.
    subscribe(store, check_input("anna@xn--strae-oqa.de", themes=THEMES), now=NOW)
    assert len(list(store.iter_subscribers())) == 3
    store.add_entries([Entry(title="A paper")], decide=dedupe, source="feed", now=NOW)
    with smtp_server() as (server, port):
        run(store, make_settings(tmp_path, port))
    recipients = sorted(r for message in server.received for r in message.recipients)
    assert recipients == ["anna@xn--strae-oqa.de", "chris@xn--kxa6ajbbmh.gr", "kurt@strasse.de"]


def _send_test(tmp_path: Path, store: Store, address: str, port: int) -> tuple[int, str]:
    (tmp_path / "digest.toml").write_text("")
    result = CliRunner().invoke(
        cli,
        ["--config", str(tmp_path / "digest.toml"), "send-test", address],
        env={
            "DIGEST_DATABASE_URL": store.url,
            "SECRET_KEY": "k" * 40,
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(port),
            "SMTP_SECURITY": "none",
        },
    )
    return result.exit_code, result.output


def test_send_test_refuses_every_spelling_of_someone_who_left(store: Store, tmp_path: Path) -> None:
    subscribe(store, check_input("bob@example.org", themes=THEMES), now=NOW)
    unsubscribe(store, "bob@example.org", now=NOW, channel="web")
    with smtp_server() as (server, port):
        for spelling in ("bob@\uff45xample.org", "BOB@EXAMPLE.ORG", "bob@example.org"):
            code, output = _send_test(tmp_path, store, spelling, port)
            assert code == 1 and "unsubscribed" in output, output
        for typed in ("not-an-address", "josé@example.org", "bob@exam\u00adple.org"):
            code, output = _send_test(tmp_path, store, typed, port)
            assert code == 2 and "unexpected" not in output and output.count("\n") <= 2, output
    assert server.received == []
