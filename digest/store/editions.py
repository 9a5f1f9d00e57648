"""Editions: each day's batch of new entries, planned as one queued delivery per reader."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Connection, DateTime, Select, func, insert, literal, select
from sqlalchemy.engine import Row

from digest.models import MAIN_NEWSLETTER, Edition, StoredEntry
from digest.store.base import StoreBase, aware, inserted_id
from digest.store.entries import stored_entry
from digest.store.events import emit
from digest.store.schema import (
    deliveries,
    edition_entries,
    editions,
    entries,
    entry_sources,
    subscribers,
)

#: A newsletter added to an installation starts with the papers first seen this long
#: before the day of its first edition (not with everything ever read).
NEW_NEWSLETTER_REACH = timedelta(days=1)


class EditionsMixin(StoreBase):
    def create_edition(
        self, day: date, *, now: datetime, allow_empty: bool = False
    ) -> Edition | None:
        """Return this newsletter's edition of ``day``, creating and planning it if it does
        not exist.

        Creating takes every entry of the newsletter's sources that none of its editions
        has carried yet and writes one queued delivery per active reader of it (paused
        ones too: the decider skips them, and the delivery says so), in one transaction:
        a crash leaves either no edition or a fully planned one.  Readers who join later
        get the next edition.  Returns None when there is nothing new (and
        ``allow_empty`` is off).
        """
        now = now.astimezone(UTC)
        with self._transaction() as conn:
            existing = conn.execute(self._editions().where(editions.c.day == day)).first()
            if existing is not None:
                return edition_of(existing)
            waiting = self._waiting_entries(conn, day)
            pending = conn.scalar(select(func.count()).select_from(waiting.subquery()))
            if not pending and not allow_empty:
                return None
            values = {"day": day, "created_at": now, "entry_count": pending}
            edition_id = inserted_id(
                conn.execute(editions.insert().values(newsletter=self.newsletter, **values))
            )
            carried = select(literal(edition_id), waiting.subquery().c.id)
            conn.execute(insert(edition_entries).from_select(["edition_id", "entry_id"], carried))
            active = select(
                literal(edition_id),
                subscribers.c.id,
                literal("queued"),
                literal(0),
                literal(now, DateTime(timezone=True)),
            ).where(subscribers.c.status == "active", subscribers.c.newsletter == self.newsletter)
            conn.execute(
                insert(deliveries).from_select(
                    ["edition_id", "subscriber_id", "status", "attempts", "updated_at"], active
                )
            )
            row = conn.execute(select(editions).where(editions.c.id == edition_id)).one()
            told = {"newsletter": self.newsletter, "day": day.isoformat(), "papers": pending}
            emit(conn, "edition.created", told, now=now)
        return edition_of(row)

    def _editions(self) -> Select[Any]:
        """This newsletter's editions."""
        return select(editions).where(editions.c.newsletter == self.newsletter)

    def _waiting_entries(self, conn: Connection, day: date) -> Select[Any]:
        """The ids of the entries this newsletter's edition of ``day`` takes: from its
        sources, carried by none of its editions, and (but for the main newsletter, which
        has them all) first seen no earlier than the day before its first edition."""
        carried = (
            select(edition_entries.c.entry_id)
            .join(editions, editions.c.id == edition_entries.c.edition_id)
            .where(editions.c.newsletter == self.newsletter)
        )
        query = select(entries.c.id).where(entries.c.id.not_in(carried))
        if self.newsletter_sources is not None:
            brought = select(entry_sources.c.entry_id).where(
                entry_sources.c.source.in_(self.newsletter_sources)
            )
            query = query.where(entries.c.id.in_(brought))
        if self.newsletter != MAIN_NEWSLETTER:
            first = conn.scalar(
                select(func.min(editions.c.day)).where(editions.c.newsletter == self.newsletter)
            )
            since = datetime.combine(first or day, time.min, UTC) - NEW_NEWSLETTER_REACH
            query = query.where(entries.c.first_seen >= since)
        return query

    def get_edition(self, day: date) -> Edition | None:
        """Return this newsletter's edition of a day, if there is one."""
        with self._transaction() as conn:
            row = conn.execute(self._editions().where(editions.c.day == day)).first()
        return edition_of(row) if row is not None else None

    def recent_editions(self, limit: int = 7, *, before: date | None = None) -> list[Edition]:
        """This newsletter's latest editions (of days before ``before``), newest first."""
        query = self._editions().order_by(editions.c.day.desc()).limit(limit)
        if before is not None:
            query = query.where(editions.c.day < before)
        with self._transaction() as conn:
            return [edition_of(row) for row in conn.execute(query)]

    def count_editions(self) -> int:
        """How many editions this newsletter has."""
        query = select(func.count()).where(editions.c.newsletter == self.newsletter)
        with self._transaction() as conn:
            return int(conn.scalar(query) or 0)

    def editions_with_queued(self) -> list[Edition]:
        """This newsletter's editions that still have queued deliveries, oldest first."""
        queued = select(deliveries.c.edition_id).where(deliveries.c.status == "queued")
        query = self._editions().where(editions.c.id.in_(queued)).order_by(editions.c.day)
        with self._transaction() as conn:
            return [edition_of(row) for row in conn.execute(query)]

    def entries_between(self, after: date, through: date) -> list[StoredEntry]:
        """The entries of each of this newsletter's editions of a day after ``after`` up to
        ``through``: what a reader's email for a longer period gathers, in first-seen order."""
        days = select(editions.c.id).where(
            editions.c.newsletter == self.newsletter,
            editions.c.day > after,
            editions.c.day <= through,
        )
        carried = select(edition_entries.c.entry_id).where(edition_entries.c.edition_id.in_(days))
        query = select(entries).where(entries.c.id.in_(carried))
        with self._transaction() as conn:
            rows = conn.execute(query.order_by(entries.c.first_seen, entries.c.id)).all()
        return [stored_entry(row) for row in rows]

    def edition_entries(self, edition_id: int | None) -> list[StoredEntry]:
        """Return the entries an edition carries (None: those this newsletter's next
        edition would take), in first-seen order."""
        with self._transaction() as conn:
            if edition_id is None:
                ids = self._waiting_entries(conn, datetime.now(UTC).date())
            else:
                ids = select(edition_entries.c.entry_id).where(
                    edition_entries.c.edition_id == edition_id
                )
            query = select(entries).where(entries.c.id.in_(ids))
            rows = conn.execute(query.order_by(entries.c.first_seen, entries.c.id)).all()
        return [stored_entry(row) for row in rows]

    def entries_by_edition(self, edition_ids: Sequence[int]) -> dict[int, list[StoredEntry]]:
        """The entries of several editions at once (one query), in first-seen order."""
        query = (
            select(edition_entries.c.edition_id, entries)
            .join(entries, entries.c.id == edition_entries.c.entry_id)
            .where(edition_entries.c.edition_id.in_(list(edition_ids)))
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
        id=row.id,
        day=row.day,
        created_at=aware(row.created_at),
        entry_count=row.entry_count,
        newsletter=row.newsletter,
    )
