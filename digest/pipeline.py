"""The job as a recipe: each function reads top-down through the stages.

``ingest`` reads every source and records what is new.  Later stages (plan,
select, render, deliver) join here as they are built.  The clock is passed
in (``now``), so nothing here reads the time by itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from digest.config import Settings, SourceSpec
from digest.errors import SourceError
from digest.models import IngestReport, SourceReport, Topic
from digest.render import EmailRenderer, EmailSettings, PersonalLinks, RenderedEmail
from digest.resources import resource_path
from digest.selection import EditionIndex
from digest.sources import SourceLimits, read_source
from digest.store import Store, StoredEntry
from digest.tokens import preferences_url, unsubscribe_url

ProgressCallback = Callable[[SourceReport], None]


def ingest(
    store: Store,
    sources: Sequence[SourceSpec],
    *,
    now: datetime,
    zone: ZoneInfo,
    limits: SourceLimits,
    edition_date: date | None = None,
    on_source_done: ProgressCallback | None = None,
) -> IngestReport:
    """Read each source and store its new entries; one failing source never stops the others.

    Each source is stored in its own transaction, so a source that fails
    leaves the database exactly as it was for that source.
    """
    today = now.astimezone(zone).date()
    reports = []
    for spec in sources:
        report = _ingest_one(
            store, spec, now=now, today=today, limits=limits, edition_date=edition_date
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
    edition_date: date | None,
) -> SourceReport:
    try:
        parsed = read_source(
            spec.location, name=spec.name, today=today, edition_date=edition_date, limits=limits
        )
    except SourceError as e:
        return SourceReport(source=spec.name, error=e.reason)
    added = store.add_entries(parsed.entries, source=spec.name, now=now)
    return SourceReport(
        source=spec.name,
        format=parsed.format,
        read=len(parsed.entries),
        new=added.new,
        seen=added.seen,
        skipped=parsed.skipped,
        warnings=parsed.warnings,
    )


def make_renderer(settings: Settings) -> EmailRenderer:
    """Build the email renderer from the settings, with the shipped templates."""
    return EmailRenderer(
        resource_path("templates"),
        EmailSettings(
            newsletter=settings.title,
            base_url=settings.base_url,
            abstract_chars=settings.abstract_chars,
            max_html_bytes=settings.max_html_bytes,
        ),
    )


def personal_links(settings: Settings, subscriber_id: int) -> PersonalLinks:
    """The signed unsubscribe and preferences links of one subscriber."""
    return PersonalLinks(
        unsubscribe_url=unsubscribe_url(settings.base_url, settings.secret_key, subscriber_id),
        preferences_url=preferences_url(settings.base_url, settings.secret_key, subscriber_id),
    )


def day_entries(store: Store, day: date, zone: ZoneInfo) -> list[StoredEntry]:
    """Return the entries first seen on ``day`` in ``zone``."""
    start = datetime.combine(day, time.min, tzinfo=zone)
    return store.list_entries(since=start, until=start + timedelta(days=1))


def preview(
    store: Store,
    settings: Settings,
    *,
    day: date,
    topics: Sequence[Topic],
    theme: str,
    subscriber_id: int = 0,
) -> tuple[RenderedEmail, int]:
    """Render what ``topics`` would get from the entries of ``day``, and count those entries."""
    entries = day_entries(store, day, settings.zone)
    with EditionIndex(entries) as index:
        selection = index.select(topics, max_entries=settings.max_entries)
    rendered = make_renderer(settings).render(
        edition_date=day,
        selection=selection,
        links=personal_links(settings, subscriber_id),
        theme=theme,
        personal=bool(topics),
    )
    return rendered, len(entries)
