"""Send an edition's queued deliveries: select, render, build, send, record, one by one.

Each delivery is marked in the database right after the server accepts it,
so a crash or kill at any moment followed by a rerun delivers every
remaining subscriber exactly once; the only possible repeat is the one
message in flight at the kill, and it carries the same Message-ID.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from digest.config import Settings
from digest.mailer import DkimSigner, PermanentFailure, TemporaryFailure, Transport
from digest.message import Envelope, build_message, domain_of, envelope_address, message_id_for
from digest.models import Delivery, Edition, Subscriber
from digest.render import EmailRenderer, PersonalLinks, RenderedEmail
from digest.selection import EditionIndex
from digest.store import Store
from digest.tokens import preferences_url, unsubscribe_url

Clock = Callable[[], datetime]
Sleep = Callable[[float], None]


@dataclass
class DeliveryReport:
    """What a send phase did; ``stopped`` says why it ended early, if it did."""

    sent: int = 0
    failed: int = 0
    skipped: int = 0
    deferred: int = 0
    expired: int = 0
    #: Left queued because the subscriber's local delivery time has not come yet.
    waiting: int = 0
    stopped: str | None = None
    #: True when a stop was asked for (SIGTERM): the rest stays queued on purpose.
    interrupted: bool = False
    failures: list[tuple[str, str]] = field(default_factory=list)

    @property
    def handled(self) -> int:
        return self.sent + self.failed + self.skipped + self.deferred


class _RateLimiter:
    def __init__(self, per_second: float, sleep: Sleep) -> None:
        self.interval = 1.0 / per_second if per_second > 0 else 0.0
        self.sleep = sleep
        self.next_at = 0.0

    def wait(self) -> None:
        if not self.interval:
            return
        now = time.monotonic()
        if now < self.next_at:
            self.sleep(self.next_at - now)
        self.next_at = max(now, self.next_at) + self.interval


def personal_links(settings: Settings, subscriber_id: int) -> PersonalLinks:
    """The signed unsubscribe and preferences links of one subscriber."""
    return PersonalLinks(
        unsubscribe_url=unsubscribe_url(settings.base_url, settings.secret_key, subscriber_id),
        preferences_url=preferences_url(settings.base_url, settings.secret_key, subscriber_id),
    )


class Composer:
    """Turns a subscriber's selection into the bytes of their message (pure, cached per edition)."""

    def __init__(self, settings: Settings, renderer: EmailRenderer) -> None:
        self.settings = settings
        self.renderer = renderer
        self.domain = domain_of(settings.sender_address)
        self.signer = (
            DkimSigner(settings.dkim, self.domain) if settings.dkim.private_key_file else None
        )

    def theme_for(self, subscriber: Subscriber) -> str:
        themes = self.renderer.themes
        return subscriber.theme if subscriber.theme in themes else self.settings.theme

    def render(
        self, edition: Edition, subscriber: Subscriber, index: EditionIndex
    ) -> RenderedEmail:
        selection = index.select(subscriber.topics, max_entries=self.settings.max_entries)
        return self.renderer.render(
            edition_date=edition.day,
            selection=selection,
            links=personal_links(self.settings, subscriber.id),
            theme=self.theme_for(subscriber),
            personal=bool(subscriber.topics),
        )

    def message_id(self, edition: Edition, subscriber: Subscriber) -> str:
        return message_id_for(
            self.settings.secret_key, edition.id, edition.day, subscriber.id, self.domain
        )

    def message(
        self, rendered: RenderedEmail, edition: Edition, subscriber: Subscriber, sent_at: datetime
    ) -> bytes:
        settings = self.settings
        envelope = Envelope(
            sender_name=settings.sender_name,
            sender_address=settings.sender_address,
            recipient_address=subscriber.email,
            recipient_name=subscriber.name,
            list_name=settings.title,
            unsubscribe_url=unsubscribe_url(settings.base_url, settings.secret_key, subscriber.id),
            unsubscribe_mailto=settings.unsubscribe_mailto or settings.sender_address,
        )
        message = build_message(
            rendered, envelope, message_id=self.message_id(edition, subscriber), sent_at=sent_at
        )
        return self.signer.sign(message) if self.signer else message


