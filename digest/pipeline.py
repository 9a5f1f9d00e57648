"""The job as a recipe: each function reads top-down through the stages.

``run`` is the main job: ingest, plan the edition, deliver.  The clock, the
transport and ``sleep`` are passed in, so nothing here reads the time or
opens a socket by itself, and tests drive every path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from threading import Event
from time import perf_counter
from time import sleep as _sleep
from uuid import uuid4
from zoneinfo import ZoneInfo

from digest.config import Settings, SourceSpec
from digest.deliver.compose import (
    Composer,
    compose_message,
    envelope_for,
    make_renderer,
    personal_links,
)
from digest.deliver.message import build_message, domain_of, envelope_address
from digest.deliver.sender import Clock, DeliveryReport, Sleep, send_edition
from digest.deliver.transports import Envelope, Transport, transport_for
from digest.errors import SourceError
from digest.ingest import FetchPolicy, SourceLimits, Validators, parse_source, retrieve
from digest.ingest.dedupe import dedupe
from digest.locking import RunLock
from digest.models import (
    Delivery,
    Edition,
    Entry,
    IngestReport,
    SourceReport,
    StoredEntry,
    Subscriber,
    Topic,
)
from digest.plan import Decision, Skip, Wait, availability, decide
from digest.render import RenderedEmail
from digest.select.index import EditionIndex, Selection
from digest.store import Store
from digest.subscribers import SubscriberInput, format_topics
from digest.subscriptions import left_stamp, sign_up_mail, signs_up
from digest.tokens import ConfirmRequest, confirm_url

ProgressCallback = Callable[[SourceReport], None]


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
        if on_source_done:
            on_source_done(report)
    return IngestReport(started=now, sources=tuple(reports))


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
            retrieved.data, name=spec.name, today=today, edition_date=edition_date,
            limits=limits, kind=spec.format,
        )  # fmt: skip
    except SourceError as e:
        return SourceReport(source=spec.name, error=e.reason)
    added = store.add_entries(
        parsed.entries, source=spec.name, now=now, decide=dedupe, dry_run=dry_run
    )
    if fresh is not None:
        fresh.extend(added.fresh)
    if not dry_run and retrieved.validators != known:
        # Only once the entries are stored: a crash before this fetches them again.
        store.save_source_validators(
            spec.name, etag=retrieved.validators.etag,
            last_modified=retrieved.validators.last_modified, now=now,
        )  # fmt: skip
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
        delivery = self.delivery
        return (
            f"sent {delivery.sent}, failed {delivery.failed}, skipped {delivery.skipped}, "
            f"still queued {self.still_queued}"
            + (f" ({delivery.waiting} waiting for local time)" if delivery.waiting else "")
            + (f", expired {delivery.expired}" if delivery.expired else "")
        )


#: On PostgreSQL a run waits this long for another one to finish planning, then sends too.
PLANNING_WAIT_SECONDS = 300.0


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
    on_planned: Callable[[int], None] | None = None,
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
        lock = held.enter_context(RunLock(store, clock=now, wait_seconds=wait, sleep=sleep))
        run_id = store.start_run(lock.holder, now=now())
        try:
            planned = _plan_edition(
                store, settings, now=now, day=day, ingest_sources=ingest_sources and plan,
                plan=plan, on_planned=on_planned, stop=stop,
            )  # fmt: skip
            if not exclusive:
                held.close()  # planning done: on PostgreSQL the sending is shared
            report = _send(
                store, settings, planned, lock=lock if exclusive else None, holder=lock.holder,
                now=now, transport=transport, sleep=sleep, stop=stop, on_delivery=on_delivery,
            )  # fmt: skip
        except BaseException as e:
            store.finish_run(run_id, outcome="error", summary=f"{type(e).__name__}: {e}", now=now())
            raise
        store.finish_run(run_id, outcome=report.outcome, summary=report.summary(), now=now())
    return report


def _plan_edition(
    store: Store,
    settings: Settings,
    *,
    now: Clock,
    day: date | None,
    ingest_sources: bool,
    plan: bool,
    on_planned: Callable[[int], None] | None,
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
        )  # fmt: skip
        if ingest_sources
        else None
    )
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
    if on_planned:
        on_planned(store.count_queued([e.id for e in pending]))
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

    def should_stop() -> bool:
        if lock is not None and not lock.heartbeat():
            report.stopped = "lost the run lock (another process took over); stopping"
            return True
        return stop is not None and stop.is_set()

    composer = Composer(settings, make_renderer(settings), store.installation_id)
    extra = [transport_for(settings) for _ in range(settings.smtp.connections - 1)]
    with ExitStack() as opened:
        transports = [opened.enter_context(t) for t in [transport, *extra]]
        for queued_edition in planned.pending:
            send_edition(
                store, queued_edition, composer=composer, transports=transports, clock=now,
                sleep=sleep, report=report, on_delivery=on_delivery, should_stop=should_stop,
                holder=holder, exclusive=lock is not None,
            )  # fmt: skip
            if report.stopped or report.interrupted:
                break
    # A shared sender answers for what nobody holds: the rest is other senders' work.
    still_queued = store.count_queued(
        [e.id for e in planned.pending], unclaimed_at=None if lock is not None else now()
    )
    return RunReport(planned.day, planned.ingested, planned.edition, report, still_queued)


def dry_run(store: Store, settings: Settings, *, now: Clock, day: date | None = None) -> RunReport:
    """Report what ``run`` would do, rendering every email, without sending or storing anything."""
    started = now()
    day = day or started.astimezone(settings.zone).date()
    fresh: list[Entry] = []
    ingested = ingest(
        store, settings.sources, now=started, zone=settings.zone, limits=settings.limits,
        fetch=settings.fetch, dry_run=True, fresh=fresh,
    )  # fmt: skip
    edition = store.get_edition(day)
    if edition is not None:
        entries = store.edition_entries(edition.id)
        recipients = [s for _, s in _all_queued(store, edition.id)]
    else:
        entries = store.edition_entries(None)
        entries += [StoredEntry(-n, e, "dry run", started) for n, e in enumerate(fresh, 1)]
        edition = Edition(id=0, day=day, created_at=started, entry_count=len(entries))
        recipients = list(store.iter_subscribers(state="active"))
        recipients += store.iter_subscribers(state="paused")  # planned, then skipped
    report = DeliveryReport()
    composer = Composer(settings, make_renderer(settings), store.installation_id)
    with EditionIndex(entries) as index:
        for subscriber in recipients:
            # The decider, as the send path asks it: first who may be mailed now,
            # then (composing) what their topics select.
            blocked = availability(edition, subscriber, started, composer.policy)
            if blocked is not None:
                report.waiting += isinstance(blocked, Wait)
                report.skipped += isinstance(blocked, Skip)
                continue
            message, _, _, _, _, failure = compose_message(
                composer, edition, index, subscriber, started
            )
            if failure is not None:
                report.failed += 1
                report.failures.append((subscriber.email, failure))
            elif message is None:
                report.skipped += 1
            else:
                report.sent += 1
    return RunReport(day, ingested, edition, report, dry_run=True)


def _all_queued(store: Store, edition_id: int) -> Iterator[tuple[Delivery, Subscriber]]:
    after = 0
    while page := store.queued_deliveries(edition_id, after_id=after):
        yield from page
        after = page[-1][0].id


def sign_up(
    store: Store,
    settings: Settings,
    transport: Transport,
    item: SubscriberInput,
    *,
    now: datetime,
    channel: str,
) -> tuple[Subscriber, str]:
    """A sign-up (web form, or an operator's invite): record it, then mail the person;
    return the subscriber and what was mailed ("confirm" or "already").

    Nothing comes back to life here: someone who left stays unsubscribed,
    row untouched, until they open the link; their choices travel in it.
    Raises ``TemporaryFailure`` or ``PermanentFailure`` when the mail did not go out.
    """
    amended = store.amend_subscriber(item.email, signs_up(item), now=now, channel=channel)
    subscriber = amended.subscriber
    assert subscriber is not None  # a sign-up always leaves a row
    mail = sign_up_mail(amended.before)
    request = ConfirmRequest(subscriber.id)
    if subscriber.status == "unsubscribed":
        topics = format_topics(item.topics) if item.topics is not None else None
        request = ConfirmRequest(subscriber.id, left_stamp(subscriber), topics, item.theme)
    send_welcome(settings, transport, subscriber, already=mail == "already",
                 request=request, now=now)  # fmt: skip
    return subscriber, mail


def send_welcome(
    settings: Settings,
    transport: Transport,
    subscriber: Subscriber,
    *,
    already: bool,
    request: ConfirmRequest,
    now: datetime,
) -> None:
    """Email a sign-up: the confirmation link, or (already subscribed) their preferences link.

    Raises ``TemporaryFailure`` or ``PermanentFailure`` when the mail did not go out.
    """
    renderer = make_renderer(settings)
    links = personal_links(settings, subscriber.id)
    if already:
        rendered = renderer.notice(
            subject=f"{settings.title}: you are already subscribed",
            heading="You are already subscribed",
            paragraphs=[
                f"Someone (probably you) asked to subscribe {subscriber.email} to "
                f"{settings.title}. This address already gets it, so nothing changed.",
                "To change your topics or theme, or to pause, use your preferences page.",
            ],
            action_text="Open my preferences",
            action_url=links.preferences_url,
            footer="If you did not ask for this, you can ignore this email.",
        )
    else:
        rendered = renderer.notice(
            subject=f"{settings.title}: confirm your subscription",
            heading="Confirm your subscription",
            paragraphs=[
                f"Someone (probably you) asked to send {settings.title} to {subscriber.email}.",
                f"Open the link below to confirm. It works for "
                f"{settings.web.confirm_hours:g} hours.",
            ],
            action_text="Confirm my subscription",
            action_url=confirm_url(settings.base_url, settings.secret_key, subscriber.id, request),
            footer="If you did not ask for this, ignore this email: nothing will be sent.",
        )
    domain = domain_of(settings.sender_address)
    message_id = f"<notice.{uuid4().hex}@{domain}>"
    envelope = envelope_for(settings, subscriber, links)
    message = build_message(rendered, envelope, message_id=message_id, sent_at=now)
    with transport:
        route = Envelope(
            envelope_address(settings.sender_address),
            envelope_address(subscriber.email),
            message_id,
        )
        transport.send(route, message)


def preview(
    store: Store,
    settings: Settings,
    *,
    day: date,
    topics: Sequence[Topic],
    theme: str,
    now: datetime,
    subscriber: Subscriber | None = None,
) -> tuple[RenderedEmail, int, Decision | None]:
    """Render what ``topics`` would get from the edition of ``day``, count its entries, and
    (for a subscriber) say what the decider would do with them at ``now``.

    Before the day's edition exists, it is the entries no edition has carried yet.
    """
    edition = store.get_edition(day)
    entries = store.edition_entries(edition.id if edition else None)
    decision = None
    with EditionIndex(entries) as index:

        def select(wanted: tuple[Topic, ...]) -> Selection:
            return index.select(wanted, max_entries=settings.max_entries)

        selection = select(tuple(topics))
        if subscriber is not None:
            edition = edition or Edition(0, day, now, len(entries))
            decision = decide(edition, subscriber, now, settings.policy, select)
    rendered = make_renderer(settings).render(
        edition_date=day,
        selection=selection,
        links=personal_links(settings, subscriber.id if subscriber else 0),
        theme=theme,
        personal=bool(topics),
    )
    return rendered, len(entries), decision
