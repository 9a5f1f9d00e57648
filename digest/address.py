"""What an email address is: parsed once at the edge, one value everywhere after.

Pure.  Every address a person or a file gives (CLI, CSV, web, dashboard,
send-test) becomes an ``Address`` here, and nothing else decides what an
address is.  It knows three forms:

- ``mailbox``: as shown and stored, its domain in Unicode (``anna@straße.de``);
- ``wire``: as RCPT TO and the To header carry it, its domain in IDNA 2008
  A-labels (``anna@xn--strae-oqa.de``), never Python's IDNA 2003 codec,
  which maps ß to ss and ς to σ: other people's domains;
- ``key``: what makes two spellings of one mailbox one subscriber (the wire
  form in lower case), so whatever is refused in one spelling is refused in all.

Domains go through UTS 46 (the ``idna`` package, as ``email_validator`` uses
it): full-width letters fold, soft hyphens and zero-width spaces are refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import idna
from email_validator import EmailNotValidError, validate_email

from digest.errors import DigestError

#: RFC 5321's limit on a path.
MAX_ADDRESS_CHARS = 254


class AddressError(DigestError):
    """Text that is not an email address digest can mail; says which text and why."""

    def __init__(self, value: str, reason: str) -> None:
        self.value = value
        self.reason = reason
        super().__init__(f"{value!r}: {reason}" if value else reason)


@dataclass(frozen=True)
class Address:
    """One email address, in the forms digest uses it."""

    #: As shown and stored: the domain in Unicode, lower case.
    mailbox: str
    #: As the envelope and headers carry it: the domain in IDNA 2008 A-labels.
    wire: str

    @property
    def key(self) -> str:
        """The same for every spelling of this mailbox."""
        return self.wire.lower()

    def __str__(self) -> str:
        return self.mailbox


def parse_address(text: str) -> Address:
    """The address ``text`` spells, or ``AddressError`` saying why it is none."""
    text = text.strip()
    if not text:
        raise AddressError("", "an email address is required")
    if len(text) > MAX_ADDRESS_CHARS:
        raise AddressError(text[:40] + "...", f"longer than {MAX_ADDRESS_CHARS} characters")
    try:
        # No SMTPUTF8: digest's messages carry ASCII addresses only (see docs/readers.md).
        found = validate_email(text, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as e:
        raise AddressError(text, str(e)) from e
    return Address(found.normalized, found.ascii_email or wire_form(found.normalized))


def wire_form(mailbox: str) -> str:
    """The wire form of an address ``parse_address`` accepted (as stored): its domain
    in IDNA 2008 A-labels.  ``AddressError`` for text that cannot be carried."""
    local, at, domain = mailbox.rpartition("@")
    if not at:
        raise AddressError(mailbox, "not an email address")
    return f"{local}@{ascii_domain(domain)}"


def address_key(mailbox: str) -> str:
    """The key of a stored address (``Address.key``)."""
    try:
        return wire_form(mailbox).lower()
    except AddressError:  # a row stored before addresses were parsed: its own text
        return mailbox.casefold()


@lru_cache(maxsize=4096)  # per message, but a list has few domains
def domain_of(address: str) -> str:
    """Return the domain of an address as headers and the envelope carry it (IDNA 2008)."""
    domain = address.rpartition("@")[2]
    try:
        return ascii_domain(domain)
    except AddressError:
        return domain.lower()  # refused by ``checked_address`` where it matters


def ascii_domain(domain: str) -> str:
    """A domain in IDNA 2008 A-labels (UTS 46 mapping), lower case."""
    if domain.isascii():
        return domain.lower()
    try:
        return idna.encode(domain, uts46=True, transitional=False).decode("ascii")
    except idna.IDNAError as e:
        raise AddressError(domain, f"not a domain name: {e}") from e
