"""``digest doctor``: everything an installation needs to send, checked from outside.

One finding per check, each ok, warn or fail, with a hint where there is something to
do: the configuration, the database, the relay, the DNS of the sender's domain, the
web site, each source and the inbound mailbox.  Nothing is sent, stored or moved.
"""

from __future__ import annotations

import ipaddress
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from digest.address import ascii_domain, domain_of
from digest.config import DEFAULT_DATABASE_URL, Settings, SmtpSettings, load_settings
from digest.deliver import (
    DnsUnanswered,
    Lookup,
    PermanentFailure,
    TemporaryFailure,
    dkim_record_problem,
    dmarc_policy,
    mail_hosts,
    relay_offer,
    resolver_lookup,
    signer_for,
    spf_verdict,
)
from digest.errors import ConfigError, DigestError
from digest.inbound import MailboxError, waiting
from digest.ingest import read_source
from digest.store import Store

OK, WARN, FAIL = "ok", "warn", "fail"
#: The extensions a relay is asked about, and why each matters.
RELAY_EXTENSIONS = ("8BITMIME", "PIPELINING", "SIZE", "SMTPUTF8")
#: How long the web site may take to answer.
WEB_TIMEOUT = 10.0
#: What to check when the web site answers, but not as digest's web app does.
WRONG_SITE = "DIGEST_BASE_URL must be where digest's web app runs, path prefix included"
#: A SECRET_KEY with fewer different characters than this is a typed word, not a key.
KEY_ALPHABET = 10


@dataclass(frozen=True)
class Finding:
    """One check's result: the area (config, database, relay, dns, web, sources,
    inbound), ok / warn / fail, what was found, and what to do about it."""

    area: str
    status: str
    message: str
    hint: str = ""


@dataclass(frozen=True)
class Examination:
    """Every finding, in the order checked."""

    findings: tuple[Finding, ...]

    @property
    def exit_code(self) -> int:
        """2 when nothing can run (the configuration or database), 1 when a check failed,
        0 otherwise (warnings included)."""
        failed = {f.area for f in self.findings if f.status == FAIL}
        return 2 if failed & {"config", "database"} else 1 if failed else 0

    def count(self, status: str) -> int:
        return sum(f.status == status for f in self.findings)


Note = Callable[[Finding], None]


def examine(
    config_path: str | None,
    *,
    now: datetime,
    dns_server: str | None = None,
    on_finding: Note | None = None,
) -> Examination:
    """Check the installation ``config_path`` and the environment describe; each finding
    goes to ``on_finding`` as soon as it is made (a terminal shows progress)."""
    findings: list[Finding] = []

    def note(finding: Finding) -> None:
        findings.append(finding)
        if on_finding is not None:
            on_finding(finding)

    settings = _configuration(config_path, note)
    if settings is not None:
        store = _database(settings, note)
        _relay(settings, note)
        _every_sender(settings, resolver_lookup(dns_server), note)
        _web(settings, note)
        _sources(settings, store, now, note)
        _inbound(settings, note)
        if store is not None:
            store.close()
    return Examination(tuple(findings))


def _configuration(config_path: str | None, note: Note) -> Settings | None:
    try:
        settings = load_settings(config_path)
    except ConfigError as e:
        for problem in e.problems:
            note(Finding("config", FAIL, problem))
        return None
    problems = settings.source_problems() + [p for p in [settings.secret_key_problem()] if p]
    for problem in problems:
        note(Finding("config", FAIL, problem))
    if not problems:
        note(Finding("config", OK, f"{settings.config_path} and the environment are valid"))
    for warning in settings.warnings():
        note(Finding("config", WARN, warning))
    key = settings.secret_key
    if key and len(set(key)) < KEY_ALPHABET:
        note(
            Finding(
                "config",
                FAIL,
                f"SECRET_KEY has only {len(set(key))} different characters: it can be guessed",
                "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'",
            )
        )
    if not settings.is_local and not settings.base_url.startswith("https://"):
        note(
            Finding(
                "config",
                WARN,
                f"DIGEST_BASE_URL {settings.base_url} is plain HTTP: readers' links carry tokens",
                "serve the site over HTTPS and set DIGEST_BASE_URL to its https:// address",
            )
        )
    return settings


def _database(settings: Settings, note: Note) -> Store | None:
    shown = settings.database_url_for_display
    unreachable = Store.unreachable(settings.database_url)
    if unreachable:
        note(Finding("database", FAIL, unreachable, "check DIGEST_DATABASE_URL"))
        return None
    try:
        store = Store.open(
            settings.database_url, create_folder=settings.database_url == DEFAULT_DATABASE_URL
        )
    except DigestError as e:
        note(Finding("database", FAIL, e.message, e.hint or "check DIGEST_DATABASE_URL"))
        return None
    refused = store.write_refused()
    if refused:
        note(
            Finding(
                "database",
                FAIL,
                f"{shown} takes no writes: {refused}",
                "give the user digest runs as write access to the database (and its folder)",
            )
        )
    else:
        revision = store.schema_revision()
        note(Finding("database", OK, f"{shown}: schema at revision {revision}, writable"))
    return store


