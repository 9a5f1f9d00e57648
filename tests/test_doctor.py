"""``digest doctor``: from a fresh clone to an installation it passes, following only the
README, against a real relay (TLS, AUTH), a DNS server and an IMAP server of our own;
and each kind of breakage named, with what to do."""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from digest.cli import cli
from digest.deliver import resolver_lookup, spf_verdict

from .conftest import dkim_key, empty_postgres, wait_until
from .dns_server import Zone, dns_server
from .imap_server import dovecot, dovecot_available
from .smtp_server import free_port, server_tls, smtp_server

ROOT = Path(__file__).parents[1]
DOMAIN = "lab.example.org"
RELAY_USER, RELAY_PASSWORD = "digest", "relay-password-for-tests"


def zone_lookup(zone: Zone):  # type: ignore[no-untyped-def]
    return lambda name, rdtype: [
        r.split()[-1] if rdtype == "MX" else r for r in zone.get((name.lower(), rdtype), [])
    ]


# SPF, the class: whatever the record's shape, the verdict is the address's membership.


@given(
    network=st.builds(
        lambda address, length: ipaddress.ip_network(f"{address}/{length}", strict=False),
        st.ip_addresses(v=4),
        st.integers(8, 32),
    ),
    address=st.ip_addresses(v=4),
    depth=st.integers(0, 8),
    qualifier=st.sampled_from(["-", "~"]),
)
def test_spf_passes_exactly_the_addresses_its_networks_hold_through_includes(
    network: ipaddress.IPv4Network, address: ipaddress.IPv4Address, depth: int, qualifier: str
) -> None:
    zone: Zone = {}
    for level in range(depth):
        zone[(f"l{level}.example", "TXT")] = [f"v=spf1 include:l{level + 1}.example {qualifier}all"]
    zone[(f"l{depth}.example", "TXT")] = [f"v=spf1 ip4:{network} {qualifier}all"]
    verdict = spf_verdict("l0.example", str(address), zone_lookup(zone))
    if address in network:
        assert verdict.result == "pass"
    else:
        assert verdict.result == ("fail" if qualifier == "-" else "softfail")


def test_spf_reads_a_mx_and_redirect_and_refuses_what_is_broken() -> None:
    zone: Zone = {
        ("a.example", "TXT"): ["v=spf1 a mx/24 redirect=b.example"],
        ("a.example", "A"): ["192.0.2.10"],
        ("a.example", "MX"): ["10 mail.a.example"],
        ("mail.a.example", "A"): ["198.51.100.7"],
        ("b.example", "TXT"): ["v=spf1 ip6:2001:db8::/32 -all"],
        ("two.example", "TXT"): ["v=spf1 -all", "v=spf1 +all"],
        ("loop.example", "TXT"): ["v=spf1 include:loop.example -all"],
        ("odd.example", "TXT"): ["v=spf1 frobnicate -all"],
    }
    lookup = zone_lookup(zone)
    assert spf_verdict("a.example", "192.0.2.10", lookup).result == "pass"
    assert spf_verdict("a.example", "198.51.100.200", lookup).result == "pass"  # mx/24
    assert spf_verdict("a.example", "2001:db8::1", lookup).result == "pass"  # redirect
    assert spf_verdict("a.example", "203.0.113.1", lookup).result == "fail"
    assert spf_verdict("none.example", "203.0.113.1", lookup).result == "none"
    for broken in ("two.example", "loop.example", "odd.example"):
        assert spf_verdict(broken, "203.0.113.1", lookup).result == "permerror"


def test_the_resolver_reads_records_over_real_dns_traffic() -> None:
    long_text = "v=DKIM1; k=rsa; p=" + "A" * 600  # over 512 bytes: EDNS or TCP
    zone: Zone = {
        ("x.example", "TXT"): [long_text],
        ("x.example", "MX"): ["10 mx.x.example."],
        ("x.example", "A"): ["192.0.2.1"],
    }
    with dns_server(zone) as server:
        lookup = resolver_lookup(server)
        assert lookup("x.example", "TXT") == [long_text]
        assert lookup("x.example", "MX") == ["mx.x.example"]
        assert lookup("X.Example", "A") == ["192.0.2.1"]
        assert lookup("nothing.example", "TXT") == []
        assert lookup("x.example", "AAAA") == []


# The newcomer's path: the README's steps, then doctor.


def set_env(dotenv: Path, **values: str) -> None:
    """Set variables in .env the way a person edits the copy of .env.example."""
    lines = dotenv.read_text().splitlines()
    for name, value in values.items():
        lines = [line for line in lines if not line.startswith(f"{name}=")] + [f"{name}={value}"]
    dotenv.write_text("\n".join(lines) + "\n")


