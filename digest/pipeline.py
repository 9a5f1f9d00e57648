"""The job as a recipe: each function reads top-down through the stages.

``ingest`` reads every source and records what is new.  Later stages (plan,
select, render, deliver) join here as they are built.  The clock is passed
in (``now``), so nothing here reads the time by itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime
from zoneinfo import ZoneInfo

from digest.config import SourceSpec
from digest.errors import SourceError
from digest.models import IngestReport, SourceReport
from digest.sources import SourceLimits, read_source
from digest.store import Store

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
