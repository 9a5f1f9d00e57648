"""Send an edition's queued deliveries: claim, compose, send, record.

Each delivery is recorded in the database after the server accepts it and
before the sender hands over its next message, so a crash or kill at any
moment followed by a rerun delivers every remaining subscriber exactly once; the only possible
repeat is the one message in flight at the kill, and it carries the same
Message-ID.  Large editions are composed in a child process
(``digest.deliver.compose``) while this one talks to the mail server.
"""

from __future__ import annotations

import itertools
import multiprocessing
import queue
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from digest.config import DeliverySettings
from digest.deliver.compose import (
    Composed,
    Composer,
    ComposeSettings,
    Jobs,
    compose_message,
    envelope_sender,
    serve,
)
from digest.deliver.message import domain_of, envelope_address
from digest.deliver.transports import (
    Deferred,
    Envelope,
    MessageRefused,
    OutcomeUnknown,
    PermanentFailure,
    SessionRefused,
    TemporaryFailure,
    Transport,
)
from digest.errors import DigestError, StorageError
from digest.inbound.policy import names_the_mailbox, status_of
from digest.locking import Keeper
from digest.models import Delivery, Edition, StoredEntry, Subscriber
from digest.plan import (
    NOTHING_NEW,
    Policy,
    Skip,
    Wait,
    availability,
    gathered_note,
    gathers,
    is_gathered,
)
from digest.select.index import EditionIndex
from digest.store import Store

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
    #: Not mailed on their own: their papers go into the reader's next email (cadence).
    folded: int = 0
    stopped: str | None = None
    #: True when a stop was asked for (SIGTERM): the rest stays queued on purpose.
    interrupted: bool = False
    failures: list[tuple[str, str]] = field(default_factory=list)
    #: Seconds spent per stage (plan, render, build, send, record), for the benchmark.
    seconds: dict[str, float] = field(default_factory=dict)
    #: Peak resident memory of the composing child process, when there was one (KiB).
    composer_peak_rss_kb: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add_time(self, stage: str, seconds: float) -> None:
        with self._lock:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds


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


@dataclass(frozen=True)
class _Outgoing:
    delivery: Delivery
    subscriber: Subscriber
    envelope: Envelope
    message: bytes
    #: For an email of several editions, the day its reader's next period begins.
    period_day: date | None = None


_SWITCH_INTERVAL = 0.0002
#: The longest a reader's change may wait before the messages about to go see it.
LAST_WORD_SECONDS = 0.25


class _LastWord:
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


#: Tries to record a message the server accepted (about 8 s of waits in all).
_RECORD_TRIES = 6


