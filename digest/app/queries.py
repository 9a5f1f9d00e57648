"""Operator queries: the installation's status, its sources' health, an edition's
deliveries, and one reader's history."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from digest.app.job import close_dead_runs
from digest.cadence import read_cadence, weekly_due
from digest.calendars import quiet_day, staleness
from digest.config import Newsletter, Settings, SourceSpec
from digest.locking import RUN_LOCK
from digest.models import (
    STATES,
    Delivery,
    Edition,
    Feedback,
    Subscriber,
)
from digest.plan import due_at, next_email_day
from digest.schedule import next_run
from digest.store import RunRecord, SourceCheck, Store, SubscriberEvent


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
    #: The coming runs that mail nobody, its sources announcing nothing that day, and why.
    quiet: list[tuple[datetime, str]] = field(default_factory=list)


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
    weekly = {c: read_cadence(c) for c in cadences if c.startswith("weekly:")}
    close_dead_runs(store, now=now)
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
        quiet=quiet_runs(settings, now),
    )


@dataclass(frozen=True)
class SourceHealth:
    """A configured source: its last check (None: never read) and what it brought to the
    latest edition."""

    spec: SourceSpec
    check: SourceCheck | None
    in_last_edition: int
    #: Why it seems stale (silent past an announcement day; None: it does not).
    stale: str | None = None

    @property
    def state(self) -> str:
        """Its state in one word: its last read's outcome, stale, or never (read)."""
        if self.check is None:
            return "never"
        return "stale" if self.stale and self.check.outcome != "failed" else self.check.outcome


def sources(
    store: Store, settings: Settings, *, now: datetime
) -> tuple[date | None, list[SourceHealth]]:
    """Each configured source's health, with the day of the latest edition."""
    checks = store.source_checks()
    latest = next(iter(store.recent_editions(1)), None)
    brought = store.entries_by_source(latest.id) if latest else {}
    today = now.astimezone(settings.zone).date()
    found = []
    for spec in settings.sources:
        check = checks.get(spec.name)
        last_new = check.last_new_at if check is not None else None
        day = last_new.astimezone(settings.zone).date() if last_new else None
        stale = staleness(spec.calendar, day, today)
        found.append(SourceHealth(spec, check, brought.get(spec.name, 0), stale))
    return latest.day if latest else None, found


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
    next_email: datetime | None = None


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
) -> datetime | None:
    """When a reader's next email goes, by the schedule and their cadence (a threshold
    reader's may come sooner); None for someone digest is not mailing.  An edition already
    built mails only the readers it planned: today's counts only while theirs is queued."""
    zone = settings.zone
    today = now.astimezone(zone).date()
    queued_today = any(
        day == today and delivery.status == "queued"
        for day, delivery in store.deliveries_of(subscriber.id, limit=1)
    )
    fire = now if queued_today else _next_unbuilt_run(store, settings, now)
    if fire is None:
        return None
    since = store.periods_of([subscriber]).get(subscriber.id, today)
    due = next_email_day(subscriber, since, fire.astimezone(zone).date())
    if due is None:
        return None
    if due > fire.astimezone(zone).date():  # their cadence waits: the first run that day
        fire = next_run(settings.schedule, zone, datetime.combine(due, time.min, zone) - _TICK)
        if fire is None:
            return None
    if settings.delivery_mode == "local":
        return max(fire, due_at(fire.astimezone(zone).date(), subscriber, settings.policy))
    return fire


_TICK = timedelta(microseconds=1)


def quiet_runs(settings: Settings, now: datetime) -> list[tuple[datetime, str]]:
    """The coming scheduled runs (within a week) that mail nobody because none of the
    newsletter's sources announces papers that day, each with why."""
    if settings.delivery.send_empty:
        return []  # they mail "nothing new" instead
    calendars = [s.calendar for s in _sources_of(settings)]
    found: list[tuple[datetime, str]] = []
    fire = next_run(settings.schedule, settings.zone, now)
    while fire is not None and fire < now + timedelta(days=7):
        why = quiet_day(calendars, fire.astimezone(settings.zone).date())
        if why is None:
            return found
        found.append((fire, why))
        fire = next_run(settings.schedule, settings.zone, fire + _TICK)
    return found


def _sources_of(settings: Settings) -> list[SourceSpec]:
    wanted = settings.newsletter_named(settings.newsletter).sources
    return [s for s in settings.sources if wanted is None or s.name in wanted]


def _next_unbuilt_run(store: Store, settings: Settings, now: datetime) -> datetime | None:
    """The next scheduled run whose day has no edition yet (one built early, by hand or
    for a catch-up, plans nobody who joined after it), past the days its sources are
    quiet."""
    quiet = quiet_runs(settings, now)
    fire = next_run(settings.schedule, settings.zone, quiet[-1][0] + _TICK if quiet else now)
    for _ in range(14):
        if fire is None or store.get_edition(fire.astimezone(settings.zone).date()) is None:
            return fire
        end_of_day = datetime.combine(fire.astimezone(settings.zone).date(), time.max)
        fire = next_run(settings.schedule, settings.zone, end_of_day.replace(tzinfo=settings.zone))
    return fire


@dataclass(frozen=True)
class NewsletterStatus:
    """One newsletter as ``newsletters list`` shows it."""

    newsletter: Newsletter
    #: The From and List-Id its mail carries.
    sender: str
    readers: dict[str, int]
    next_run: datetime | None


def newsletters(store: Store, settings: Settings, *, now: datetime) -> list[NewsletterStatus]:
    """Each newsletter of the installation: its sender, its readers by state, and when
    its next edition is made (the installation's schedule)."""
    counts = store.count_by_newsletter()
    empty = dict.fromkeys(STATES, 0)
    found = []
    for newsletter in settings.all_newsletters():
        own = settings.for_newsletter(newsletter)
        found.append(
            NewsletterStatus(
                newsletter,
                f"{own.sender_name} <{own.sender_address}>",
                counts.get(newsletter.slug, empty),
                next_run(own.schedule, own.zone, now),
            )
        )
    return found
