"""What every view shares: the app's context, CSRF protection, rate limits, message pages."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from flask import render_template
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFProtect

from digest.config import Settings
from digest.deliver.transports import Transport
from digest.store import Store

csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address)


@dataclass
class WebContext:
    """What the views need: settings, the store, a transport factory and the clock."""

    settings: Settings
    store: Store
    make_transport: Callable[[], Transport]
    clock: Callable[[], datetime]
    themes: list[str]


def message_page(heading: str, *paragraphs: str, status: int) -> tuple[str, int]:
    """A page that says one thing: a heading and a few paragraphs."""
    return render_template("message.html", heading=heading, paragraphs=paragraphs), status