class _Senders:
    """Sender threads, one per transport (SMTP connection), fed from a bounded queue.

    The main thread brings the next messages (composed here or in the child
    process) while the senders wait on the mail server, so composing costs
    no time at the server's pace.  Each sender records a delivery before it
    sends its next message.
    """

    def __init__(
        self,
        store: Store,
        transports: Sequence[Transport],
        *,
        compose: ComposeSettings,
        policy: DeliverySettings,
        clock: Clock,
        sleep: Sleep,
        report: DeliveryReport,
        on_delivery: Callable[[], None] | None,
        guard: Callable[[], None] = lambda: None,
        still_wanted: Callable[[Delivery, Subscriber], bool] = lambda d, s: True,
    ) -> None:
        self.store = store
        #: Raises ``LostOwnership`` when a message may no longer go out.
        self.guard = guard
        #: Whether a reader as stored now still gets this delivery (else it is skipped).
        self.still_wanted = still_wanted
        self.last_word = _LastWord(store)
        #: Deliveries whose reader changed what their message says: composed again.
        self.recompose: list[tuple[Delivery, Subscriber]] = []
        #: Whom each message is from on the envelope (``envelope_sender``).
        self.compose = compose
        self.policy = policy
        self.clock = clock
        self.sleep = sleep
        self.report = report
        self.on_delivery = on_delivery
        self.lock = threading.Lock()
        self.limiter = _RateLimiter(policy.rate_limit, sleep)
        self.consecutive_failures = 0
        #: Recipients refused before any message of this run was accepted: held back,
        #: since many in a row mean the server refuses us, not them.
        self.refused_first: list[tuple[_Outgoing, str]] = []
        self.accepted_any = False
        #: Messages refused in a row at the end of DATA, naming no recipient.
        self.messages_refused = 0
        #: Messages a server answered 4xx (greylisting): tried again once all the others
        #: have been, after one wait for all of them; how often each was tried.
        self.later: list[_Outgoing] = []
        self.tries: dict[int, int] = {}
        #: Set to make every sender stop after its message in flight.
        self.halt = threading.Event()
        #: An error no retry can fix (bad login, TLS refused), re-raised by ``finish``.
        self.error: BaseException | None = None
        self.queue: queue.Queue[_Outgoing | None] = queue.Queue(maxsize=32 * len(transports))
        # A sender woken by the server's reply must not wait out the composing
        # thread's 5 ms GIL slice: while the senders run, threads switch often.
        # (N=10,000, one connection, three alternating pairs: 0.785/0.898/0.943
        # of the ceiling with it, 0.797/0.807/0.860 without.)
        self.switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(_SWITCH_INTERVAL)
        self.threads = [
            threading.Thread(target=self._run, args=(t,), name=f"sender-{n}", daemon=True)
            for n, t in enumerate(transports)
        ]
        for thread in self.threads:
            thread.start()

    def put(self, item: _Outgoing) -> bool:
        """Queue a message; False when the senders have stopped."""
        while not self.halt.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def finish(self, *, drop_queued: bool = False) -> None:
        """Wait for the senders; with ``drop_queued`` what is not in flight stays queued."""
        if drop_queued:
            self.halt.set()
        try:
            self._try_later_again()
            for _ in self.threads:
                while True:
                    try:
                        self.queue.put(None, timeout=0.1)
                        break
                    except queue.Full:
                        if self.halt.is_set():
                            self._drain()
            for thread in self.threads:
                thread.join()
        finally:
            sys.setswitchinterval(self.switch_interval)
        if self.error is not None:
            raise self.error
        self._settle_refused()  # fewer than the limit, and none accepted: their own refusals

    def _try_later_again(self) -> None:
        """Send again what a server deferred (4xx), in rounds: each round waits once for
        all of them, so greylisting costs one wait, never one per reader."""
        for round_number in itertools.count(1):
            self.queue.join()  # every message handed out so far has been tried
            with self.lock:
                due, self.later = self.later, []
            if not due or self.halt.is_set():
                return
            self.sleep(self.policy.retry_delay * 2**round_number)
            for item in due:
                if not self.put(item):
                    return

    def _drain(self) -> None:
        try:
            while True:
                self.queue.get_nowait()
                self.queue.task_done()
        except queue.Empty:
            return

    def _run(self, transport: Transport) -> None:
        try:
            while True:
                item = self.queue.get()
                try:
                    if item is None:
                        return
                    if self.halt.is_set():
                        continue
                    self._deliver(transport, item)
                except BaseException as e:  # noqa: BLE001 - handed to the main thread
                    self.error = self.error or e
                    self.halt.set()
                finally:
                    self.queue.task_done()
        finally:
            self.store.close_thread_connection()  # a worker's next run has threads of its own

    def _deliver(self, transport: Transport, item: _Outgoing) -> None:
        """Send one message, retrying temporary failures, and record how it went."""
        policy, report = self.policy, self.report
        reason = ""
        for attempt in range(policy.retries):
            with self.lock:
                self.limiter.wait()
            self.guard()  # only while the claim (and the run lock) are surely ours
            if not self._as_the_reader_wants(item):
                return
            started = time.perf_counter()
            try:
                reply = transport.send(item.envelope, item.message)
            except MessageRefused as e:
                self._message_refused(item, str(e))
                return
            except PermanentFailure as e:
                self._refused(item, str(e))
                return
            except OutcomeUnknown as e:
                # Sent, never answered: it may have arrived, so no retry in this run.
                self._unknown(item, str(e))
                return
            except Deferred as e:
                self._deferred(item, str(e))
                return
            except TemporaryFailure as e:
                reason = str(e)
                with self.lock:
                    self.consecutive_failures += 1
                    failures = self.consecutive_failures
                if failures >= policy.max_consecutive_failures:
                    with self.lock:
                        report.stopped = report.stopped or (
                            f"stopped after {failures} temporary failures in a row "
                            f"(the mail server seems down): {reason}"
                        )
                    self.halt.set()
                    break
                if attempt + 1 < policy.retries:
                    self.sleep(policy.retry_delay * 2**attempt)
                continue
            finally:
                report.add_time("send", time.perf_counter() - started)
            with self.lock:
                self.consecutive_failures = 0
            self._record_sent(item, reply)
            return
        self.store.mark_deferred(item.delivery.id, reason=reason, now=self.clock())
        with self.lock:
            report.deferred += 1
            self._delivered()

    def _as_the_reader_wants(self, item: _Outgoing) -> bool:
        """Whether the message goes as it is: a reader who left or paused since it was
        composed is skipped, and one who changed what it says gets it composed again."""
        now = self.last_word.now(item.subscriber, self._waiting)
        if now is item.subscriber:
            return True
        if not self.still_wanted(item.delivery, now):
            with self.lock:
                self._delivered()
            return False
        if _composed_differently(item.subscriber, now) or now.cadence != item.subscriber.cadence:
            with self.lock:
                self.recompose.append((item.delivery, now))
            return False
        return True

    def _waiting(self) -> list[Subscriber]:
        with self.queue.mutex:
            return [item.subscriber for item in self.queue.queue if item is not None]

    def recomposed(self) -> Iterator[tuple[Delivery, Subscriber]]:
        """Once everything handed out has been tried, the deliveries to compose again,
        until there are none (the main thread composes them as it composed the rest)."""
        while not self.halt.is_set():
            self.queue.join()
            with self.lock:
                again, self.recompose = self.recompose, []
            if not again:
                return
            yield from again

    def _deferred(self, item: _Outgoing, reason: str) -> None:
        """A 4xx answer about this message: the server is up; try it again later in the
        run (``_try_later_again``), or in the next run once the tries are spent."""
        with self.lock:
            self.consecutive_failures = 0
            tries = self.tries[item.delivery.id] = self.tries.get(item.delivery.id, 0) + 1
            if tries < self.policy.retries:
                self.later.append(item)
                return
        self.store.mark_deferred(item.delivery.id, reason=reason, now=self.clock())
        with self.lock:
            self.report.deferred += 1
            self._delivered()

    def _message_refused(self, item: _Outgoing, reason: str) -> None:
        """One message refused for good (its size, its content): it fails, and the run
        goes on; only several messages refused in a row mean the server refuses our mail."""
        with self.lock:
            self.consecutive_failures = 0
            self.messages_refused += 1
            refused = self.messages_refused
        self._failed(item, reason)
        if refused >= self.policy.max_refused_in_a_row:
            raise SessionRefused(
                f"the server refused {refused} messages in a row, naming no recipient, so it "
                f"is refusing our mail: {reason}"
            )

    def _refused(self, item: _Outgoing, reason: str) -> None:
        """A recipient refused for good: failed, unless it may be the server refusing us
        (a refusal that names the mailbox, 5.1.x or 5.2.x, is always about the reader)."""
        if names_the_mailbox(status_of(reason)):
            with self.lock:
                self.consecutive_failures = 0
            self._bounced(item, reason)
            return
        with self.lock:
            self.consecutive_failures = 0
            if not self.accepted_any:
                self.refused_first.append((item, reason))
                if len(self.refused_first) >= self.policy.max_refused_in_a_row:
                    raise SessionRefused(
                        f"the server refused each of the first {len(self.refused_first)} "
                        f"recipients, so it is refusing us: {reason}"
                    )
                return
        self._bounced(item, reason)

    def _settle_refused(self) -> None:
        with self.lock:
            held, self.refused_first = self.refused_first, []
        for item, reason in held:
            self._bounced(item, reason)

    def _bounced(self, item: _Outgoing, reason: str) -> None:
        """A recipient refused for good at sending: failed, and a hard bounce for them."""
        from digest.inbound.handle import refused_at_send

        # The bounce first: a kill between the two leaves the reader suppressed and the
        # delivery queued (the rerun skips it), never a failure the bounce forgot.
        refused_at_send(self.store, self.compose.inbound, item.delivery, reason, now=self.clock())
        self._failed(item, reason)

    def _failed(self, item: _Outgoing, reason: str) -> None:
        self.store.mark_failed(item.delivery.id, reason=reason, now=self.clock())
        with self.lock:
            self.report.failed += 1
            self.report.failures.append((item.subscriber.email, reason))
            self._delivered()

    def _unknown(self, item: _Outgoing, reason: str) -> None:
        given_up = self.store.mark_unknown(
            item.delivery.id,
            reason=reason,
            max_attempts=self.policy.max_attempts,
            now=self.clock(),
        )
        with self.lock:
            self.consecutive_failures += 1
            if given_up:
                self.report.failed += 1
                self.report.failures.append((item.subscriber.email, reason))
            else:
                self.report.deferred += 1
            self._delivered()
            if self.consecutive_failures >= self.policy.max_consecutive_failures:
                self.report.stopped = self.report.stopped or (
                    f"stopped after {self.consecutive_failures} failures in a row: {reason}"
                )
                self.halt.set()

    def _record_sent(self, item: _Outgoing, reply: str) -> None:
        started = time.perf_counter()
        for attempt in range(_RECORD_TRIES):
            # The server has the message: a busy database must not make the rerun send it
            # again, so the mark is tried again before the run may fail.
            try:
                self.store.mark_sent(
                    item.delivery.id,
                    message_id=item.envelope.message_id,
                    reply=reply,
                    now=self.clock(),
                    period_day=item.period_day,
                )
                break
            except StorageError as e:
                if not e.transient or attempt + 1 == _RECORD_TRIES:
                    raise
                self.sleep(0.25 * 2**attempt)
        self.report.add_time("record", time.perf_counter() - started)
        with self.lock:
            self.report.sent += 1
            self._delivered()
            first = not self.accepted_any
            self.accepted_any = True
            self.messages_refused = 0
        if first:
            self._settle_refused()

    def _delivered(self) -> None:
        """Tell the progress display one more delivery is done (hold ``lock``)."""
        if self.on_delivery:
            self.on_delivery()


