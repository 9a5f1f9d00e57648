"""Webhooks: each endpoint given its copies of the events it asked for, and each copy
posted until the endpoint takes it (at least once, the same ``webhook-id`` each time).

Run by the worker every half minute and by ``digest webhooks send``, never by a send:
an endpoint that is slow or down delays no email.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from digest import webhooks
from digest.config import Settings
from digest.logs import log_event
from digest.store import Outgoing, Store

log = logging.getLogger(__name__)

Post = Callable[[str, dict[str, str], bytes], str]


@dataclass
class HookReport:
    """What one pass did: copies taken, tried again later, given up."""

    taken: int = 0
    retrying: int = 0
    given_up: int = 0
    failures: list[str] = field(default_factory=list)


def dispatch(
    store: Store,
    settings: Settings,
    *,
    now: Callable[[], datetime],
    post: Post = webhooks.post,
    budget_seconds: float = 60.0,
) -> HookReport:
    """Give each webhook its new events and post what is due, for at most about
    ``budget_seconds`` (the rest waits for the next pass)."""
    report = HookReport()
    deadline = time.monotonic() + budget_seconds
    for webhook in settings.webhooks:
        store.fan_out(webhook.url, webhook.events, now=now())
        for item in store.due_webhook(webhook.url, now=now()):
            if time.monotonic() > deadline:
                return report
            status = _attempt(webhook.url, webhook.secret, item, now(), post)
            retry_in = _retry_in(item, status)
            store.webhook_tried(
                webhook.url, item.event, status=status, now=now(), retry_in=retry_in
            )
            _count(report, webhook.url, item, status, retry_in)
    return report


def _attempt(url: str, secret: str, item: Outgoing, at: datetime, post: Post) -> str:
    body = webhooks.payload(item.type, item.at.isoformat(), item.data)
    stamp = int(at.timestamp())
    headers = {
        "webhook-id": item.event_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": webhooks.signature(secret, item.event_id, stamp, body),
    }
    return post(url, headers, body)


def _retry_in(item: Outgoing, status: str) -> timedelta | None:
    if status.startswith("2") or item.attempts >= len(webhooks.RETRY_AFTER_SECONDS):
        return None
    return timedelta(seconds=webhooks.RETRY_AFTER_SECONDS[item.attempts])


def _count(
    report: HookReport, url: str, item: Outgoing, status: str, retry_in: timedelta | None
) -> None:
    if status.startswith("2"):
        report.taken += 1
        return
    report.failures.append(f"{url}: {item.type} {item.event_id}: {status}")
    if retry_in is None:
        report.given_up += 1
        log_event(log, "webhook_given_up", logging.WARNING, url=url, webhook_id=item.event_id)
    else:
        report.retrying += 1
