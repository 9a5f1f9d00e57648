"""The job as a recipe: each function reads top-down through the stages.

``run`` is the main job: ingest, plan the edition, deliver.  The clock, the
transport and ``sleep`` are passed in, so nothing here reads the time or
opens a socket by itself, and tests drive every path.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from threading import Event
from time import perf_counter
from time import sleep as _sleep
from zoneinfo import ZoneInfo

from digest import learning
from digest.address import Address
from digest.cadence import weekly_due
from digest.config import Settings, SourceSpec
from digest.deliver.compose import (
    Composer,
    ComposeSettings,
    make_renderer,
    personal_links,
)
from digest.deliver.report import Clock, DeliveryReport, Sleep
from digest.deliver.sender import SendContext, send_edition
from digest.deliver.transports import RehearsalTransport, Transport, transport_for
from digest.errors import DigestError, SourceError, StorageError
from digest.ingest import FetchPolicy, SourceLimits, Validators, parse_source, retrieve
from digest.ingest.dedupe import dedupe
from digest.locking import DEFAULT_TTL, RUN_LOCK, RunLock, describe_holder, is_dead_here
from digest.logs import log_event
from digest.models import (
    Delivery,
    Edition,
    Entry,
    Feedback,
    IngestReport,
    SourceReport,
    Subscriber,
    Topic,
)
from digest.plan import (
    Decision,
    Send,
    cadence_of_text,
    decide_with,
    next_email_day,
    reason_of,
)
from digest.render import RenderedEmail
from digest.schedule import next_run
from digest.select.index import EditionIndex, Match, Selection, blended
from digest.store import RunRecord, SourceCheck, Store, SubscriberEvent
from digest.subscriptions import has_left
from digest.text import printable

ProgressCallback = Callable[[SourceReport], None]

log = logging.getLogger(__name__)


def ingest(
    store: Store,
    sources: Sequence[SourceSpec],
    *,
    now: datetime,
    zone: ZoneInfo,
    limits: SourceLimits,
    fetch: FetchPolicy | None = None,
    edition_date: date | None = None,
    on_source_done: ProgressCallback | None = None,
    dry_run: bool = False,
    fresh: list[Entry] | None = None,
    stop: Event | None = None,
) -> IngestReport:
    """Read each source and store its new entries; one failing source never stops the others.

    Each source is stored in its own transaction, so a source that fails
    leaves the database exactly as it was for that source.  A source whose
    server answers "not modified" is reported unchanged and parsed not at
    all.  With ``dry_run`` nothing is stored; the entries that would be new
    go to ``fresh``.  Setting ``stop`` ends a fetch in progress.
    """
    today = now.astimezone(zone).date()
    reports = []
    for spec in sources:
        if stop is not None and stop.is_set():
            break
        report = _ingest_one(
            store,
            spec,
            now=now,
            today=today,
            limits=limits,
            fetch=fetch or FetchPolicy(),
            edition_date=edition_date,
            dry_run=dry_run,
            fresh=fresh,
            stop=stop,
        )
        reports.append(report)
        if not dry_run:
            store.record_source_check(_check_of(report, now))
        if on_source_done:
            on_source_done(report)
    return IngestReport(started=now, sources=tuple(reports))


def _check_of(report: SourceReport, now: datetime) -> SourceCheck:
    outcome = "failed" if not report.ok else "unchanged" if report.unchanged else "ok"
    detail = report.error or (f"{len(report.warnings)} warnings" if report.warnings else None)
    return SourceCheck(report.source, now, outcome, detail, report.read, report.new)


def _ingest_one(
    store: Store,
    spec: SourceSpec,
    *,
    now: datetime,
    today: date,
    limits: SourceLimits,
    fetch: FetchPolicy,
    edition_date: date | None,
    dry_run: bool,
    fresh: list[Entry] | None,
    stop: Event | None,
) -> SourceReport:
    known = Validators(*store.source_validators(spec.name))
    try:
        retrieved = retrieve(
            spec.location, policy=fetch, name=spec.name, validators=known, stop=stop
        )
        if retrieved.data is None:
            return SourceReport(source=spec.name, unchanged=True)
        parsed = parse_source(
            retrieved.data,
            name=spec.name,
            today=today,
            edition_date=edition_date,
            limits=limits,
            kind=spec.format,
        )
        added = store.add_entries(
            parsed.entries, source=spec.name, now=now, decide=dedupe, dry_run=dry_run
        )
        if not dry_run and retrieved.validators != known:
            # Only once the entries are stored: a crash before this fetches them again.
            store.save_source_validators(
                spec.name,
                etag=retrieved.validators.etag,
                last_modified=retrieved.validators.last_modified,
                now=now,
            )
    except SourceError as e:
        return SourceReport(source=spec.name, error=e.reason)
    except StorageError as e:
        if e.transient:
            raise  # the database is down: no source can be stored
        return SourceReport(source=spec.name, error=f"not stored: {printable(e.reason)}")
    if fresh is not None:
        fresh.extend(added.fresh)
    return SourceReport(
        source=spec.name,
        format=parsed.format,
        read=len(parsed.entries),
        new=added.new,
        seen=added.seen,
        skipped=parsed.skipped,
        warnings=parsed.warnings,
    )


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
        )


#: On PostgreSQL a run waits this long for another one to finish planning, then sends too.
PLANNING_WAIT_SECONDS = 300.0


@dataclass(frozen=True)
class Planned:
    """What a run planned, told before it sends: the edition and how many are queued."""

    day: date
    ingest: IngestReport | None
    edition: Edition | None
    queued: int


@dataclass
class _Plan:
    day: date
    ingested: IngestReport | None
    edition: Edition | None
    pending: list[Edition]
    report: DeliveryReport


def run(
    store: Store,
    settings: Settings,
    *,
    now: Clock,
    transport: Transport,
    day: date | None = None,
    ingest_sources: bool = True,
    plan: bool = True,
    sleep: Sleep = _sleep,
    stop: Event | None = None,
    lock_wait: float = 0.0,
    on_planned: Callable[[Planned], None] | None = None,
    on_delivery: Callable[[], None] | None = None,
) -> RunReport:
    """The main job: ingest, build today's edition, deliver every queued digest.

    Safe to rerun at any moment: the edition and its deliveries are created
    once, and only deliveries still queued are sent.  Ingesting and planning
    happen under the run lock, one process at a time (``RunInProgress`` if
    another has it after ``lock_wait`` seconds).  On SQLite the sending does
    too (one sender); on PostgreSQL several processes then send the queue
    together, each claiming batches, and a run waits for another's planning
    instead of giving up.  Setting ``stop`` ends the run after the message in
    flight, leaving the rest queued.  With ``plan`` off, no source is read and
    no edition is built: queued deliveries are sent.
    """
    exclusive = store.dialect != "postgresql"
    wait = lock_wait if exclusive else max(lock_wait, PLANNING_WAIT_SECONDS)
    with ExitStack() as held:
        lease = timedelta(seconds=settings.delivery.lease_seconds)
        lock = held.enter_context(
            RunLock(store, clock=now, wait_seconds=wait, sleep=sleep, ttl=min(DEFAULT_TTL, lease))
        )
        _close_dead_runs(store, now=now())
        run_id = store.start_run(lock.holder, now=now())
        try:
            planned = _plan_edition(
                store,
                settings,
                now=now,
                day=day,
                ingest_sources=ingest_sources and plan,
                plan=plan,
                on_planned=on_planned,
                stop=stop,
            )
            if not exclusive:
                held.close()  # planning done: on PostgreSQL the sending is shared
            report = _send(
                store,
                settings,
                planned,
                lock=lock if exclusive else None,
                holder=lock.holder,
                now=now,
                transport=transport,
                sleep=sleep,
                stop=stop,
                on_delivery=on_delivery,
            )
        except BaseException as e:
            store.finish_run(run_id, outcome="error", summary=f"{type(e).__name__}: {e}", now=now())
            raise
        store.finish_run(run_id, outcome=report.outcome, summary=report.summary(), now=now())
    return report


def _close_dead_runs(store: Store, *, now: datetime) -> None:
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


def _plan_edition(
    store: Store,
    settings: Settings,
    *,
    now: Clock,
    day: date | None,
    ingest_sources: bool,
    plan: bool,
    on_planned: Callable[[Planned], None] | None,
    stop: Event | None,
) -> _Plan:
    started = now()
    day = day or started.astimezone(settings.zone).date()
    ingested = (
        ingest(
            store,
            settings.sources,
            now=started,
            zone=settings.zone,
            limits=settings.limits,
            fetch=settings.fetch,
            stop=stop,
        )
        if ingest_sources
        else None
    )
    planning = perf_counter()
    if plan:  # readers' models are refitted before their papers are chosen
        learned = learning.refresh(store, now=started)
        if learned.fitted:
            log_event(
                log,
                "learning_refreshed",
                fitted=learned.fitted,
                space=learned.space_version,
                new_space=learned.new_space,
            )
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
    if on_planned:
        on_planned(Planned(day, ingested, edition, store.count_queued([e.id for e in pending])))
    return _Plan(day, ingested, edition, pending, report)


def _send(
    store: Store,
    settings: Settings,
    planned: _Plan,
    *,
    lock: RunLock | None,
    holder: str,
    now: Clock,
    transport: Transport,
    sleep: Sleep,
    stop: Event | None,
    on_delivery: Callable[[], None] | None,
) -> RunReport:
    report = planned.report
    report.on_delivery = on_delivery

    def should_stop() -> bool:
        if lock is not None:
            lock.keeper.check()  # LostOwnership: nothing more is sent
        return stop is not None and stop.is_set()

    composer = _composer(store, settings)
    extra = [transport_for(settings) for _ in range(settings.smtp.connections - 1)]
    edition_ids = [e.id for e in planned.pending]
    held: list[tuple[str, datetime, int]] = []
    with ExitStack() as opened:
        transports = [opened.enter_context(t) for t in [transport, *extra]]

        context = SendContext(
            store,
            composer,
            settings.delivery,
            transports,
            now,
            report,
            holder=holder,
            exclusive=lock is not None,
            sleep=sleep,
            should_stop=should_stop,
            keepers=[lock.keeper] if lock is not None else [],
        )

        def send_all() -> None:
            for queued_edition in planned.pending:
                send_edition(context, queued_edition)
                if report.stopped or report.interrupted:
                    return

        send_all()
        if lock is None:  # shared senders: what others hold is finished, or said
            held = _wait_for_other_senders(
                store, edition_ids, holder, settings, now, stop, send_all, report
            )
    still_queued = store.count_queued(edition_ids)
    return RunReport(
        planned.day,
        planned.ingested,
        planned.edition,
        report,
        still_queued,
        held_elsewhere=tuple(held),
    )


def _wait_for_other_senders(
    store: Store,
    edition_ids: list[int],
    holder: str,
    settings: Settings,
    now: Clock,
    stop: Event | None,
    send_all: Callable[[], None],
    report: DeliveryReport,
) -> list[tuple[str, datetime, int]]:
    """Once this sender found nothing more to claim: take over at once the claims of
    senders on this machine that are gone, wait for live ones to finish while they
    make progress (a lease without any ends the wait), send what they give up, and
    return what others still hold."""
    waiting = Event() if stop is None else stop
    deadline = perf_counter() + settings.delivery.lease_seconds
    told, left = False, None
    while not (report.stopped or report.interrupted):
        held = store.claims_held(edition_ids, now=now(), besides=holder)
        dead = [h for h, _, _ in held if is_dead_here(h)]
        for gone in dead:
            store.release_claims(gone)
        if dead:
            send_all()
            continue
        count = sum(n for _, _, n in held)
        if left is None or count < left:  # they are getting on: give them another lease
            deadline, left = perf_counter() + settings.delivery.lease_seconds, count
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
        delivery=replace(settings.delivery, rate_limit=0),
    )
    with store.snapshot() as copy:
        report = run(copy, rehearsal, now=now, transport=RehearsalTransport(), day=day)
    return replace(report, dry_run=True)


@dataclass(frozen=True)
class Preview:
    """What topics would get from an edition, and (for a subscriber) what the decider says."""

    day: date
    #: Whether that day's edition exists (if not, the papers waiting for the next one).
    published: bool
    available: int
    selection: Selection
    #: Whether the selection comes from topics (else it is the whole edition).
    personal: bool
    decision: Decision | None


def preview(
    store: Store,
    settings: Settings,
    *,
    day: date | None,
    topics: Sequence[Topic],
    now: datetime,
    subscriber: Subscriber | None = None,
    theme: str | None = None,
) -> Preview:
    """Select what ``topics`` would get from the edition of ``day`` (None: the latest)
    in ``theme``, and for a subscriber ask the decider what ``run`` would do at ``now``.

    Before that edition exists, it is the entries no edition has carried yet.
    """
    edition = store.get_edition(day) if day else next(iter(store.recent_editions(1)), None)
    entries = store.edition_entries(edition.id if edition else None)
    # As run composes it: a titles-only theme carries more papers, and a reader's
    # own model ranks their papers and recommends others.
    composer = _composer(store, settings)
    room = settings.max_entries * composer.renderer.capacity(theme or settings.theme)
    model = _model_of(store, composer, subscriber)
    with EditionIndex(entries) as index:

        def select(wanted: tuple[Topic, ...]) -> Selection:
            return index.select(wanted, max_entries=room, affinity=composer.affinity(index, model))

        selection = select(tuple(topics))
        planned = edition or Edition(0, day or now.astimezone(settings.zone).date(), now, 0)
        decision = None
        if subscriber is not None:
            decision = decide_with(planned, subscriber, now, settings.policy, select)
    return Preview(
        planned.day, edition is not None, len(entries), selection, bool(topics), decision
    )


def match(
    store: Store,
    settings: Settings,
    query: str,
    *,
    since: datetime,
    sources: Sequence[str] | None = None,
    subscriber: Subscriber | None = None,
) -> tuple[int, list[Match]]:
    """The stored papers a topic query selects, best first: by bm25, or for a reader with
    a model as their digest orders them, each with why their model wants it."""
    stored = store.list_entries(since=since, sources=sources)
    composer = _composer(store, settings)
    model = _model_of(store, composer, subscriber)
    with EditionIndex(stored) as index:
        found = list(index.search(query))
        affinity = composer.affinity(index, model) if model else None
        if affinity is None or model is None:
            return len(stored), found
        found = blended(found, affinity)
        why = composer.reasons(index, model, [m.entry.id for m in found])
    return len(stored), [replace(m, reason=why.get(m.entry.id, "")) for m in found]


def _composer(store: Store, settings: Settings) -> Composer:
    """The composer as run makes it: with the readers' feature space, if there is one."""
    return Composer(
        ComposeSettings.of(settings), store.installation_id, space=learning.current_space(store)
    )