def _relay(settings: Settings, note: Note) -> None:
    """Each relay of each newsletter, once."""
    seen = set()
    for newsletter in settings.all_newsletters():
        own = settings.for_newsletter(newsletter).smtp
        if own.host is None:
            continue  # the configuration's warning says where mail goes instead
        for smtp in own.relays():
            if smtp.where not in seen:
                seen.add(smtp.where)
                _one_relay(settings, smtp, note)


def _one_relay(settings: Settings, smtp: SmtpSettings, note: Note) -> None:
    where = smtp.where
    try:
        offer = relay_offer(smtp)
    except DigestError as e:
        note(Finding("relay", FAIL, e.message, e.hint or ""))
        return
    except (TemporaryFailure, PermanentFailure) as e:  # the relay is not there, or said no
        note(
            Finding(
                "relay",
                FAIL,
                " ".join(str(e).split())[:300],
                "check SMTP_HOST, SMTP_PORT and SMTP_SECURITY, and that the relay runs",
            )
        )
        return
    secured = f"{offer.tls}, certificate valid for {smtp.host}" if offer.tls else "no TLS"
    login = "login accepted" if smtp.username else "no login"
    offered = ", ".join(e for e in RELAY_EXTENSIONS if e in offer.extensions) or "none"
    note(Finding("relay", OK, f"{where}: {secured}; {login}; offers {offered}"))
    if not offer.tls:
        note(
            Finding(
                "relay",
                WARN,
                f"mail to {where} travels unencrypted (SMTP_SECURITY=none)",
                "use starttls or ssl unless the relay is on this machine",
            )
        )
    if offer.max_size is not None and offer.max_size < 2 * settings.max_html_bytes:
        note(
            Finding(
                "relay",
                WARN,
                f"{where} takes messages of at most {offer.max_size} bytes",
                "lower [email] max_html_bytes, or raise the relay's limit",
            )
        )


def _every_sender(settings: Settings, lookup: Lookup, note: Note) -> None:
    """The DNS of each newsletter's sender (once for each domain and DKIM key), then
    where bounces go (the installation's)."""
    seen = set()
    for newsletter in settings.all_newsletters():
        own = settings.for_newsletter(newsletter)
        sender = (domain_of(own.sender_address), own.dkim.domain, own.dkim.selector)
        if sender not in seen:
            seen.add(sender)
            _dns(own, lookup, note)
    try:
        _bounce_mx(settings, lookup, note)
    except DnsUnanswered as e:
        note(Finding("dns", FAIL, e.message, "check the resolver, or give --dns-server"))


def _dns(settings: Settings, lookup: Lookup, note: Note) -> None:
    domain = ascii_domain(settings.sender_address.rpartition("@")[2])
    if "." not in domain:
        note(
            Finding(
                "dns",
                WARN,
                f"the sender {settings.sender_address} is on no public domain: DNS not checked",
                "set [sender] address in config/digest.toml to an address on your domain",
            )
        )
        return
    try:
        _spf(settings, domain, lookup, note)
        _dkim(settings, domain, lookup, note)
        _dmarc(domain, lookup, note)
    except DnsUnanswered as e:
        note(Finding("dns", FAIL, e.message, "check the resolver, or give --dns-server"))


def _relay_addresses(settings: Settings, lookup: Lookup) -> list[str]:
    host = settings.smtp.host or ""
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        return lookup(host, "A") + lookup(host, "AAAA")


def _spf(settings: Settings, domain: str, lookup: Lookup, note: Note) -> None:
    addresses = _relay_addresses(settings, lookup) if settings.smtp.host else []
    verdict = spf_verdict(domain, addresses[0] if addresses else "192.0.2.1", lookup)
    if verdict.result == "none":
        note(
            Finding(
                "dns",
                FAIL,
                f"{domain} has no SPF record",
                f'publish TXT at {domain}: "v=spf1 '
                + (f"ip4:{addresses[0]} " if addresses else "")
                + '~all" (or include your provider)',
            )
        )
    elif verdict.result == "permerror":
        note(Finding("dns", FAIL, f"{domain}'s SPF record is broken: {verdict.why}"))
    elif not addresses:
        note(Finding("dns", OK, f"{domain} has an SPF record: {verdict.record}"))
    elif verdict.result == "pass":
        note(Finding("dns", OK, f"{domain}'s SPF passes the relay's address {addresses[0]}"))
    else:
        note(
            Finding(
                "dns",
                WARN,
                f"{domain}'s SPF says {verdict.result} for the relay's address {addresses[0]}",
                "add the relay to the record (ip4:… or your provider's include:), unless it "
                "sends from other addresses than it answers on",
            )
        )


