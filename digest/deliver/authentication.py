"""What the DNS says of the mail digest sends: SPF, DKIM, DMARC and the bounce MX.

Every question goes through a ``Lookup`` (a name and a record type in, the records
as text out), so the rules below read without a socket, and tests answer them from
a DNS server of their own.  ``resolver_lookup`` is the one that asks the DNS.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass

from digest.errors import DigestError

#: Records of a type for a name, as text (TXT strings joined; MX as its host; A, AAAA as
#: the address); an empty list when the name or the type has none.
Lookup = Callable[[str, str], list[str]]

#: SPF's limit on the lookups one evaluation may cause (RFC 7208, 4.6.4).
SPF_LOOKUP_LIMIT = 10


class DnsUnanswered(DigestError):
    """The DNS did not answer (a timeout, no server): nothing can be said of a record."""


def resolver_lookup(server: str | None = None, *, timeout: float = 5.0) -> Lookup:
    """Ask the system's resolver, or ``server`` (``HOST`` or ``HOST:PORT``) directly."""
    import dns.exception
    import dns.resolver

    resolver = dns.resolver.Resolver(configure=server is None)
    if server:
        host, _, port = server.rpartition(":") if server.count(":") == 1 else (server, "", "")
        resolver.nameservers = [host or server]
        resolver.port = int(port) if port else 53
    resolver.lifetime = timeout

    def lookup(name: str, rdtype: str) -> list[str]:
        try:
            answer = resolver.resolve(name, rdtype, search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except dns.exception.DNSException as e:
            raise DnsUnanswered(f"the DNS did not answer for {name} {rdtype}: {e}") from e
        return [_as_text(record, rdtype) for record in answer]

    return lookup


def _as_text(record: object, rdtype: str) -> str:
    if rdtype == "TXT":
        return b"".join(getattr(record, "strings", ())).decode("utf-8", "replace")
    if rdtype == "MX":
        return str(getattr(record, "exchange", "")).rstrip(".")
    return str(getattr(record, "address", record))


@dataclass(frozen=True)
class SpfVerdict:
    """What the SPF record of a domain says of mail from one address: ``result`` is
    pass, fail, softfail, neutral, none (no record) or permerror (a broken record)."""

    result: str
    record: str = ""
    why: str = ""


def spf_verdict(domain: str, address: str, lookup: Lookup) -> SpfVerdict:
    """Evaluate the domain's SPF record for mail sent from ``address`` (RFC 7208: ip4,
    ip6, a, mx, include, redirect and all; exists and ptr never match here)."""
    return _Spf(lookup, ipaddress.ip_address(address)).check(domain)


class _Spf:
    def __init__(self, lookup: Lookup, address: ipaddress.IPv4Address | ipaddress.IPv6Address):
        self.lookup = lookup
        self.address = address
        self.lookups = 0

    def check(self, domain: str) -> SpfVerdict:
        records = [r for r in self.lookup(domain, "TXT") if re.match(r"v=spf1(\s|$)", r, re.I)]
        if not records:
            return SpfVerdict("none")
        if len(records) > 1:
            return SpfVerdict("permerror", records[0], f"{domain} has {len(records)} SPF records")
        record = records[0]
        redirect = None
        for term in record.split()[1:]:
            if term.lower().startswith("redirect="):
                redirect = term.split("=", 1)[1]
                continue
            if "=" in term.split(":", 1)[0]:
                continue  # another modifier (exp=): no bearing on the result
            qualifier, mechanism = (term[0], term[1:]) if term[0] in "+-~?" else ("+", term)
            try:
                matched = self._matches(mechanism, domain)
            except ValueError as e:
                return SpfVerdict("permerror", record, f"{term!r} in {domain}'s record: {e}")
            if matched:
                result = {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}[qualifier]
                return SpfVerdict(result, record, f"{term!r} matches")
        if redirect:
            self._count()
            return self.check(redirect)
        return SpfVerdict("neutral", record, "no term matches")

    def _count(self) -> None:
        self.lookups += 1
        if self.lookups > SPF_LOOKUP_LIMIT:
            raise ValueError(f"more than {SPF_LOOKUP_LIMIT} DNS lookups")

    def _matches(self, mechanism: str, domain: str) -> bool:
        name, _, argument = mechanism.partition(":")
        name = name.lower()
        if "/" in name:  # a/24, mx/24 with no domain
            name, _, length = name.partition("/")
            argument = f"{domain}/{length}"
        if name == "all":
            return True
        if name in ("ip4", "ip6"):
            return self.address in ipaddress.ip_network(argument, strict=False)
        if name == "include":
            self._count()
            included = self.check(argument)
            if included.result in ("none", "permerror"):  # RFC 7208, 5.2: both are errors
                raise ValueError(included.why or f"{argument} has no SPF record")
            return included.result == "pass"
        if name in ("a", "mx"):
            self._count()
            target, _, length = (argument or domain).partition("/")
            hosts = self.lookup(target, "MX") if name == "mx" else [target]
            return any(self._in(host, length) for host in hosts)
        if name in ("exists", "ptr"):
            self._count()
            return False
        raise ValueError("unknown mechanism")

    def _in(self, host: str, length: str) -> bool:
        rdtype = "A" if self.address.version == 4 else "AAAA"
        width = length or ("32" if self.address.version == 4 else "128")
        return any(
            self.address in ipaddress.ip_network(f"{found}/{width}", strict=False)
            for found in self.lookup(host, rdtype)
        )


def dkim_record_problem(signed: bytes, selector: str, domain: str, lookup: Lookup) -> str | None:
    """Why the DKIM record at ``selector._domainkey.domain`` does not verify a message
    digest signed (None: it does)."""
    import dkim

    name = f"{selector}._domainkey.{domain}"
    records = lookup(name, "TXT")
    if not records:
        return f"no DKIM record at {name}"
    try:
        verified = dkim.verify(signed, dnsfunc=lambda _name, timeout=5: records[0].encode())
    except dkim.DKIMException as e:
        return f"the DKIM record at {name} cannot be read: {e}"
    return None if verified else f"the DKIM record at {name} does not match the private key"


def dmarc_policy(domain: str, lookup: Lookup) -> tuple[str, str] | None:
    """The DMARC record that covers ``domain`` (its own, else its parent's) and the
    policy it states, or None."""
    labels = domain.split(".")
    for start in range(len(labels) - 1):
        name = "_dmarc." + ".".join(labels[start:])
        for record in lookup(name, "TXT"):
            if re.match(r"v=DMARC1\s*(;|$)", record, re.I):
                found = re.search(r";\s*p\s*=\s*(\w+)", record)
                return name, found.group(1).lower() if found else "none"
    return None


def mail_hosts(domain: str, lookup: Lookup) -> list[str]:
    """Where mail to ``domain`` goes: its MX hosts, else the domain itself when it has an
    address (RFC 5321's implicit MX)."""
    hosts = [host for host in lookup(domain, "MX") if host]
    if hosts:
        return hosts
    return [domain] if lookup(domain, "A") or lookup(domain, "AAAA") else []