def _model_of(store: Store, composer: Composer, reader: Subscriber | None) -> bytes | None:
    """A reader's model over the composer's feature space, or None."""
    if reader is None or composer.space is None:
        return None
    return store.models_of([reader.id], composer.space.version).get(reader.id)


class SendTestRefused(DigestError):
    """A test send that must not go: to someone who left, or with nothing to show."""


def send_test(
    store: Store,
    settings: Settings,
    transport: Transport,
    address: Address,
    *,
    as_reader: Subscriber | None,
    day: date | None,
    now: datetime,
) -> str:
    """Send ``address`` the digest ``as_reader`` would get (a reader without topics when
    None) from the edition of ``day`` (None: the latest), with "[test]" in the subject.

    Nothing is recorded as a delivery.  Its links are nobody's: a click on its
    unsubscribe link changes no reader.  Refused for a suppressed address.
    """
    known = store.get_subscriber(address.mailbox)  # by its key: every spelling is one
    if known is not None and has_left(known):
        raise SendTestRefused(
            f"{address} is {known.state}: digest mails them nothing, not even a test"
        )
    edition = store.get_edition(day) if day else next(iter(store.recent_editions(1)), None)
    entries = store.edition_entries(edition.id if edition else None)
    planned = edition or Edition(0, day or now.astimezone(settings.zone).date(), now, 0)
    reader = as_reader or Subscriber(id=0, email=address.mailbox, status="active")
    composer = _composer(store, settings)
    model = _model_of(store, composer, as_reader)
    stand_in = replace(reader, id=0, email=address.mailbox, status="active", paused=False)
    with EditionIndex(entries) as index:
        selection = composer.select(stand_in, index, model)
    decision = decide_with(planned, stand_in, now, settings.policy, lambda _: selection)
    if not isinstance(decision, Send):
        reason = reason_of(decision)
        raise SendTestRefused(f"{reader.email} would get nothing from {planned.day}: {reason}")
    rendered = composer.render(planned, stand_in, selection)
    rendered = replace(rendered, subject="[test] " + rendered.subject)
    factory = composer.factory
    envelope, message = factory.build(
        rendered,
        stand_in,
        composer.links(stand_in.id),
        message_id=factory.one_off_id("test"),
        sent_at=now,
        to=address.wire,
    )
    with transport:
        transport.send(envelope, message)
    return f"sent {address} a test of {planned.day} as {reader.email}: {rendered.shown} papers"


class ResendRefused(DigestError):
    """A resend that must not be queued: to someone who left or paused, of an edition
    that does not exist, or of a delivery still queued."""


def resend(store: Store, reader: Subscriber, day: date, *, now: datetime) -> Delivery:
    """Queue ``reader``'s copy of the edition of ``day`` again, on purpose; the next
    run (or ``digest send``) sends it as a new message with a Message-ID of its own.

    Refused for a reader who left (consent is theirs) or paused (they asked for
    quiet), and for a delivery still queued (its first message is still to come).
    """
    if has_left(reader) or reader.paused:
        state = "paused" if reader.paused and not has_left(reader) else reader.state
        hint = " (resume them first)" if state == "paused" else ""
        raise ResendRefused(f"{reader.email} is {state}: digest resends them nothing{hint}")
    edition = store.get_edition(day)
    if edition is None:
        raise ResendRefused(f"no edition for {day} (see 'digest editions list')")
    queued = store.resend_delivery(edition.id, reader.id, now=now)
    if queued is None:
        raise ResendRefused(
            f"{reader.email}'s delivery of {day} is still queued: 'digest send' sends it"
        )
    log_event(log, "delivery_resent", delivery=queued.id, resends=queued.resends)
    return queued


def render_preview(
    settings: Settings, found: Preview, *, theme: str, subscriber: Subscriber | None
) -> RenderedEmail:
    """The email a preview's selection makes, as ``run`` would render it."""
    compose = ComposeSettings.of(settings)
    return make_renderer(compose.email).render(
        edition_date=found.day,
        selection=found.selection,
        links=personal_links(compose, subscriber.id if subscriber else 0),
        theme=theme,
        personal=found.personal,
    )


