"""What a send phase did, counted by the threads that do it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

Clock = Callable[[], datetime]
Sleep = Callable[[float], None]


#: What a report counts, one delivery at a time.
_COUNTED = ("sent", "failed", "skipped", "deferred", "expired", "waiting", "folded")


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
    #: Not mailed on their own: their papers go into the reader's next email (cadence).
    folded: int = 0
    stopped: str | None = None
    #: True when a stop was asked for (SIGTERM): the rest stays queued on purpose.
    interrupted: bool = False
    failures: list[tuple[str, str]] = field(default_factory=list)
    #: Why the first delivery that stays queued for the next run does (the relay's words).
    deferred_because: str | None = None
    #: Seconds spent per stage (plan, render, build, send, record), for the benchmark.
    seconds: dict[str, float] = field(default_factory=dict)
    #: Set when the send stopped because the relay seems down (a fallback may go on).
    relay_down: bool = False
    #: Each relay given up for the next, and why ("a:587 -> b:587: ...").
    failovers: list[str] = field(default_factory=list)
    #: Deliveries sent this run with no answer: not sent again in this run, by any relay.
    unknown: set[int] = field(default_factory=set)
    #: Peak resident memory of the composing child process, when there was one (KiB).
    composer_peak_rss_kb: int = 0
    #: Called once per delivery done, whatever its outcome (the progress display).
    on_delivery: Callable[[], None] | None = field(default=None, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def count(self, outcome: str, n: int = 1) -> None:
        """Count ``n`` deliveries done with this outcome (sent, skipped, folded, ...)."""
        if not n:
            return
        with self._lock:
            setattr(self, outcome, getattr(self, outcome) + n)
            if self.on_delivery and outcome != "waiting":
                for _ in range(n):
                    self.on_delivery()

    def fail(self, email: str, reason: str) -> None:
        """Count a delivery that failed, and say why."""
        with self._lock:
            self.failures.append((email, reason))
        self.count("failed")

    def defer(self, reason: str) -> None:
        """Count a delivery left queued for the next run, keeping the first reason."""
        with self._lock:
            self.deferred_because = self.deferred_because or reason
        self.count("deferred")

    def stop(self, why: str) -> None:
        """End the send early, for this reason (the first one given is kept)."""
        with self._lock:
            self.stopped = self.stopped or why

    def fail_over(self, note: str) -> None:
        """Go on with the next relay: the stop that gave up this one no longer holds."""
        with self._lock:
            self.failovers.append(note)
            self.stopped, self.relay_down = None, False

    @classmethod
    def together(cls, parts: Sequence[DeliveryReport]) -> DeliveryReport:
        """What several send phases did (one per newsletter), as one report."""
        whole = cls()
        for part in parts:
            for counted in _COUNTED:
                setattr(whole, counted, getattr(whole, counted) + getattr(part, counted))
            whole.stopped = whole.stopped or part.stopped
            whole.interrupted = whole.interrupted or part.interrupted
            whole.relay_down = whole.relay_down or part.relay_down
            whole.deferred_because = whole.deferred_because or part.deferred_because
            whole.failures += part.failures
            whole.failovers += part.failovers
            whole.unknown |= part.unknown
            whole.composer_peak_rss_kb = max(whole.composer_peak_rss_kb, part.composer_peak_rss_kb)
            for stage, seconds in part.seconds.items():
                whole.add_time(stage, seconds)
        return whole

    def add_time(self, stage: str, seconds: float) -> None:
        with self._lock:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds
