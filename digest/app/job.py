"""The job as a recipe: each function reads top-down through the stages.

``run`` is the main job: ingest, plan the edition, deliver.  The clock, the
transport and ``sleep`` are passed in, so nothing here reads the time or
opens a socket by itself, and tests drive every path.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from threading import Event
from time import perf_counter
from time import sleep as _sleep

from digest import learning
from digest.app.reading import Reading, ingest
from digest.config import Settings, SmtpSettings
from digest.deliver import (
    Clock,
    Composer,
    ComposeSettings,
    DeliveryReport,
    RehearsalTransport,
    SendContext,
    Sleep,
    Taste,
    Transport,
    TransportError,
    send_edition,
    tastes_of,
    transport_for,
)
from digest.locking import DEFAULT_TTL, RunLock, describe_holder, is_dead_here
from digest.logs import log_event
from digest.models import (
    Edition,
    IngestReport,
    Subscriber,
)
from digest.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunReport:
    """The outcome of ``digest run``: what was ingested, planned and delivered."""

    day: date
    ingest: IngestReport | None
    edition: Edition | None
    delivery: DeliveryReport
    still_queued: int = 0
    dry_run: bool = False
    #: Claims other senders still hold when this one ended: (holder, until, how many).
    held_elsewhere: tuple[tuple[str, datetime, int], ...] = ()
    #: With several newsletters, each one's part of the run, by slug.
    newsletters: tuple[tuple[str, RunReport], ...] = ()

    @property
    def ok(self) -> bool:
        """Nothing failed and nothing that was due is left queued."""
        ingest_ok = self.ingest is None or self.ingest.ok
        left = self.still_queued - self.delivery.waiting
        return ingest_ok and not self.delivery.failed and (left <= 0 or self.delivery.interrupted)

    @property
    def outcome(self) -> str:
        if self.delivery.interrupted:
            return "interrupted"
        return "ok" if self.ok else "partial"

    def summary(self) -> str:
        """The run in one line, as ``digest run`` ends and ``digest status`` recalls it."""
        delivery = self.delivery
        gathered = (
            f", {delivery.folded} gathered into later emails (weekly or threshold readers)"
            if delivery.folded
            else ""
        )
        if len(self.newsletters) > 1:
            return "; ".join(f"{slug}: {part.summary()}" for slug, part in self.newsletters)
        if self.dry_run:
            return (
                f"would send {delivery.sent}, fail {delivery.failed}, skip {delivery.skipped}"
                + (f" ({delivery.waiting} waiting for local time)" if delivery.waiting else "")
                + gathered
            )
        return (
            f"sent {delivery.sent}, failed {delivery.failed}, skipped {delivery.skipped}, "
            f"still queued {self.still_queued}"
            + "".join(
                f" ({n} held by {describe_holder(h)} until {u:%H:%M:%S})"
                for h, u, n in self.held_elsewhere
            )
            + (f" ({delivery.waiting} waiting for local time)" if delivery.waiting else "")
            + gathered
            + (f", expired {delivery.expired}" if delivery.expired else "")
            + "".join(f"; relay {' '.join(note.split())[:200]}" for note in delivery.failovers)
            + self._why_queued()
        )

    def _why_queued(self) -> str:
        """Why deliveries stay queued, when the run knows: the first reason."""
        delivery, waiting = self.delivery, self.delivery.waiting
        why = delivery.stopped or delivery.deferred_because
        if self.still_queued <= waiting or why is None:
            return ""
        return f"; why still queued: {' '.join(why.split())[:200]}"


#: On PostgreSQL a run waits this long for another one to finish planning, then sends too.
PLANNING_WAIT_SECONDS = 300.0


@dataclass(frozen=True)
class Planned:
    """What a run planned, told before it sends: the edition and how many are queued."""

    day: date
    ingest: IngestReport | None
    edition: Edition | None
    queued: int


@dataclass(frozen=True)
class Runtime:
    """What a run is given from outside: the clock, the mail server, how to wait, a
    stop (SIGTERM), and whom to tell of its progress."""

    now: Clock
    transport: Transport
    sleep: Sleep = _sleep
    #: Set to end the run after the message in flight, leaving the rest queued.
    stop: Event | None = None
    on_planned: Callable[[Planned], None] | None = None
    on_delivery: Callable[[], None] | None = None
    #: How the run opens more connections: the pool's, a fallback relay's, and those
    #: of a newsletter with its own relay.
    connect: Callable[[Settings, SmtpSettings | None], Transport] = transport_for


@dataclass(frozen=True)
class RunOptions:
    """What to run: the edition of ``day`` (None: today), whether to read the sources
    and build the edition (off: send what is queued), and how long to wait for
    another run's lock."""

    day: date | None = None
    ingest_sources: bool = True
    plan: bool = True
    lock_wait: float = 0.0