@dataclass(frozen=True)
class EditionStatus:
    """One edition's deliveries by state, and its failures with their reasons."""

    edition: Edition
    deliveries: dict[str, int]
    failures: list[tuple[str, str]]
    #: What came back about its messages, by kind (hard, soft, complaint, ...).
    inbound: dict[str, int] = field(default_factory=dict)

    def rate(self, *kinds: str) -> float:
        """The share of sent messages that came back as one of these kinds."""
        sent = self.deliveries.get("sent", 0)
        return sum(self.inbound.get(k, 0) for k in kinds) / sent if sent else 0.0


@dataclass(frozen=True)
class Status:
    """What ``digest status`` shows: subscribers, the schedule, runs, recent editions."""

    subscribers: dict[str, int]
    next_run: datetime | None
    #: Who holds the run lock now, if anyone.
    running: str | None
    last_run: RunRecord | None
    editions: list[EditionStatus]
    #: How many editions there are in all (``editions`` shows the latest few).
    editions_total: int = 0
    #: Active readers by cadence (daily, weekly:monday, threshold:10, ...).
    cadences: dict[str, int] = field(default_factory=dict)
    #: For each weekly cadence, the day its readers' next email is due.
    weekly_next: dict[str, date] = field(default_factory=dict)
    #: The latest of the recent runs that failed, when it is not the last run itself.
    failed_run: RunRecord | None = None


