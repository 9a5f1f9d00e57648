"""The sender threads: a pool of mail server connections, fed from a bounded queue.

Each sender hands a message to the relay only after its gates (``gates``: the
reader's last word and the relay's limits), and records the outcome in the
database before that connection's next message can be accepted, so a kill at any
moment followed by a rerun delivers every remaining reader exactly once.
"""

from __future__ import annotations

import itertools
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date

from digest.deliver.context import SendContext
from digest.deliver.gates import LastWord, Quota, composed_differently
from digest.deliver.transports import (
    CannotConnect,
    Deferred,
    Envelope,
    MessageRefused,
    OutcomeUnknown,
    PermanentFailure,
    RefusedAtConnect,
    SessionRefused,
    TemporaryFailure,
    Transport,
)
from digest.errors import StorageError
from digest.inbound import names_the_mailbox, status_of
from digest.models import Delivery, Subscriber
from digest.plan import Send
from digest.subscriptions import why_not_mailed


@dataclass(frozen=True)
class Outgoing:
    """A composed message on its way to the relay, with what it was composed for."""

    delivery: Delivery
    intent: Send
    envelope: Envelope
    message: bytes
    #: For an email of several editions, the day its reader's next period begins.
    period_day: date | None = None

    @property
    def subscriber(self) -> Subscriber:
        return self.intent.reader


_SWITCH_INTERVAL = 0.0002
#: The connections the pool opens first; how many times as many it opens when the last
#: growth paid; how much more a second it must then send to grow again; the shortest
#: time a measure takes.
POOL_FIRST = 1
POOL_GROWTH = 4
POOL_GAIN = 1.15
POOL_WINDOW_SECONDS = 0.5

#: Tries to record a message the server accepted (about 8 s of waits in all).
_RECORD_TRIES = 6


