"""What ``--json`` prints and the API returns: one shape for each thing digest shows."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from datetime import date, datetime
from typing import Any

from digest.app.queries import EditionStatus, ReaderHistory, SourceHealth
from digest.models import StoredEntry, Subscriber


def as_json(payload: Any) -> str:
    """JSON text, dates and times in ISO 8601, non-ASCII as it is."""
    return json.dumps(payload, default=_iso, ensure_ascii=False)


def subscriber_json(subscriber: Subscriber) -> dict[str, Any]:
    """A reader: their choices and their state."""
    moments = {
        name: moment.isoformat() if moment else None
        for name, moment in (
            ("unsubscribed_at", subscriber.unsubscribed_at),
            ("updated_at", subscriber.updated_at),
        )
    }
    return (
        asdict(subscriber)
        | moments
        | {"state": subscriber.state, "topics": [asdict(t) for t in subscriber.topics]}
    )


def history_json(found: ReaderHistory) -> dict[str, Any]:
    """A reader with every change of their state, what came back, their marks on papers,
    every delivery to them and when their next email is due."""
    return subscriber_json(found.subscriber) | {
        "events": [asdict(e) for e in found.events],
        "came_back": [
            {"at": at, "kind": kind, "detail": detail} for at, kind, detail in found.came_back
        ],
        "feedback": [asdict(m) for m in found.marks],
        "deliveries": [asdict(d) | {"day": day} for day, d in found.deliveries],
        "next_email": found.next_email,
    }


def edition_json(row: EditionStatus) -> dict[str, Any]:
    """An edition: its papers' count, its deliveries by state, what came back."""
    return {
        "day": row.edition.day,
        "newsletter": row.edition.newsletter,
        "papers": row.edition.entry_count,
        "deliveries": row.deliveries,
        "came_back": row.inbound,
        "bounce_rate": round(row.rate("hard", "soft"), 4),
        "complaint_rate": round(row.rate("complaint"), 4),
        "failures": [{"email": email, "reason": reason} for email, reason in row.failures],
    }


def edition_papers_json(row: EditionStatus, papers: Sequence[StoredEntry]) -> dict[str, Any]:
    """An edition with the papers it carried."""
    return edition_json(row) | {
        "entries": [
            {"title": s.entry.title, "arxiv_id": s.entry.arxiv_id, "source": s.source}
            for s in papers
        ]
    }


def source_json(health: SourceHealth) -> dict[str, Any]:
    """A configured source: where it is, its last read, what it brought last."""
    return {
        "name": health.spec.name,
        "location": health.spec.location,
        "format": health.spec.format,
        "calendar": health.spec.calendar,
        "last_check": asdict(health.check) if health.check else None,
        "in_last_edition": health.in_last_edition,
        "stale": health.stale,
    }


def _iso(value: Any) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {value!r}")