def edition_status(store: Store, edition: Edition) -> EditionStatus:
    """One edition's deliveries by state, failures, and what came back."""
    return EditionStatus(
        edition,
        store.delivery_counts(edition.id),
        store.failures(edition.id),
        store.inbound_counts(edition.id),
    )


def status(store: Store, settings: Settings, *, editions: int, now: datetime) -> Status:
    """The installation's state, read in a few queries."""
    recent = [edition_status(store, e) for e in store.recent_editions(editions)]
    cadences = store.count_cadences()
    today = now.astimezone(settings.zone).date()
    weekly = {c: cadence_of_text(c) for c in cadences if c.startswith("weekly:")}
    _close_dead_runs(store, now=now)
    runs = store.recent_runs(5)
    failed = next((r for r in runs[1:] if r.outcome in ("failed", "error")), None)
    return Status(
        failed_run=failed,
        subscribers=store.count_subscribers(),
        next_run=next_run(settings.schedule, settings.zone, now),
        running=store.lock_holder(RUN_LOCK, now=now),
        last_run=next(iter(runs), None),
        editions=recent,
        editions_total=store.count_editions(),
        cadences=cadences,
        weekly_next={
            c: weekly_due(w.weekday, today - timedelta(days=1)) for c, w in weekly.items()
        },
    )