class Senders:
    """A pool of sender threads, one per SMTP connection, fed from a bounded queue.

    The main thread brings the next messages (composed here or in the child
    process) while the senders wait on the mail server, so composing costs
    no time at the server's pace.  Each sender records a delivery before it
    sends its next message.  The pool opens connections while they pay (see
    ``_size_pool``), up to one per transport it was given.
    """

    def __init__(self, context: SendContext, *, guard: Callable[[], None]) -> None:
        self.store = context.store
        #: Raises ``LostOwnership`` when a message may no longer go out.
        self.guard = guard
        #: Whether a stop was asked for (SIGTERM): honoured after the message in flight.
        self.should_stop = context.should_stop
        self.last_word = LastWord(context.store)
        #: The reader of the message each sender took ahead of its turn (by thread).
        self.held: dict[int, Subscriber] = {}
        #: Deliveries whose reader changed what their message says: composed again.
        self.recompose: list[tuple[Delivery, Subscriber]] = []
        #: Where bounces go (a refusal at sending is a bounce too).
        self.inbound = context.composer.settings.inbound
        self.policy = context.delivery
        self.clock = context.clock
        self.sleep = context.sleep
        self.report = context.report
        self.lock = threading.Lock()
        self.quota = Quota(context)
        self.consecutive_failures = 0
        #: Recipients refused before any message of this run was accepted: held back,
        #: since many in a row mean the server refuses us, not them.
        self.refused_first: list[tuple[Outgoing, str]] = []
        self.accepted_any = False
        #: Messages refused in a row at the end of DATA, naming no recipient.
        self.messages_refused = 0
        #: Messages a server answered 4xx (greylisting): tried again once all the others
        #: have been, after one wait for all of them; how often each was tried.
        self.later: list[Outgoing] = []
        self.tries: dict[int, int] = {}
        #: Set to make every sender stop after its message in flight.
        self.halt = threading.Event()
        #: An error no retry can fix (bad login, TLS refused), re-raised by ``finish``.
        self.error: BaseException | None = None
        transports = context.transports
        self.queue: queue.Queue[Outgoing | None] = queue.Queue(maxsize=32 * len(transports))
        # A sender woken by the server's reply must not wait out the composing
        # thread's 5 ms GIL slice: while the senders run, threads switch often.
        # (N=10,000, one connection, three alternating pairs: 0.785/0.898/0.943
        # of the ceiling with it, 0.797/0.807/0.860 without.)
        self.switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(_SWITCH_INTERVAL)
        self._open_pool(transports)

    def _open_pool(self, transports: Sequence[Transport]) -> None:
        """One connection first, then four times as many each time the messages a second
        rose enough, up to SMTP_CONNECTIONS (a ceiling, not a number to guess); a
        connection the server refuses lowers the ceiling to what is open."""
        self.spare = list(transports)
        self.threads: list[threading.Thread] = []
        self.sized = threading.Event()
        #: The pool's first connection: its failures are the run's; the others' are limits.
        self.first: threading.Thread | None = None
        self._grow(POOL_FIRST)
        if self.spare:
            threading.Thread(target=self._size_pool, name="pool", daemon=True).start()

    def _grow(self, more: int) -> None:
        """Open ``more`` connections (each a sender thread), as the ceiling allows."""
        with self.lock:
            for _ in range(more):
                if not self.spare or self.halt.is_set():
                    return
                thread = threading.Thread(
                    target=self._run,
                    args=(self.spare.pop(0),),
                    name=f"sender-{len(self.threads)}",
                    daemon=True,
                )
                self.threads.append(thread)
                self.first = self.first or thread
                thread.start()

    def _size_pool(self) -> None:
        """Open ``POOL_GROWTH`` times the connections while that raises the messages sent
        a second by ``POOL_GAIN`` and work waits for them (composing keeps ahead)."""
        best = 0.0
        while self.spare:
            sent, started = self.report.sent, time.perf_counter()
            if self.sized.wait(self._window()) or self.halt.is_set():
                return
            rate = (self.report.sent - sent) / (time.perf_counter() - started)
            if not rate or self.queue.empty():
                continue  # nothing sent yet, or composing is what limits now: measure again
            if rate < best * POOL_GAIN:
                return  # the last growth did not pay: the pool keeps its size
            best = rate
            self._grow(POOL_GROWTH * len(self.threads) - len(self.threads))

    def _window(self) -> float:
        """How long to count messages for one measure: many messages' worth of time."""
        sent = max(1, self.report.sent)
        per_message = self.report.seconds.get("send", 0.0) / sent
        return max(POOL_WINDOW_SECONDS, 10 * per_message)

    def put(self, item: Outgoing) -> bool:
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
        self.sized.set()  # the pool's size is what it is
        if drop_queued:
            self.halt.set()
        try:
            self._try_later_again()
            with self.lock:
                self.spare.clear()
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
        # The message this sender takes next, taken from the queue before this one goes,
        # so that a pipelining server hears its transaction begin right behind this one's
        # end: one round trip a message.  Its last look still comes at its own turn.
        ahead: list[Outgoing | None] = []
        try:
            while True:
                item = ahead.pop() if ahead else self.queue.get()
                try:
                    if item is None:
                        return
                    if self.halt.is_set():
                        continue
                    if self.should_stop():
                        self.report.interrupted = True
                        self.halt.set()
                        continue
                    ahead = self._next_at_hand()
                    then = None
                    if ahead and ahead[0] is not None:
                        then = ahead[0].envelope
                        self.held[threading.get_ident()] = ahead[0].subscriber
                    else:
                        self.held.pop(threading.get_ident(), None)
                    self._deliver(transport, item, then)
                except (RefusedAtConnect, CannotConnect) as e:
                    if threading.current_thread() is self.first:
                        self.error = self.error or e
                        self.halt.set()
                        continue
                    # A connection the pool added, refused: the server's limit is what is
                    # open.  What this sender held goes to the others, and it stops.
                    self._retire(item, ahead)
                    return
                except BaseException as e:  # noqa: BLE001 - handed to the main thread
                    self.error = self.error or e
                    self.halt.set()
                finally:
                    self.queue.task_done()
        finally:
            self.store.close_thread_connection()  # a worker's next run has threads of its own

    def _retire(self, item: Outgoing | None, ahead: list[Outgoing | None]) -> None:
        """Hand a refused connection's messages back to the queue, and open no more."""
        with self.lock:
            self.spare.clear()
            self.held.pop(threading.get_ident(), None)
        for held in [item, *ahead]:
            if held is not None:
                self.queue.put(held)
                if held is not item:
                    self.queue.task_done()  # taken ahead: counted once, when it goes again

    def _next_at_hand(self) -> list[Outgoing | None]:
        """The next message in the queue, if one is there already (never waited for)."""
        try:
            return [self.queue.get_nowait()]
        except queue.Empty:
            return []

    def _deliver(self, transport: Transport, item: Outgoing, then: Envelope | None) -> None:
        """Send one message, retrying temporary failures, and record how it went
        (``then``: the envelope of this sender's next message, if known)."""
        policy, report = self.policy, self.report
        reason = ""
        for attempt in range(policy.retries):
            if not self._may_go(item):
                return
            started = time.perf_counter()
            try:
                reply = transport.send(item.envelope, item.message, then=then)
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
                if self._down(e):
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
        report.defer(reason)

    def _down(self, error: TemporaryFailure) -> bool:
        """Count a temporary failure; True (and the send stops) once so many came in a
        row that the server seems down.  A connection the pool added that cannot be
        made is the server's limit, not a failure: raised for the sender to retire."""
        if isinstance(error, CannotConnect) and threading.current_thread() is not self.first:
            raise error
        reason = str(error)
        with self.lock:
            self.consecutive_failures += 1
            failures = self.consecutive_failures
        if failures < self.policy.max_consecutive_failures:
            return False
        self.report.relay_down = True
        self.report.stop(
            f"stopped after {failures} temporary failures in a row "
            f"(the mail server seems down): {reason}"
        )
        self.halt.set()
        return True

    def _may_go(self, item: Outgoing) -> bool:
        """Whether the message goes now: the relay's limit lets it (else it is held),
        the claim is surely ours, and the reader still wants it as it is."""
        held = self.quota.held()
        if held is not None:
            self._held(item, held)
            return False
        self.guard()  # only while the claim (and the run lock) are surely ours
        return self._as_the_reader_wants(item)

    def _held(self, item: Outgoing, reason: str) -> None:
        """A relay's limit is spent for longer than a run waits: this message and the
        rest stay queued, and the run says until when."""
        self.store.mark_deferred(item.delivery.id, reason=reason, now=self.clock())
        self.report.defer(reason)
        self.report.stop(reason)
        self.halt.set()

    def _as_the_reader_wants(self, item: Outgoing) -> bool:
        """Whether the message goes as it is: a reader who left or paused since it was
        composed is skipped, and one who changed what it says gets it composed again."""
        now = self.last_word.now(item.subscriber, self._waiting)
        if now is item.subscriber:
            return True
        reason = why_not_mailed(now)
        if reason is not None:
            self.store.mark_skipped(item.delivery.id, reason=reason, now=self.clock())
            self.report.count("skipped")
            return False
        if composed_differently(item.subscriber, now):
            with self.lock:
                self.recompose.append((item.delivery, now))
            return False
        return True

    def _waiting(self) -> list[Subscriber]:
        """The readers of the messages waiting to go: those queued and those the senders
        have taken ahead of their turn."""
        with self.queue.mutex:
            queued = [item.subscriber for item in self.queue.queue if item is not None]
        return queued + list(self.held.values())

    def recomposed(self) -> Iterator[list[tuple[Delivery, Subscriber]]]:
        """Once everything handed out has been tried, the deliveries to compose again,
        until there are none (they are decided and composed as the rest were)."""
        while not self.halt.is_set():
            self.queue.join()
            with self.lock:
                again, self.recompose = self.recompose, []
            if not again:
                return
            yield again

    def _deferred(self, item: Outgoing, reason: str) -> None:
        """A 4xx answer about this message: the server is up; try it again later in the
        run (``_try_later_again``), or in the next run once the tries are spent."""
        with self.lock:
            self.consecutive_failures = 0
            tries = self.tries[item.delivery.id] = self.tries.get(item.delivery.id, 0) + 1
            if tries < self.policy.retries:
                self.later.append(item)
                return
        self.store.mark_deferred(item.delivery.id, reason=reason, now=self.clock())
        self.report.defer(reason)

    def _message_refused(self, item: Outgoing, reason: str) -> None:
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

    def _refused(self, item: Outgoing, reason: str) -> None:
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

    def _bounced(self, item: Outgoing, reason: str) -> None:
        """A recipient refused for good at sending: failed, and a hard bounce for them."""
        from digest.inbound import refused_at_send

        # The bounce first: a kill between the two leaves the reader suppressed and the
        # delivery queued (the rerun skips it), never a failure the bounce forgot.
        refused_at_send(self.store, self.inbound, item.delivery, reason, now=self.clock())
        self._failed(item, reason)

    def _failed(self, item: Outgoing, reason: str) -> None:
        self.store.mark_failed(item.delivery.id, reason=reason, now=self.clock())
        self.report.fail(item.subscriber.email, reason)

    def _unknown(self, item: Outgoing, reason: str) -> None:
        with self.lock:
            self.report.unknown.add(item.delivery.id)
        given_up = self.store.mark_unknown(
            item.delivery.id,
            reason=reason,
            max_attempts=self.policy.max_attempts,
            now=self.clock(),
        )
        if given_up:
            self.report.fail(item.subscriber.email, reason)
        else:
            self.report.defer(reason)
        self._down(OutcomeUnknown(reason))

    def _record_sent(self, item: Outgoing, reply: str) -> None:
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
        self.report.count("sent")
        with self.lock:
            first = not self.accepted_any
            self.accepted_any = True
            self.messages_refused = 0
        if first:
            self._settle_refused()
