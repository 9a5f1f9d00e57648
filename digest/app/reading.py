"""Ingest as the job does it: each source read, parsed and stored on its own (the
stage's pure parts, through ``digest.ingest``; the store here)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from threading import Event
from zoneinfo import ZoneInfo

from digest.calendars import staleness
from digest.config import SourceSpec
from digest.errors import SourceError, StorageError
from digest.ingest import FetchPolicy, SourceLimits, Validators, dedupe, parse_source, retrieve
from digest.models import (
    IngestReport,
    SourceReport,
)
from digest.store import SourceCheck, Store
from digest.text import printable

ProgressCallback = Callable[[SourceReport], None]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reading:
    """What reading every source of one ingest shares: the time and its zone (which day
    "today" is), the limits, how to fetch, the edition's day if given, and a stop."""

    now: datetime
    zone: ZoneInfo
    limits: SourceLimits
    fetch: FetchPolicy = field(default_factory=FetchPolicy)
    edition_date: date | None = None
    #: Set to end a fetch in progress.
    stop: Event | None = None

    @property
    def today(self) -> date:
        return self.now.astimezone(self.zone).date()


def ingest(
    store: Store,
    sources: Sequence[SourceSpec],
    reading: Reading,
    on_source_done: ProgressCallback | None = None,
) -> IngestReport:
    """Read each source and store its new entries; one failing source never stops the others.

    Each source is stored in its own transaction, so a source that fails
    leaves the database exactly as it was for that source.  A source whose
    server answers "not modified" is reported unchanged and parsed not at
    all.
    """
    reports = []
    for spec in sources:
        if reading.stop is not None and reading.stop.is_set():
            break
        report = _ingest_one(store, spec, reading)
        reports.append(report)
        store.record_source_check(_check_of(report, reading.now))
        if on_source_done:
            on_source_done(report)
    checks = store.source_checks()
    for spec in sources[: len(reports)]:
        _tell_if_stale(store, spec, checks.get(spec.name), reading)
    return IngestReport(started=reading.now, sources=tuple(reports))


def _tell_if_stale(
    store: Store, spec: SourceSpec, check: SourceCheck | None, reading: Reading
) -> None:
    """A source silent past an announcement day of its calendar is a finding: told once
    for each silence (``source.failed``, outcome stale), not a quiet day."""
    if check is None or check.last_new_at is None:
        return
    last_new = check.last_new_at.astimezone(reading.zone).date()
    why = staleness(spec.calendar, last_new, reading.now.astimezone(reading.zone).date())
    if why is not None:
        told = {"source": spec.name, "outcome": "stale", "detail": why}
        store.emit_once("source.failed", told, key=f"stale:{spec.name}:{last_new}", now=reading.now)


def _check_of(report: SourceReport, now: datetime) -> SourceCheck:
    outcome = "failed" if not report.ok else "unchanged" if report.unchanged else "ok"
    detail = report.error or (f"{len(report.warnings)} warnings" if report.warnings else None)
    return SourceCheck(report.source, now, outcome, detail, report.read, report.new)


def _ingest_one(store: Store, spec: SourceSpec, reading: Reading) -> SourceReport:
    now, fetch, stop = reading.now, reading.fetch, reading.stop
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
            today=reading.today,
            edition_date=reading.edition_date,
            limits=reading.limits,
            kind=spec.format,
        )
        added = store.add_entries(parsed.entries, source=spec.name, now=now, decide=dedupe)
        if retrieved.validators != known:
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
    return SourceReport(
        source=spec.name,
        format=parsed.format,
        read=len(parsed.entries),
        new=added.new,
        seen=added.seen,
        skipped=parsed.skipped,
        warnings=parsed.warnings,
    )