@dataclass(frozen=True)
class SourceHealth:
    """A configured source: its last check (None: never read) and what it brought to the
    latest edition."""

    spec: SourceSpec
    check: SourceCheck | None
    in_last_edition: int


def sources(store: Store, settings: Settings) -> tuple[date | None, list[SourceHealth]]:
    """Each configured source's health, with the day of the latest edition."""
    checks = store.source_checks()
    latest = next(iter(store.recent_editions(1)), None)
    brought = store.entries_by_source(latest.id) if latest else {}
    return latest.day if latest else None, [
        SourceHealth(spec, checks.get(spec.name), brought.get(spec.name, 0))
        for spec in settings.sources
    ]


@dataclass(frozen=True)
class ReaderHistory:
    """Everything about one reader an operator asks: their state's changes, what came
    back about their mail, their marks on papers, every delivery to them, and the day
    their cadence says the next email is due."""

    subscriber: Subscriber
    events: list[SubscriberEvent]
    came_back: list[tuple[datetime, str, str]]
    marks: list[Feedback]
    deliveries: list[tuple[date, Delivery]]
    next_email: date | None = None


def reader_history(
    store: Store, settings: Settings, subscriber: Subscriber, *, now: datetime
) -> ReaderHistory:
    """One reader's history, for ``digest subscribers show`` and the admin page."""
    return ReaderHistory(
        subscriber,
        store.subscriber_history(subscriber.id),
        store.inbound_of(subscriber.id),
        store.feedback_of([subscriber.id])[subscriber.id],
        store.deliveries_of(subscriber.id),
        next_email(store, settings, subscriber, now=now),
    )


def next_email(
    store: Store, settings: Settings, subscriber: Subscriber, *, now: datetime
) -> date | None:
    """The day a reader's next email is due by their cadence (a threshold reader's may
    come sooner); None for someone digest is not mailing."""
    since = store.periods_of([subscriber]).get(subscriber.id, now.date())
    return next_email_day(subscriber, since, now.astimezone(settings.zone).date())