@dataclass(frozen=True)
class _Run:
    """What travels with one run through its phases."""

    store: Store
    settings: Settings
    runtime: Runtime
    #: Who this run is, on claims and the run lock.
    holder: str

    @property
    def now(self) -> Clock:
        return self.runtime.now


@dataclass
class _Plan:
    day: date
    ingested: IngestReport | None
    edition: Edition | None
    pending: list[Edition]
    report: DeliveryReport
    told: Planned


def run(
    store: Store, settings: Settings, runtime: Runtime, options: RunOptions = RunOptions()
) -> RunReport:
    """The main job: ingest, build today's edition, deliver every queued digest.

    Safe to rerun at any moment: the edition and its deliveries are created
    once, and only deliveries still queued are sent.  Ingesting and planning
    happen under the run lock, one process at a time (``RunInProgress`` if
    another has it after ``options.lock_wait`` seconds).  On SQLite the sending does
    too (one sender); on PostgreSQL several processes then send the queue
    together, each claiming batches, and a run waits for another's planning
    instead of giving up.  Setting ``runtime.stop`` ends the run after the
    message in flight, leaving the rest queued.  With ``options.plan`` off, no
    source is read and no edition is built: queued deliveries are sent.
    """
    exclusive = store.dialect != "postgresql"
    wait = options.lock_wait if exclusive else max(options.lock_wait, PLANNING_WAIT_SECONDS)
    now = runtime.now
    with ExitStack() as held:
        lease = timedelta(seconds=settings.delivery.lease_seconds)
        ttl = min(DEFAULT_TTL, lease)
        lock = held.enter_context(
            RunLock(store, clock=now, wait_seconds=wait, sleep=runtime.sleep, ttl=ttl)
        )
        close_dead_runs(store, now=now())
        run_id = store.start_run(lock.holder, now=now())
        this = _Run(store, settings, runtime, lock.holder)
        try:
            plans = _plan_editions(this, options)
            if runtime.on_planned:
                first = plans[0][1].told
                queued = sum(planned.told.queued for _, planned in plans)
                runtime.on_planned(replace(first, queued=queued))
            if not exclusive:
                held.close()  # planning done: on PostgreSQL the sending is shared
            parts: list[tuple[str, RunReport]] = []
            sole = lock if exclusive else None
            for part, planned in plans:
                planned.report.on_delivery = runtime.on_delivery
                parts.append((part.settings.newsletter, _send(part, planned, lock=sole)))
            report = _together(parts)
        except BaseException as e:
            store.finish_run(run_id, outcome="error", summary=f"{type(e).__name__}: {e}", now=now())
            raise
        store.finish_run(run_id, outcome=report.outcome, summary=report.summary(), now=now())
    return report


def close_dead_runs(store: Store, *, now: datetime) -> None:
    """A run whose process on this machine is gone (killed, crashed) is recorded as failed,
    so ``status`` never calls it ok or running."""
    for run_id, holder in store.running_runs():
        if is_dead_here(holder):
            store.finish_run(
                run_id,
                outcome="failed",
                now=now,
                summary=(
                    "the process ended before the run finished (killed or crashed); what it "
                    "had not sent stayed queued"
                ),
            )


