"""What a message passes just before the hand-off to the relay: the reader's last word
(``LastWord``: the consent rule, never the decider) and the relay's limits (``Quota``:
token buckets kept in the database)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta

from digest.deliver.context import SendContext
from digest.deliver.quotas import describe, take_token
from digest.models import Subscriber
from digest.store import Store

#: The longest a message waits for a relay's limit to let it go; past that it is held.
QUOTA_WAIT_SECONDS = 60.0

#: The longest a reader's change may wait before the messages about to go see it.
LAST_WORD_SECONDS = 0.25


class LastWord:
    """The reader's last word before the hand-off to the relay: one query for the
    message about to go and every message queued behind it, at most every
    ``LAST_WORD_SECONDS``, finds the readers changed since they were read."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.lock = threading.Lock()
        self.at = -LAST_WORD_SECONDS
        self.checked: set[int] = set()
        self.changed: dict[int, Subscriber] = {}

    def now(self, subscriber: Subscriber, waiting: Callable[[], list[Subscriber]]) -> Subscriber:
        """The reader as stored now, if they changed since ``subscriber`` was read."""
        with self.lock:
            stale = time.monotonic() - self.at > LAST_WORD_SECONDS
            if stale or subscriber.id not in self.checked:
                batch = [subscriber, *waiting()]
                self.changed = self.store.changed_subscribers(batch)
                self.checked = {s.id for s in batch}
                self.at = time.monotonic()
            return self.changed.get(subscriber.id, subscriber)


class Quota:
    """A relay's limits (``DeliverySettings.limits``), kept as token buckets in the
    database: a message waits for its token up to ``QUOTA_WAIT_SECONDS``."""

    def __init__(self, context: SendContext) -> None:
        self.store, self.relay, self.clock = context.store, context.relay, context.clock
        self.limits = context.delivery.limits()
        self.sleep, self.report = context.sleep, context.report

    def held(self) -> str | None:
        """None once this message may go (its tokens spent); else why it is held."""
        # Counted on the monotonic clock, not as the sum of the waits: a wait for another
        # sender's lock on the buckets (it may be paused) counts too.
        started, waited = time.monotonic(), 0.0
        while self.limits:
            wait = self.store.spend_token(self.relay, self.limits, take_token, now=self.clock())
            if not wait:
                break
            waited = max(waited, time.monotonic() - started)
            if waited + wait > QUOTA_WAIT_SECONDS:
                until = self.clock() + timedelta(seconds=wait)
                return (
                    f"held by the relay's limit ({', '.join(describe(*q) for q in self.limits)}) "
                    f"until about {until:%Y-%m-%d %H:%M} UTC"
                )
            self.sleep(wait)
            waited += wait
        if waited:
            self.report.add_time("rate limit", waited)
        return None


def composed_differently(sent: Subscriber, now: Subscriber) -> bool:
    """Whether a message would differ for the reader as stored now."""
    said = (sent.topics, sent.theme, sent.name, sent.email, sent.cadence)
    return said != (now.topics, now.theme, now.name, now.email, now.cadence)