def _dkim(settings: Settings, domain: str, lookup: Lookup, note: Note) -> None:
    signer = signer_for(settings.dkim, settings.sender_address)
    if signer is None:
        note(
            Finding(
                "dns",
                WARN,
                "messages are not DKIM-signed: Gmail and Yahoo expect bulk mail to be",
                "set DKIM_PRIVATE_KEY_FILE and DKIM_SELECTOR (see the README's DNS step)",
            )
        )
        return
    selector, signed_domain = signer.selector.decode(), signer.domain.decode()
    message = f"From: <{settings.sender_address}>\r\nSubject: check\r\n\r\ncheck\r\n".encode()
    problem = dkim_record_problem(signer.sign(message), selector, signed_domain, lookup)
    if problem:
        key = settings.dkim.private_key_file
        note(
            Finding(
                "dns",
                FAIL,
                problem,
                f'publish TXT at {selector}._domainkey.{signed_domain}: "v=DKIM1; k=rsa; p=" '
                f"followed by: openssl rsa -in {key} -pubout -outform der | base64 -w0",
            )
        )
    else:
        note(Finding("dns", OK, f"DKIM: {selector}._domainkey.{signed_domain} matches the key"))
    if signed_domain != domain and not domain.endswith("." + signed_domain):
        note(
            Finding(
                "dns",
                WARN,
                f"DKIM signs as {signed_domain}, which does not align with the From {domain}",
                "DMARC needs DKIM_DOMAIN to be the From domain or its parent",
            )
        )


def _dmarc(domain: str, lookup: Lookup, note: Note) -> None:
    found = dmarc_policy(domain, lookup)
    if found is None:
        note(
            Finding(
                "dns",
                FAIL,
                f"no DMARC record for {domain}",
                f'publish TXT at _dmarc.{domain}: "v=DMARC1; p=none; rua=mailto:…" to start',
            )
        )
    else:
        note(Finding("dns", OK, f"DMARC at {found[0]}: policy {found[1]}"))


def _bounce_mx(settings: Settings, lookup: Lookup, note: Note) -> None:
    bounce = settings.inbound.bounce_address
    if not bounce:
        return
    domain = ascii_domain(bounce.rpartition("@")[2])
    hosts = mail_hosts(domain, lookup)
    if hosts:
        note(Finding("dns", OK, f"bounces to {domain} go to {', '.join(hosts)}"))
    else:
        note(
            Finding(
                "dns",
                FAIL,
                f"{domain} (of [inbound] bounce_address) takes no mail: no MX and no address",
                "publish an MX record for it, pointing at the server that pipes to digest",
            )
        )


def _web(settings: Settings, note: Note) -> None:
    base = settings.base_url.rstrip("/")
    try:
        status = _status_of(urllib.request.Request(base + "/"))
        one_click = urllib.request.Request(
            base + "/unsubscribe/doctor-check",
            data=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        one_click_status = _status_of(one_click)
    except (OSError, ssl.SSLError, ValueError) as e:
        note(
            Finding(
                "web",
                FAIL,
                f"{base} does not answer: {getattr(e, 'reason', e)}",
                "start the web pages ('digest serve', or the Procfile's web: line) and check "
                "DIGEST_BASE_URL",
            )
        )
        return
    if status >= 400:
        note(Finding("web", FAIL, f"{base}/ answers {status}", WRONG_SITE))
        return
    if one_click_status != 400:  # a bad token answered as such: the route is there
        note(
            Finding(
                "web",
                FAIL,
                f"{base}/unsubscribe/… answers {one_click_status} to a one-click unsubscribe",
                WRONG_SITE,
            )
        )
        return
    note(Finding("web", OK, f"{base} answers {status}, one-click unsubscribe is served"))


def _status_of(request: urllib.request.Request) -> int:
    try:
        with urllib.request.urlopen(request, timeout=WEB_TIMEOUT) as response:
            return int(response.status)
    except urllib.error.HTTPError as e:
        return e.code


def _sources(settings: Settings, store: Store | None, now: datetime, note: Note) -> None:
    last = store.source_checks() if store is not None else {}
    today = now.astimezone(settings.zone).date()
    for spec in settings.sources:
        check = last.get(spec.name)
        before = f"; last run {check.outcome} {check.checked_at:%Y-%m-%d %H:%M}" if check else ""
        try:
            parsed = read_source(
                spec.location,
                name=spec.name,
                today=today,
                limits=settings.limits,
                policy=settings.fetch,
            )
        except DigestError as e:
            note(Finding("sources", FAIL, f"{e.message}{before}", "see 'digest sources list'"))
            continue
        note(
            Finding(
                "sources", OK, f"{spec.name}: {len(parsed.entries)} entries readable now{before}"
            )
        )


def _inbound(settings: Settings, note: Note) -> None:
    inbound = settings.inbound
    if inbound.imap_url:
        try:
            count = waiting(inbound.imap_url, timeout=settings.smtp.timeout)
        except MailboxError as e:
            note(Finding("inbound", FAIL, e.message, "check INBOUND_IMAP_URL"))
            return
        note(Finding("inbound", OK, f"the bounce mailbox answers; {count} messages wait"))
    elif inbound.bounce_address:
        note(
            Finding(
                "inbound",
                OK,
                f"bounces to {inbound.bounce_address} are for the MTA to pipe to "
                "'digest inbound' (not checked from here)",
            )
        )
