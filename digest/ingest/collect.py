"""Ingest as the job does it: each source read, parsed and stored on its own."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from threading import Event
from zoneinfo import ZoneInfo

from digest.config import SourceSpec
from digest.errors import SourceError, StorageError
from digest.ingest import FetchPolicy, SourceLimits, Validators, parse_source, retrieve
from digest.ingest.dedupe import dedupe
from digest.models import (
    IngestReport,
    SourceReport,
)
from digest.store import SourceCheck, Store
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
    stop: Event | None = None,
) -> IngestReport:
    """Read each source and store its new entries; one failing source never stops the others.

    Each source is stored in its own transaction, so a source that fails
    leaves the database exactly as it was for that source.  A source whose
    server answers "not modified" is reported unchanged and parsed not at
    all.  Setting ``stop`` ends a fetch in progress.
    """
    today = now.astimezone(zone).date()
    reading = _Reading(now, today, limits, fetch or FetchPolicy(), edition_date, stop)
    reports = []
    for spec in sources:
        if stop is not None and stop.is_set():
            break
        report = _ingest_one(store, spec, reading)
        reports.append(report)
        store.record_source_check(_check_of(report, now))
        if on_source_done:
            on_source_done(report)
    return IngestReport(started=now, sources=tuple(reports))


def _check_of(report: SourceReport, now: datetime) -> SourceCheck:
    outcome = "failed" if not report.ok else "unchanged" if report.unchanged else "ok"
    detail = report.error or (f"{len(report.warnings)} warnings" if report.warnings else None)
    return SourceCheck(report.source, now, outcome, detail, report.read, report.new)


@dataclass(frozen=True)
class _Reading:
    """What reading every source of one ingest shares."""

    now: datetime
    today: date
    limits: SourceLimits
    fetch: FetchPolicy
    edition_date: date | None
    stop: Event | None


def _ingest_one(store: Store, spec: SourceSpec, reading: _Reading) -> SourceReport:
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