@pytest.fixture
def clone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """What a fresh clone holds for an operator: config/, examples/, .env.example."""
    for name in list(os.environ):
        if name.startswith(("DIGEST_", "SMTP_", "DKIM_", "INBOUND_")) or name == "SECRET_KEY":
            monkeypatch.delenv(name)
    folder = tmp_path / "digest"
    folder.mkdir()
    shutil.copytree(ROOT / "config", folder / "config")
    shutil.copytree(ROOT / "examples", folder / "examples")
    shutil.copy(ROOT / ".env.example", folder / ".env.example")
    return folder


@pytest.fixture
def mailbox() -> Iterator[str]:
    if not dovecot_available():
        pytest.skip("dovecot is not installed (apt-get install dovecot-imapd)")
    with dovecot() as url:
        yield url


def test_a_newcomer_following_the_readme_reaches_a_clean_doctor(
    clone: Path, mailbox: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    readme = (ROOT / "README.md").read_text()
    for step in ("cp .env.example .env", "openssl genrsa", "digest doctor", "digest db upgrade"):
        assert step in readme
    # Step 1: settings and secrets.
    shutil.copy(clone / ".env.example", clone / ".env")
    web_port = free_port()
    set_env(
        clone / ".env",
        DIGEST_BASE_URL=f"http://127.0.0.1:{web_port}",
        SECRET_KEY=base64.urlsafe_b64encode(os.urandom(32)).decode(),
    )
    # Step 2: name and sender; step 6: bounces.
    config = clone / "config" / "digest.toml"
    text = config.read_text()
    text = text.replace('title = "Daily papers"', 'title = "Lab papers"')
    text = text.replace('address = "digest@localhost"', f'address = "papers@{DOMAIN}"')
    text = text.replace('bounce_address = ""', f'bounce_address = "bounces@{DOMAIN}"')
    config.write_text(text)
    # Step 4: the relay, with TLS and a login; step 5: DKIM and the DNS records.
    relay_tls, ca_file = server_tls(clone)
    key_file, dkim_record = dkim_key(clone)
    zone: Zone = {
        (DOMAIN, "TXT"): ["v=spf1 ip4:127.0.0.1 -all"],
        (DOMAIN, "MX"): [f"10 mx.{DOMAIN}."],
        (f"mx.{DOMAIN}", "A"): ["127.0.0.1"],
        (f"mail._domainkey.{DOMAIN}", "TXT"): [dkim_record],
        (f"_dmarc.{DOMAIN}", "TXT"): ["v=DMARC1; p=quarantine; rua=mailto:dmarc@lab.example.org"],
    }
    with (
        smtp_server(starttls=relay_tls, credentials=(RELAY_USER, RELAY_PASSWORD)) as (_, port),
        dns_server(zone) as dns,
    ):
        set_env(
            clone / ".env",
            SMTP_HOST="127.0.0.1",
            SMTP_PORT=str(port),
            SMTP_USERNAME=RELAY_USER,
            SMTP_PASSWORD=RELAY_PASSWORD,
            SMTP_CA_FILE=str(ca_file),
            DKIM_PRIVATE_KEY_FILE=str(key_file),
            DKIM_SELECTOR="mail",
            INBOUND_IMAP_URL=mailbox,
        )
        # Step 7: the database; step 9: the web pages.
        subprocess.run([sys.executable, "-m", "digest", "db", "upgrade"], cwd=clone, check=True)
        web = subprocess.Popen(
            [sys.executable, "-m", "digest", "serve", "--port", str(web_port)],
            cwd=clone,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_until(lambda: answers(f"http://127.0.0.1:{web_port}/"))
            # Step 8: the check.
            done = subprocess.run(
                [sys.executable, "-m", "digest", "doctor", "--dns-server", dns],
                cwd=clone,
                capture_output=True,
                text=True,
            )
            assert done.returncode == 0, done.stdout + done.stderr
            lines = done.stdout.splitlines()
            assert lines[-1].endswith("0 warnings, 0 failed"), done.stdout
            shown = "\n".join(lines)
            for found in (
                "database",
                "TLSv1.3, certificate valid for 127.0.0.1; login accepted",
                f"{DOMAIN}'s SPF passes the relay's address 127.0.0.1",
                f"DKIM: mail._domainkey.{DOMAIN} matches the key",
                f"DMARC at _dmarc.{DOMAIN}: policy quarantine",
                f"bounces to {DOMAIN} go to mx.{DOMAIN}",
                "one-click unsubscribe is served",
                "hf-daily-papers: 73 entries readable now",
                "the bounce mailbox answers",
            ):
                assert found in shown
            # Then each breakage, one at a time, is named with what to do.
            monkeypatch.chdir(clone)
            breakages(clone, zone, dns, key_file, f"http://127.0.0.1:{web_port}", monkeypatch)
        finally:
            web.terminate()
            web.wait(timeout=30)


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5):
            return True
    except OSError:
        return False


def doctor(dns: str) -> tuple[int, list[dict[str, str]]]:
    result = CliRunner().invoke(cli, ["doctor", "--json", "--dns-server", dns])
    report = json.loads(result.stdout)
    assert report["exit_code"] == result.exit_code
    return result.exit_code, [f for f in report["findings"] if f["status"] != "ok"]


def breakages(  # noqa: PLR0913 - what the newcomer test set up, each broken in turn
    clone: Path, zone: Zone, dns: str, key_file: Path, site: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert doctor(dns) == (0, [])
    cases = [
        ("relay", "SMTP_PASSWORD", "wrong", "refused the login", "SMTP_PASSWORD"),
        ("inbound", "INBOUND_IMAP_URL", "imap://digest:wrong@127.0.0.1:1/INBOX", "mailbox", ""),
        ("web", "DIGEST_BASE_URL", f"http://127.0.0.1:{free_port()}", "does not answer", ""),
        ("web", "DIGEST_BASE_URL", f"{site}/digest", "answers 404", "path prefix"),
    ]
    for area, name, value, said, hint in cases:
        with monkeypatch.context() as changed:
            changed.setenv(name, value)
            code, problems = doctor(dns)
        assert code == 1 and [p["area"] for p in problems] == [area], problems
        assert said in problems[0]["message"] and hint in problems[0]["hint"]
    for name, records, said, hint in [
        ((DOMAIN, "TXT"), ["v=spf1 ip4:192.0.2.0/24 -all"], "SPF says fail", "include"),
        ((DOMAIN, "TXT"), [], "no SPF record", "v=spf1 ip4:127.0.0.1"),
        ((f"_dmarc.{DOMAIN}", "TXT"), [], "no DMARC record", "v=DMARC1"),
        (
            (f"mail._domainkey.{DOMAIN}", "TXT"),
            [dkim_key(clone.parent)[1]],
            "does not match the private key",
            f"openssl rsa -in {key_file}",
        ),
        ((f"mail._domainkey.{DOMAIN}", "TXT"), [], "no DKIM record", "_domainkey"),
        ((DOMAIN, "MX"), [], f"{DOMAIN} (of [inbound] bounce_address) takes no mail", "MX"),
    ]:
        kept = zone[name] if name in zone else None
        zone[name] = records
        try:
            code, problems = doctor(dns)
        finally:
            zone[name] = kept or []
        assert [p["area"] for p in problems] == ["dns"], problems
        assert said in problems[0]["message"] and hint in problems[0]["hint"], problems
        assert code == (0 if problems[0]["status"] == "warn" else 1)


def test_a_configuration_that_cannot_run_exits_2_and_checks_nothing_further(
    project: Path,
) -> None:
    (project / "config" / "digest.toml").write_text('[digest]\ntimezone = "Mars/Olympus"\n')
    result = CliRunner().invoke(cli, ["doctor", "--json"])
    report = json.loads(result.stdout)
    assert result.exit_code == 2
    assert [f["area"] for f in report["findings"]] == ["config"]
    assert "Mars/Olympus" in report["findings"][0]["message"]


def test_a_database_that_takes_no_writes_is_named(
    project: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    empty_postgres(postgres_url)
    monkeypatch.setenv("DIGEST_DATABASE_URL", postgres_url)
    assert CliRunner().invoke(cli, ["db", "upgrade"]).exit_code == 0
    owner = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with owner.connect() as conn:
        conn.execute(text("DROP ROLE IF EXISTS digest_reader"))
        conn.execute(text("CREATE ROLE digest_reader LOGIN"))
        conn.execute(text("GRANT USAGE ON SCHEMA public TO digest_reader"))
        conn.execute(text("GRANT SELECT ON ALL TABLES IN SCHEMA public TO digest_reader"))
    try:
        reader = make_url(postgres_url).set(username="digest_reader", password=None)
        monkeypatch.setenv("DIGEST_DATABASE_URL", reader.render_as_string(hide_password=False))
        result = CliRunner().invoke(cli, ["doctor"])
        assert result.exit_code == 2
        assert "takes no writes: permission denied" in result.stdout, result.stdout
    finally:
        with owner.connect() as conn:
            conn.execute(text("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM digest_reader"))
            conn.execute(text("REVOKE ALL ON SCHEMA public FROM digest_reader"))
            conn.execute(text("DROP ROLE digest_reader"))
        owner.dispose()