def _plan_editions(this: _Run, options: RunOptions) -> list[tuple[_Run, _Plan]]:
    """Read the sources and refit readers' models once, then plan each newsletter's
    edition: the run of each, with its own settings and readers, and its plan."""
    store, settings, started = this.store, this.settings, this.now()
    plan = options.plan
    ingest_sources = options.ingest_sources and plan
    day = options.day or started.astimezone(settings.zone).date()
    ingested = (
        ingest(
            store,
            settings.sources,
            Reading(
                now=started,
                zone=settings.zone,
                limits=settings.limits,
                fetch=settings.fetch,
                stop=this.runtime.stop,
            ),
        )
        if ingest_sources
        else None
    )
    if plan:  # readers' models are refitted before their papers are chosen
        learned = learning.refresh(store, now=started)
        if learned.missing:
            log.warning(learned.missing)
        if learned.fitted:
            log_event(
                log,
                "learning_refreshed",
                fitted=learned.fitted,
                space=learned.space_version,
                new_space=learned.new_space,
            )
    plans: list[tuple[_Run, _Plan]] = []
    for newsletter in settings.newsletters_sent():
        own = settings.for_newsletter(newsletter)
        runtime = this.runtime
        if own.smtp != settings.smtp:  # its own relay, not the one the run was given
            runtime = replace(runtime, transport=runtime.connect(own, None))
        part = replace(
            this,
            store=store.scoped(newsletter.slug, newsletter.sources),
            settings=own,
            runtime=runtime,
        )
        plans.append((part, _plan_edition(part, day, plan, ingested if not plans else None)))
    return plans


def _plan_edition(this: _Run, day: date, plan: bool, ingested: IngestReport | None) -> _Plan:
    """Plan one newsletter's edition of ``day`` (or, ``plan`` off, find it)."""
    store, settings, started = this.store, this.settings, this.now()
    planning = perf_counter()
    edition = (
        store.create_edition(day, now=started, allow_empty=settings.delivery.send_empty)
        if plan
        else store.get_edition(day)
    )
    report = DeliveryReport()
    report.add_time("plan", perf_counter() - planning)
    report.expired = store.expire_queued(
        created_before=started - timedelta(hours=settings.delivery.expire_hours),
        reason=f"expired: not delivered within {settings.delivery.expire_hours:g} hours",
        now=started,
    )
    pending = store.editions_with_queued()
    told = Planned(day, ingested, edition, store.count_queued([e.id for e in pending]))
    return _Plan(day, ingested, edition, pending, report, told)


def _together(parts: list[tuple[str, RunReport]]) -> RunReport:
    """The run's report: its one newsletter's, or every newsletter's together."""
    if len(parts) == 1:
        return parts[0][1]
    reports = [report for _, report in parts]
    first = reports[0]
    return RunReport(
        first.day,
        first.ingest,
        first.edition,
        DeliveryReport.together([r.delivery for r in reports]),
        sum(r.still_queued for r in reports),
        held_elsewhere=tuple(held for r in reports for held in r.held_elsewhere),
        newsletters=tuple(parts),
    )


def _send(this: _Run, planned: _Plan, *, lock: RunLock | None) -> RunReport:
    store, settings, report = this.store, this.settings, planned.report
    transport = this.runtime.transport
    edition_ids = [e.id for e in planned.pending]
    held: list[tuple[str, datetime, int]] = []
    shared = _shared_context(this, report, lock)
    relays = settings.smtp.relays()
    for number, relay in enumerate(relays):
        with ExitStack() as opened:
            connect = this.runtime.connect
            pool = [transport if number == 0 else connect(settings, relay)]
            pool += [connect(settings, relay) for _ in range(relay.connections - 1)]
            context = replace(
                shared, transports=[opened.enter_context(t) for t in pool], relay=relay.where
            )

            def send_all(context: SendContext = context) -> None:
                for queued_edition in planned.pending:
                    send_edition(context, queued_edition)
                    if report.stopped or report.interrupted:
                        return

            why = _relay_failure(send_all, report, last=number + 1 == len(relays))
            if why is not None:
                report.fail_over(f"{relay.where} -> {relays[number + 1].where}: {why}")
                log_event(log, "relay_failed_over", relay=relay.where, reason=why)
                continue
            if lock is None:  # shared senders: what others hold is finished, or said
                held = _wait_for_other_senders(this, edition_ids, send_all, report)
            break
    still_queued = store.count_queued(edition_ids)
    _tell_sent(this, planned.pending)
    return RunReport(
        planned.day,
        planned.ingested,
        planned.edition,
        report,
        still_queued,
        held_elsewhere=tuple(held),
    )


def _tell_sent(this: _Run, editions: list[Edition]) -> None:
    """An edition with nothing left queued is sent: told once (``edition.sent``), whichever
    sender finished it."""
    store = this.store
    for edition in editions:
        if not store.count_queued([edition.id]):
            counts = store.delivery_counts(edition.id)
            told = {"newsletter": edition.newsletter, "day": edition.day.isoformat()}
            key = f"edition.sent:{edition.id}"
            store.emit_once("edition.sent", told | {"deliveries": counts}, key=key, now=this.now())


