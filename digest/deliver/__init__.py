"""Delivery, in the order an edition goes through it: ``claims`` (claim a batch, ask
the decider once per delivery), ``composing`` (here or in a child process),
``compose`` (select, render, and the ``MessageFactory`` every mail is built by),
``message`` (the MIME bytes, DKIM), ``senders`` (one thread per connection: the last
look, the hand-off to a ``transports`` transport, the record), and ``sender``, the
recipe that strings them together."""

from digest.deliver.authentication import (
    DnsUnanswered,
    Lookup,
    dkim_record_problem,
    dmarc_policy,
    mail_hosts,
    resolver_lookup,
    spf_verdict,
)
from digest.deliver.compose import Composer, ComposeSettings, Taste, make_renderer, personal_links
from digest.deliver.composing import PeriodIndexes, tastes_of
from digest.deliver.context import SendContext
from digest.deliver.message import signer_for
from digest.deliver.notices import already_subscribed_notice, confirm_notice, welcome_notice
from digest.deliver.report import Clock, DeliveryReport, Sleep
from digest.deliver.sender import send_edition
from digest.deliver.transports import (
    Envelope,
    PermanentFailure,
    RehearsalTransport,
    RelayOffer,
    TemporaryFailure,
    Transport,
    TransportError,
    relay_offer,
    transport_for,
)

__all__ = [
    "DnsUnanswered",
    "Lookup",
    "RelayOffer",
    "dkim_record_problem",
    "dmarc_policy",
    "mail_hosts",
    "relay_offer",
    "resolver_lookup",
    "signer_for",
    "spf_verdict",
    "Clock",
    "ComposeSettings",
    "Composer",
    "DeliveryReport",
    "Envelope",
    "PeriodIndexes",
    "PermanentFailure",
    "RehearsalTransport",
    "SendContext",
    "Taste",
    "Sleep",
    "TemporaryFailure",
    "Transport",
    "TransportError",
    "already_subscribed_notice",
    "confirm_notice",
    "make_renderer",
    "personal_links",
    "send_edition",
    "tastes_of",
    "transport_for",
    "welcome_notice",
]