def send_edition(
    store: Store,
    edition: Edition,
    *,
    composer: Composer,
    delivery: DeliverySettings,
    transports: Sequence[Transport],
    clock: Clock,
    sleep: Sleep = time.sleep,
    report: DeliveryReport,
    on_delivery: Callable[[], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    holder: str = "digest",
    exclusive: bool = True,
    run_lock: Keeper | None = None,
) -> None:
    """Send every queued delivery of an edition, recording each outcome as it happens.

    Deliveries are claimed in batches under ``holder``'s name (several
    processes may share the queue unless ``exclusive``); what is claimed but
    not sent is released at the end.  One sender per transport
    (``SMTP_CONNECTIONS``).  Stops early (setting ``report.stopped``) after
    too many temporary failures in a row, and between two deliveries when
    ``should_stop`` says so; what was not sent stays queued for the next run.
    The decider (``digest.plan``, with the composer's policy) says who is
    skipped and who waits for their local delivery time (left queued).

    The claims (and ``run_lock``, when given) are renewed from a thread of
    their own while this runs; a message goes out only while both are surely
    held, else ``LostOwnership`` ends the send (nothing more goes out).
    """
    lease = timedelta(seconds=delivery.lease_seconds)
    claims = Keeper(
        lambda: store.renew_claims(holder, now=clock(), lease=lease),
        lease=lease,
        what="claim on its deliveries",
    )
    keepers = [claims] if run_lock is None else [claims, run_lock]

    def guard() -> None:
        for keeper in keepers:
            keeper.check()

    def still_wanted(delivery: Delivery, now: Subscriber) -> bool:
        with senders.lock:  # the sender threads count into the same report
            return not _skipped_if_gone(
                store, edition, delivery, now, clock, report, composer.policy
            )

    senders = _Senders(
        store,
        transports,
        compose=composer.settings,
        policy=delivery,
        clock=clock,
        sleep=sleep,
        report=report,
        on_delivery=on_delivery,
        guard=guard,
        still_wanted=still_wanted,
    )
    interrupted = failed = False
    try:
        claims.__enter__()
        entries = store.edition_entries(edition.id)
        claimed = itertools.chain(
            _claimed(store, edition.id, holder, lease, exclusive, clock), senders.recomposed()
        )
        in_child = store.count_queued([edition.id]) >= COMPOSE_IN_A_PROCESS_FROM
        # Read subscribers again just before composing; a child composes ahead,
        # so its messages are checked as they come back instead.
        fresh = claimed if in_child else _as_stored_now(store, claimed)
        periods: dict[int, date] = {}
        fresh = _with_periods(store, fresh, periods)
        due = _due(fresh, edition, composer.policy, report, store, clock, periods)
        first = next(due, None)
        if first is not None and _all_take_8bit(transports):
            composer = composer.sending_8bit()
        due = itertools.chain([first] if first else [], due)
        with _composing(
            store, composer, edition, entries, report, in_child=in_child, periods=periods
        ) as compose:
            for delivery, subscriber, outcome in compose(_trials(composer, due), clock):
                if senders.halt.is_set():
                    break
                if should_stop():
                    interrupted = report.interrupted = True
                    break
                is_trial = delivery.id == _TRIAL_ID
                # Only a child composes ahead: its subscribers were read again after.
                if (in_child and not is_trial) and _skipped_if_gone(
                    store, edition, delivery, subscriber, clock, report, composer.policy
                ):
                    item = None
                else:
                    gathered = edition.day if delivery.id in periods else None
                    item = _record_outcome(
                        store, delivery, subscriber, outcome, clock, senders, gathered
                    )
                if is_trial:
                    continue
                if item is None:
                    if on_delivery:
                        with senders.lock:
                            on_delivery()
                elif not senders.put(item):
                    break
    except BaseException:
        failed = True
        raise
    finally:
        try:
            senders.finish(drop_queued=failed or interrupted or report.stopped is not None)
        finally:
            claims.__exit__()
            store.release_claims(holder)


def _all_take_8bit(transports: Sequence[Transport]) -> bool:
    """Whether every transport takes 8-bit parts; a server out of reach just now is sent
    7-bit messages (its sender retries it as usual)."""
    try:
        return all(transport.takes_8bit() for transport in transports)
    except TemporaryFailure:
        return False


def _claimed(
    store: Store, edition_id: int, holder: str, lease: timedelta, exclusive: bool, clock: Clock
) -> Iterator[tuple[Delivery, Subscriber]]:
    after = 0
    while batch := store.claim_deliveries(
        edition_id, holder=holder, now=clock(), lease=lease, after_id=after, exclusive=exclusive
    ):
        yield from batch
        after = batch[-1][0].id


#: From this many queued deliveries on, messages are composed in a child
#: process: composing then takes no time from the threads that talk to the
#: mail server (Python runs one thread at a time).
COMPOSE_IN_A_PROCESS_FROM = 1000


#: Deliveries whose subscribers are read again together, just before they are composed.
FRESH_BATCH = 16


def _as_stored_now(
    store: Store, claimed: Iterator[tuple[Delivery, Subscriber]]
) -> Iterator[tuple[Delivery, Subscriber]]:
    """The claimed deliveries with their subscribers as stored now, a few at a time.

    A reader who unsubscribes, pauses or edits their topics while the send
    runs is seen before their message is composed, at one query per batch
    rather than one per message.
    """
    for batch in _batches(claimed, FRESH_BATCH, first=FRESH_BATCH):
        yield from _refreshed(store, batch)


def _refreshed(
    store: Store, batch: list[tuple[Delivery, Subscriber]]
) -> Iterator[tuple[Delivery, Subscriber]]:
    now = store.changed_subscribers([s for _, s in batch if s.id != _TRIAL_ID])
    for delivery, subscriber in batch:
        yield delivery, now.get(subscriber.id, subscriber)


#: The delivery id of a trial message, which is composed and never sent.
_TRIAL_ID = 0


def _trials(
    composer: Composer, due: Iterator[tuple[Delivery, Subscriber]]
) -> Iterator[tuple[Delivery, Subscriber]]:
    """A trial message ahead of the first real one of each theme, composed and never sent.

    A failure to compose a trial is the run's (a template, a setting), so it
    stops the run before anyone of that theme is marked; after it, a failure
    to compose is that delivery's own.  Each trial warms its theme up just
    when it is first needed, so the first message waits for one theme only.
    """
    address = f"trial@{domain_of(composer.settings.sender_address)}"
    tried: set[str] = set()
    for delivery, subscriber in due:
        theme = composer.theme_for(subscriber)
        if theme not in tried:
            tried.add(theme)
            trial = Subscriber(id=_TRIAL_ID, email=address, status="active", theme=theme)
            yield Delivery(_TRIAL_ID, delivery.edition_id, _TRIAL_ID, "queued"), trial
        yield delivery, subscriber


def _due(
    claimed: Iterator[tuple[Delivery, Subscriber]],
    edition: Edition,
    policy: Policy,
    report: DeliveryReport,
    store: Store,
    clock: Clock,
    periods: dict[int, date],
) -> Iterator[tuple[Delivery, Subscriber]]:
    """The claimed deliveries worth composing: the decider skips others, leaves them
    waiting for local time, or folds them into the reader's next email."""
    folded: list[tuple[int, str]] = []
    for delivery, subscriber in claimed:
        blocked = availability(edition, subscriber, clock(), policy, periods.get(delivery.id))
        if isinstance(blocked, Wait) and blocked.gathered:
            folded.append((delivery.id, gathered_note(blocked)))
            if len(folded) == FOLD_BATCH:
                store.mark_folded(folded, now=clock())
                report.folded += len(folded)
                folded.clear()
        elif isinstance(blocked, Wait):
            report.waiting += 1
        elif not _skipped_if_gone(store, edition, delivery, subscriber, clock, report, policy):
            yield delivery, subscriber
    store.mark_folded(folded, now=clock())
    report.folded += len(folded)


#: How many claimed deliveries have their readers' periods read in one query.
PERIOD_BATCH = 64

#: How many folded deliveries are recorded in one transaction (one not recorded yet
#: when a run stops stays queued, and is folded again by the next).
FOLD_BATCH = 5000


def _with_periods(
    store: Store, claimed: Iterator[tuple[Delivery, Subscriber]], periods: dict[int, date]
) -> Iterator[tuple[Delivery, Subscriber]]:
    """The deliveries, with ``periods`` filled (by delivery id) for readers whose cadence
    gathers editions: where their period begins.  A resend is the edition alone."""
    for batch in _batches(claimed, PERIOD_BATCH, first=FRESH_BATCH):
        wanted = {s.id: s for d, s in batch if d.resends == 0 and gathers(s)}
        if wanted:
            since = store.periods_of(list(wanted.values()))
            periods.update({d.id: since[s.id] for d, s in batch if s.id in wanted})
        yield from batch


def _skipped_if_gone(
    store: Store,
    edition: Edition,
    delivery: Delivery,
    subscriber: Subscriber,
    clock: Clock,
    report: DeliveryReport,
    policy: Policy,
) -> bool:
    """Skip a delivery the decider says no to (the reader left or paused); say whether it did."""
    blocked = availability(edition, subscriber, clock(), policy)
    if not isinstance(blocked, Skip):
        return False
    store.mark_skipped(delivery.id, reason=blocked.reason, now=clock())
    report.skipped += 1
    return True


def _record_outcome(
    store: Store,
    delivery: Delivery,
    subscriber: Subscriber,
    outcome: Composed,
    clock: Clock,
    senders: _Senders,
    period_day: date | None,
) -> _Outgoing | None:
    message, message_id, rendering, building, skipped, failure = outcome
    report = senders.report
    report.add_time("render", rendering)
    report.add_time("build", building)
    if delivery.id == _TRIAL_ID:
        if failure is not None:
            raise DigestError(
                f"composing failed before anyone was mailed: {failure}",
                hint="nothing was sent or marked: fix the cause and run again",
            )
        return None
    if failure is not None:
        store.mark_failed(delivery.id, reason=failure, now=clock())
        with senders.lock:  # the sender threads count into the same report
            report.failed += 1
            report.failures.append((subscriber.email, failure))
        return None
    if message is None and is_gathered(skipped):
        store.mark_folded([(delivery.id, skipped)], now=clock())
        report.folded += 1
        return None
    if message is None:
        # A period that found nothing closes all the same: a weekly reader waits a week.
        closed = period_day if skipped in (None, NOTHING_NEW) else None
        store.mark_skipped(
            delivery.id, reason=skipped or NOTHING_NEW, now=clock(), period_day=closed
        )
        report.skipped += 1
        return None
    sender = envelope_sender(senders.compose, delivery.id)
    envelope = Envelope(sender, envelope_address(subscriber.email), message_id)
    return _Outgoing(delivery, subscriber, envelope, message, period_day)


Composing = Callable[
    [Iterator[tuple[Delivery, Subscriber]], Clock],
    Iterator[tuple[Delivery, Subscriber, Composed]],
]


@contextmanager
def _composing(
    store: Store,
    composer: Composer,
    edition: Edition,
    entries: list[StoredEntry],
    report: DeliveryReport,
    *,
    in_child: bool,
    periods: dict[int, date],
) -> Iterator[Composing]:
    """Yield a function that composes deliveries in order, here or in a child process.

    A reader whose period spans several editions is composed here, from an index of
    the period's papers (one per period start, made when first needed).
    """
    space = composer.space

    # Who has a model, read once: a batch without any of them costs no query.
    modelled = store.readers_with_models(space.version) if space is not None else frozenset()

    def models(batch: list[tuple[Delivery, Subscriber]]) -> dict[int, bytes]:
        """The models of a batch's readers who have one, in one query."""
        wanted = [subscriber.id for _, subscriber in batch if subscriber.id in modelled]
        if space is None or not wanted:
            return {}
        return store.models_of(wanted, space.version)

    with PeriodIndexes(store, edition.day) as period_index:

        def composed_here(
            batch: list[tuple[Delivery, Subscriber]], clock: Clock, index: EditionIndex | None
        ) -> Iterator[tuple[Delivery, Subscriber, Composed]]:
            found = models(batch)
            for delivery, subscriber in batch:
                since = periods.get(delivery.id)
                chosen = period_index(since) if since is not None else index
                assert chosen is not None  # the child composes the rest
                outcome = compose_message(
                    composer,
                    edition,
                    chosen,
                    subscriber,
                    clock(),
                    found.get(subscriber.id),
                    delivery.resends,
                    since,
                )
                yield delivery, subscriber, outcome

        if not in_child:
            composer.renderer.prepare(entries)
            with EditionIndex(entries) as index:

                def here(
                    pending: Iterator[tuple[Delivery, Subscriber]], clock: Clock
                ) -> Iterator[tuple[Delivery, Subscriber, Composed]]:
                    for batch in _batches(pending, FRESH_BATCH, first=FRESH_BATCH):
                        yield from composed_here(batch, clock, index)

                yield here
            return
        yield from _composing_in_child(
            store, composer, edition, entries, report, models, periods, composed_here
        )


class PeriodIndexes:
    """The index of each period's papers (the editions after ``since`` up to
    ``through``, and ``waiting``: the papers of an edition not built yet), made when a
    reader of that period is first composed, and closed together."""

    def __init__(self, store: Store, through: date, waiting: Sequence[StoredEntry] = ()) -> None:
        self.store, self.through, self.waiting = store, through, list(waiting)
        self._opened = ExitStack()
        self._by_since: dict[date, EditionIndex] = {}

    def __call__(self, since: date) -> EditionIndex:
        if since not in self._by_since:
            papers = self.store.entries_between(since, self.through) + self.waiting
            self._by_since[since] = self._opened.enter_context(EditionIndex(papers))
        return self._by_since[since]

    def __enter__(self) -> PeriodIndexes:
        return self

    def __exit__(self, *exc: object) -> None:
        self._opened.close()


def _composing_in_child(
    store: Store,
    composer: Composer,
    edition: Edition,
    entries: list[StoredEntry],
    report: DeliveryReport,
    models: Callable[[list[tuple[Delivery, Subscriber]]], dict[int, bytes]],
    periods: dict[int, date],
    composed_here: Callable[
        [list[tuple[Delivery, Subscriber]], Clock, EditionIndex | None],
        Iterator[tuple[Delivery, Subscriber, Composed]],
    ],
) -> Iterator[Composing]:
    child = _ComposingProcess(composer, edition, entries)
    try:

        def elsewhere(
            pending: Iterator[tuple[Delivery, Subscriber]], clock: Clock
        ) -> Iterator[tuple[Delivery, Subscriber, Composed]]:
            # Three batches out at a time: the child composes the next ones
            # while this process hands the first to the senders.
            waiting: deque[list[tuple[Delivery, Subscriber]]] = deque()

            def submit(batch: list[tuple[Delivery, Subscriber]]) -> None:
                found = models(batch)
                child.send([(s, clock(), found.get(s.id), d.resends) for d, s in batch])
                waiting.append(batch)

            def settle() -> Iterator[tuple[Delivery, Subscriber, Composed]]:
                # The child composed ahead: read the subscribers again, and
                # have what a reader changed meanwhile composed anew.
                batch, outcomes = waiting.popleft(), child.receive()
                again = []
                for (delivery, sent), (_, now), outcome in zip(
                    batch, _refreshed(store, batch), outcomes, strict=True
                ):
                    if _composed_differently(sent, now):
                        again.append((delivery, now))
                    else:
                        yield delivery, now, outcome
                if again:
                    submit(again)

            for batch in _batches(pending, 32):
                gathering = [(d, s) for d, s in batch if d.id in periods]
                if gathering:  # a period of several editions is composed here
                    yield from composed_here(list(_refreshed(store, gathering)), clock, None)
                    batch = [(d, s) for d, s in batch if d.id not in periods]
                    if not batch:
                        continue
                submit(batch)
                if len(waiting) == 3:
                    yield from settle()
            while waiting:
                yield from settle()

        yield elsewhere
        report.composer_peak_rss_kb = child.finish()
    finally:
        child.close()


class _ComposingProcess:
    """A child process (``compose.serve``) that composes batches of deliveries, in order."""

    def __init__(self, composer: Composer, edition: Edition, entries: list[StoredEntry]) -> None:
        context = multiprocessing.get_context("spawn")
        self.connection, theirs = context.Pipe()
        self.process = context.Process(
            target=serve,
            args=(
                theirs,
                composer.settings,
                composer.installation,
                edition,
                entries,
                (composer.space.version, composer.space.dump()) if composer.space else None,
            ),
            name="digest-compose",
        )
        self.process.daemon = True
        self.process.start()
        theirs.close()

    def send(self, jobs: Jobs | None) -> None:
        try:
            self.connection.send(jobs)
        except OSError as e:
            raise self._gone() from e

    def receive(self) -> Any:
        """The child's next answer; its error, or its end, raised here."""
        try:
            answer = self.connection.recv()
        except (EOFError, OSError) as e:
            raise self._gone() from e
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def _gone(self) -> DigestError:
        self.process.join(1)
        return DigestError(
            f"the composing process ended unexpectedly (exit code {self.process.exitcode})",
            hint="what was not sent stays queued: run again to send it",
        )

    def finish(self) -> int:
        """Let the child finish; return its peak memory in KiB."""
        self.send(None)
        while isinstance(answer := self.receive(), list):
            pass  # outcomes composed ahead of a stop: they stay queued
        return int(answer)

    def close(self) -> None:
        self.connection.close()
        self.process.join(10)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join()


def _composed_differently(sent: Subscriber, now: Subscriber) -> bool:
    """Whether a still-wanted message would differ for the subscriber as stored now."""
    wanted = now.status == "active" and not now.paused
    return wanted and (sent.topics, sent.theme, sent.name, sent.email) != (
        now.topics,
        now.theme,
        now.name,
        now.email,
    )


def _batches(
    items: Iterator[tuple[Delivery, Subscriber]], largest: int, *, first: int = 1
) -> Iterator[list[tuple[Delivery, Subscriber]]]:
    """Batches of ``first``, then twice as many each time, up to ``largest`` items:
    the first message goes out as soon as the child has warmed up one theme."""
    size = first
    batch: list[tuple[Delivery, Subscriber]] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
            size = min(2 * size, largest)
    if batch:
        yield batch