def _shared_context(this: _Run, report: DeliveryReport, lock: RunLock | None) -> SendContext:
    """What the sends through every relay of this run share (each has its own pool)."""
    stop = this.runtime.stop

    def should_stop() -> bool:
        if lock is not None:
            lock.keeper.check()  # LostOwnership: nothing more is sent
        return stop is not None and stop.is_set()

    return SendContext(
        this.store,
        composer_for(this.store, this.settings),
        this.settings.delivery,
        [],
        this.now,
        report,
        holder=this.holder,
        exclusive=lock is not None,
        sleep=this.runtime.sleep,
        should_stop=should_stop,
        keepers=[lock.keeper] if lock is not None else [],
    )


def _relay_failure(
    send_all: Callable[[], None], report: DeliveryReport, *, last: bool
) -> str | None:
    """Send through one relay; why to go on with the next (None: this one did its part).
    A refused session, login or TLS, or a relay that seems down, moves what is left to
    the next relay; the last relay's failure is the run's, as with one relay."""
    try:
        send_all()
    except TransportError as e:
        if last:
            raise
        return e.message
    if report.relay_down and not last:
        return report.stopped or "the relay seems down"
    return None


def _wait_for_other_senders(
    this: _Run, edition_ids: list[int], send_all: Callable[[], None], report: DeliveryReport
) -> list[tuple[str, datetime, int]]:
    """Once this sender found nothing more to claim: take over at once the claims of
    senders on this machine that are gone, wait for live ones to finish while they
    make progress (a lease without any ends the wait), send what they give up, and
    return what others still hold."""
    store, lease = this.store, this.settings.delivery.lease_seconds
    waiting = Event() if this.runtime.stop is None else this.runtime.stop
    deadline = perf_counter() + lease
    told, left = False, None
    while not (report.stopped or report.interrupted):
        held = store.claims_held(edition_ids, now=this.now(), besides=this.holder)
        dead = [h for h, _, _ in held if is_dead_here(h)]
        for gone in dead:
            store.release_claims(gone)
        if dead:
            send_all()
            continue
        count = sum(n for _, _, n in held)
        if left is None or count < left:  # they are getting on: give them another lease
            deadline, left = perf_counter() + lease, count
        if not held or perf_counter() >= deadline:
            return held
        if not told:
            told = True
            log_event(
                log,
                "waiting_for_other_senders",
                deliveries=sum(n for _, _, n in held),
                until=max(u for _, u, _ in held).isoformat(),
            )
        if waiting.wait(1.0):
            return held
        send_all()  # a claim that ran out (its sender died elsewhere) is taken here
    return []


def dry_run(store: Store, settings: Settings, *, now: Clock, day: date | None = None) -> RunReport:
    """Report what ``run`` would do by doing it, on a throwaway copy of the database,
    with a mail server that takes every message and sends none."""
    rehearsal = replace(
        settings,
        smtp=replace(settings.smtp, connections=1),
        delivery=replace(settings.delivery, rate_limit=0, quotas=()),
    )
    with store.snapshot() as copy:
        runtime = Runtime(now, RehearsalTransport(), connect=lambda *_: RehearsalTransport())
        report = run(copy, rehearsal, runtime, RunOptions(day=day))
    return replace(report, dry_run=True)


def composer_for(store: Store, settings: Settings) -> Composer:
    """The composer as run makes it: with the readers' feature space, if there is one."""
    return Composer(
        ComposeSettings.of(settings), store.installation_id, space=learning.current_space(store)
    )


def taste_of(store: Store, composer: Composer, reader: Subscriber | None) -> Taste | None:
    """A reader's taste (their models over the composer's feature space, the authors
    they follow), or None."""
    if reader is None:
        return None
    version = composer.space.version if composer.space else None
    return tastes_of(store, [reader.id], version).get(reader.id)


#: ``ingest`` and its ``Reading`` are run's first phase, and the CLI's ``ingest`` command.
__all__ = ["Planned", "Reading", "RunOptions", "RunReport", "Runtime", "dry_run", "ingest", "run"]
