"""Editions: each day's batch of new entries, planned as one queued delivery per reader."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime

from sqlalchemy import DateTime, func, insert, literal, select
from sqlalchemy.engine import Row

from digest.models import Edition, StoredEntry
from digest.store.base import StoreBase, aware, inserted_id
from digest.store.entries import stored_entry
from digest.store.schema import deliveries, editions, entries, subscribers


class EditionsMixin(StoreBase):
    def create_edition(
        self, day: date, *, now: datetime, allow_empty: bool = False
    ) -> Edition | None:
        """Return the edition of ``day``, creating and planning it if it does not exist.

        Creating takes every entry no edition has carried yet and writes one
        queued delivery per active subscriber (paused ones too: the decider
        skips them, and the delivery says so), in one transaction: a crash
        leaves either no edition or a fully planned one.  Subscribers who join
        later get the next edition.  Returns None when there is nothing new
        (and ``allow_empty`` is off).
        """
        now = now.astimezone(UTC)
        with self._transaction() as conn:
            existing = conn.execute(select(editions).where(editions.c.day == day)).first()
            if existing is not None:
                return edition_of(existing)
            pending = conn.scalar(
                select(func.count()).select_from(entries).where(entries.c.edition_id.is_(None))
            )
            if not pending and not allow_empty:
                return None
            edition_id = inserted_id(
                conn.execute(editions.insert().values(day=day, created_at=now, entry_count=pending))
            )
            conn.execute(
                entries.update().where(entries.c.edition_id.is_(None)).values(edition_id=edition_id)
            )
            active = select(
                literal(edition_id),
                subscribers.c.id,
                literal("queued"),
                literal(0),
                literal(now, DateTime(timezone=True)),
            ).where(subscribers.c.status == "active")
            conn.execute(
                insert(deliveries).from_select(
                    ["edition_id", "subscriber_id", "status", "attempts", "updated_at"], active
                )
            )
            row = conn.execute(select(editions).where(editions.c.id == edition_id)).one()
        return edition_of(row)

    def get_edition(self, day: date) -> Edition | None:
        """Return the edition of a day, if there is one."""
        with self._transaction() as conn:
            row = conn.execute(select(editions).where(editions.c.day == day)).first()
        return edition_of(row) if row is not None else None

    def recent_editions(self, limit: int = 7, *, before: date | None = None) -> list[Edition]:
        """Return the latest editions (of days before ``before``, when given), newest first."""
        query = select(editions).order_by(editions.c.day.desc()).limit(limit)
        if before is not None:
            query = query.where(editions.c.day < before)
        with self._transaction() as conn:
            return [edition_of(row) for row in conn.execute(query)]

    def count_editions(self) -> int:
        """How many editions there are."""
        with self._transaction() as conn:
            return int(conn.scalar(select(func.count()).select_from(editions)) or 0)

    def editions_with_queued(self) -> list[Edition]:
        """Return the editions that still have queued deliveries, oldest first."""
        queued = select(deliveries.c.edition_id).where(deliveries.c.status == "queued")
        query = select(editions).where(editions.c.id.in_(queued)).order_by(editions.c.day)
        with self._transaction() as conn:
            return [edition_of(row) for row in conn.execute(query)]

    def entries_between(self, after: date, through: date) -> list[StoredEntry]:
        """The entries of every edition of a day after ``after`` up to ``through``: what a
        reader's email for a longer period gathers, in first-seen order."""
        days = select(editions.c.id).where(editions.c.day > after, editions.c.day <= through)
        query = select(entries).where(entries.c.edition_id.in_(days))
        with self._transaction() as conn:
            rows = conn.execute(query.order_by(entries.c.first_seen, entries.c.id)).all()
        return [stored_entry(row) for row in rows]

    def edition_entries(self, edition_id: int | None) -> list[StoredEntry]:
        """Return the entries an edition carries (None: no edition yet), in first-seen order."""
        where = (
            entries.c.edition_id.is_(None)
            if edition_id is None
            else entries.c.edition_id == edition_id
        )
        query = select(entries).where(where).order_by(entries.c.first_seen, entries.c.id)
        with self._transaction() as conn:
            return [stored_entry(row) for row in conn.execute(query)]

    def entries_by_edition(self, edition_ids: Sequence[int]) -> dict[int, list[StoredEntry]]:
        """The entries of several editions at once (one query), in first-seen order."""
        query = (
            select(entries)
            .where(entries.c.edition_id.in_(list(edition_ids)))
            .order_by(entries.c.first_seen, entries.c.id)
        )
        found: dict[int, list[StoredEntry]] = {i: [] for i in edition_ids}
        with self._transaction() as conn:
            for row in conn.execute(query):
                found[row.edition_id].append(stored_entry(row))
        return found


def edition_of(row: Row[tuple[object, ...]]) -> Edition:
    """The edition a row of ``editions`` stores."""
    return Edition(
        id=row.id, day=row.day, created_at=aware(row.created_at), entry_count=row.entry_count
    )
