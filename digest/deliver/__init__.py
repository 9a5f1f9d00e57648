"""Delivery: the message bytes (``message``), composing them (``compose``), the
transports that hand them to a server (``transports``), and the sender that claims,
sends and records each delivery (``sender``)."""

from digest.deliver.compose import Composer, ComposeSettings, make_renderer, personal_links
from digest.deliver.composing import PeriodIndexes
from digest.deliver.context import SendContext
from digest.deliver.notices import already_subscribed_notice, confirm_notice, welcome_notice
from digest.deliver.report import Clock, DeliveryReport, Sleep
from digest.deliver.sender import send_edition
from digest.deliver.transports import (
    Envelope,
    PermanentFailure,
    RehearsalTransport,
    TemporaryFailure,
    Transport,
    transport_for,
)

__all__ = [
    "Clock",
    "ComposeSettings",
    "Composer",
    "DeliveryReport",
    "Envelope",
    "PeriodIndexes",
    "PermanentFailure",
    "RehearsalTransport",
    "SendContext",
    "Sleep",
    "TemporaryFailure",
    "Transport",
    "already_subscribed_notice",
    "confirm_notice",
    "make_renderer",
    "personal_links",
    "send_edition",
    "transport_for",
    "welcome_notice",
]