def send_edition(
    store: Store,
    edition: Edition,
    *,
    composer: Composer,
    transport: Transport,
    clock: Clock,
    sleep: Sleep = time.sleep,
    report: DeliveryReport,
    on_delivery: Callable[[], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    is_due: Callable[[Edition, Subscriber], bool] = lambda _edition, _subscriber: True,
) -> None:
    """Send every queued delivery of an edition, recording each outcome as it happens.

    Stops early (setting ``report.stopped``) after too many temporary
    failures in a row, and between two deliveries when ``should_stop`` says
    so; what was not sent stays queued for the next run.  Deliveries that
    ``is_due`` says are not due yet (local delivery time) stay queued too.
    """
    sender = envelope_address(composer.settings.sender_address)
    attempt = _Attempt(store, composer, transport, clock, sleep, report, sender)
    with EditionIndex(store.edition_entries(edition.id)) as index:
        after = 0
        while page := store.queued_deliveries(edition.id, after_id=after):
            for delivery, subscriber in page:
                after = delivery.id
                if should_stop():
                    report.interrupted = True
                    return
                if not is_due(edition, subscriber):
                    report.waiting += 1
                    continue
                attempt.deliver(edition, delivery, subscriber, index)
                if on_delivery:
                    on_delivery()
                if report.stopped:
                    return


class _Attempt:
    """Delivers one queued delivery, with retries, and records the outcome."""

    def __init__(
        self,
        store: Store,
        composer: Composer,
        transport: Transport,
        clock: Clock,
        sleep: Sleep,
        report: DeliveryReport,
        sender: str,
    ) -> None:
        self.store = store
        self.composer = composer
        self.transport = transport
        self.clock = clock
        self.sleep = sleep
        self.report = report
        self.sender = sender
        self.policy = composer.settings.delivery
        self.limiter = _RateLimiter(self.policy.rate_limit, sleep)
        self.consecutive_failures = 0

    def deliver(
        self, edition: Edition, delivery: Delivery, subscriber: Subscriber, index: EditionIndex
    ) -> None:
        store, report, clock = self.store, self.report, self.clock
        if subscriber.status != "active" or subscriber.paused:
            why = "paused" if subscriber.paused else "unsubscribed before sending"
            store.mark_skipped(delivery.id, reason=why, now=clock())
            report.skipped += 1
            return
        rendered = self.composer.render(edition, subscriber, index)
        if rendered.shown == 0 and not self.policy.send_empty:
            store.mark_skipped(delivery.id, reason="nothing new on their topics", now=clock())
            report.skipped += 1
            return
        message = self.composer.message(rendered, edition, subscriber, clock())
        message_id = self.composer.message_id(edition, subscriber)
        recipient = envelope_address(subscriber.email)
        reason = ""
        for attempt in range(self.policy.retries):
            self.limiter.wait()
            try:
                reply = self.transport.send(self.sender, recipient, message, message_id)
            except PermanentFailure as e:
                store.mark_failed(delivery.id, reason=str(e), now=clock())
                report.failed += 1
                report.failures.append((subscriber.email, str(e)))
                self.consecutive_failures = 0
                return
            except TemporaryFailure as e:
                reason = str(e)
                self.consecutive_failures += 1
                if self.consecutive_failures >= self.policy.max_consecutive_failures:
                    report.stopped = (
                        f"stopped after {self.consecutive_failures} temporary failures in a row "
                        f"(the mail server seems down): {reason}"
                    )
                    break
                if attempt + 1 < self.policy.retries:
                    self.sleep(self.policy.retry_delay * 2**attempt)
            else:
                store.mark_sent(delivery.id, message_id=message_id, reply=reply, now=clock())
                report.sent += 1
                self.consecutive_failures = 0
                return
        store.mark_deferred(delivery.id, reason=reason, now=clock())
        report.deferred += 1
