"""Entries (the seen-list) and what each source's server last said of its version."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, func, select

from digest.ingest.dedupe import Dedupe, Known
from digest.models import Entry, StoredEntry
from digest.store.base import StoreBase, aware, chunks
from digest.store.schema import entries, entry_sources, source_state

#: The decision of which entries of a batch are new: ``digest.ingest.dedupe.dedupe``.
Decide = Callable[[Sequence[Entry], Mapping[str, int], Mapping[str, Known]], Dedupe]


@dataclass(frozen=True)
class AddResult:
    """How many of a batch of entries were new and how many already seen."""

    new: int
    seen: int
    #: The new entries themselves (as they were or would be stored).
    fresh: tuple[Entry, ...] = ()


class EntriesMixin(StoreBase):
    def add_entries(
        self,
        batch: Sequence[Entry],
        *,
        source: str,
        now: datetime,
        decide: Decide,
    ) -> AddResult:
        """Store the entries ``decide`` finds new, in one transaction; count new and seen.

        ``decide`` is given the batch and what the seen-list knows of its
        keys, and says which entries are new and which fill in a stored one.
        """
        now = now.astimezone(UTC)
        with self._transaction() as conn:
            decided = decide(batch, *_known(conn, batch))
            for row_id, fillers in decided.enrich.items():
                _enrich(conn, row_id, fillers)
            if decided.fresh:
                rows = [entry_row(e, source=source, now=now) for e in decided.fresh]
                conn.execute(entries.insert(), rows)
            _brought_by(conn, source, decided)
        return AddResult(new=len(decided.fresh), seen=decided.seen, fresh=decided.fresh)

    def source_validators(self, source: str) -> tuple[str | None, str | None]:
        """The ETag and Last-Modified a source's server last sent (None, None: never)."""
        query = select(source_state.c.etag, source_state.c.last_modified).where(
            source_state.c.source == source
        )
        with self._transaction() as conn:
            row = conn.execute(query).first()
        return (row.etag, row.last_modified) if row is not None else (None, None)

    def save_source_validators(
        self, source: str, *, etag: str | None, last_modified: str | None, now: datetime
    ) -> None:
        """Remember what identifies the version of a source just stored."""
        values = {"etag": etag, "last_modified": last_modified, "fetched_at": now.astimezone(UTC)}
        with self._transaction() as conn:
            updated = conn.execute(
                source_state.update().where(source_state.c.source == source).values(values)
            )
            if not updated.rowcount:
                conn.execute(source_state.insert().values(source=source, **values))

    def get_entry(self, entry_id: int) -> StoredEntry | None:
        """The stored entry with this row id, or None."""
        with self._transaction() as conn:
            row = conn.execute(select(entries).where(entries.c.id == entry_id)).first()
        return stored_entry(row) if row is not None else None

    def count_entries(self) -> int:
        """Return how many distinct papers the seen-list holds."""
        with self._transaction() as conn:
            return int(conn.scalar(select(func.count()).select_from(entries)) or 0)

    def list_entries(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        sources: Sequence[str] | None = None,
    ) -> list[StoredEntry]:
        """Return stored entries in first-seen order, optionally first seen in [since, until)
        and from these sources only."""
        query = select(entries).order_by(entries.c.first_seen, entries.c.id)
        if sources is not None:
            query = query.where(entries.c.source.in_(list(sources)))
        if since is not None:
            query = query.where(entries.c.first_seen >= since.astimezone(UTC))
        if until is not None:
            query = query.where(entries.c.first_seen < until.astimezone(UTC))
        with self._transaction() as conn:
            return [stored_entry(row) for row in conn.execute(query)]


def _known(conn: Connection, batch: Sequence[Entry]) -> tuple[dict[str, int], dict[str, Known]]:
    ids = sorted({e.arxiv_id for e in batch if e.arxiv_id})
    keys = sorted({e.title_key for e in batch})
    by_id: dict[str, int] = {}
    by_title: dict[str, Known] = {}
    for chunk in chunks(ids):
        query = select(entries.c.arxiv_id, entries.c.id).where(entries.c.arxiv_id.in_(chunk))
        by_id.update({row.arxiv_id: row.id for row in conn.execute(query)})
    for chunk in chunks(keys):
        query = select(entries.c.title_key, entries.c.id, entries.c.arxiv_id).where(
            entries.c.title_key.in_(chunk)
        )
        for row in conn.execute(query):
            by_title.setdefault(row.title_key, (row.id, row.arxiv_id))
    return by_id, by_title


def _brought_by(conn: Connection, source: str, decided: Dedupe) -> None:
    """Keep that ``source`` brought the batch's new entries and the stored ones it saw."""
    rows = set(decided.seen_rows)
    fingerprints = [e.fingerprint for e in decided.fresh]
    for some in chunks(fingerprints):
        query = select(entries.c.id).where(entries.c.fingerprint.in_(some))
        rows.update(conn.scalars(query))
    known: set[int] = set()
    for ids in chunks(sorted(rows)):
        query = select(entry_sources.c.entry_id).where(
            entry_sources.c.source == source, entry_sources.c.entry_id.in_(ids)
        )
        known.update(conn.scalars(query))
    new = [{"entry_id": row, "source": source} for row in sorted(rows - known)]
    if new:
        conn.execute(entry_sources.insert(), new)


def _enrich(conn: Connection, row_id: int, fillers: Sequence[Entry]) -> None:
    stored = stored_entry(conn.execute(select(entries).where(entries.c.id == row_id)).one())
    filled = stored.entry
    for entry in fillers:
        filled = filled.filled_from(entry)
    row = entry_row(filled, source=stored.source, now=stored.first_seen)
    conn.execute(entries.update().where(entries.c.id == row_id).values(**row))


def entry_row(entry: Entry, *, source: str, now: datetime) -> dict[str, Any]:
    """The row that stores an entry."""
    return {
        "fingerprint": entry.fingerprint,
        "arxiv_id": entry.arxiv_id,
        "title_key": entry.title_key,
        "title": entry.title,
        "abstract": entry.abstract,
        "authors": list(entry.authors),
        "url": entry.url,
        "pdf_url": entry.pdf_url,
        "hf_url": entry.hf_url,
        "categories": list(entry.categories),
        "upvotes": entry.upvotes,
        "summary": entry.summary,
        "code_url": entry.code_url,
        "stars": entry.stars,
        "organization": entry.organization,
        "published": entry.published,
        "source": source,
        "first_seen": now,
    }


def stored_entry(row: Any) -> StoredEntry:
    """The entry a row of ``entries`` stores."""
    entry = Entry(
        title=row.title,
        abstract=row.abstract,
        authors=tuple(row.authors or ()),
        url=row.url,
        pdf_url=row.pdf_url,
        hf_url=row.hf_url,
        arxiv_id=row.arxiv_id,
        published=row.published,
        upvotes=row.upvotes,
        categories=tuple(row.categories or ()),
        summary=row.summary,
        code_url=row.code_url,
        stars=row.stars,
        organization=row.organization,
    )
    return StoredEntry(id=row.id, entry=entry, source=row.source, first_seen=aware(row.first_seen))
