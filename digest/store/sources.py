"""Each source's last check, and what it brought to an edition, for ``digest sources list``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select

from digest.store.base import StoreBase, aware
from digest.store.events import emit
from digest.store.schema import edition_entries, entries, source_checks


@dataclass(frozen=True)
class SourceCheck:
    """How a source's last check went: ok, unchanged or failed (``detail`` says why)."""

    source: str
    checked_at: datetime
    outcome: str
    detail: str | None
    read: int
    new: int
    #: When a read of it last brought new entries (None: never).
    last_new_at: datetime | None = None


class SourcesMixin(StoreBase):
    def record_source_check(self, check: SourceCheck) -> None:
        """Keep how a source's check went, in place of the one before."""
        values = {
            "checked_at": check.checked_at.astimezone(UTC),
            "outcome": check.outcome,
            "detail": (check.detail or "")[:2000] or None,
            "read": check.read,
            "new": check.new,
        }
        if check.new:
            values["last_new_at"] = check.checked_at.astimezone(UTC)
        where = source_checks.c.source == check.source
        with self._transaction() as conn:
            before = conn.scalar(select(source_checks.c.outcome).where(where))
            if not conn.execute(source_checks.update().where(where).values(values)).rowcount:
                conn.execute(source_checks.insert().values(source=check.source, **values))
            failed, now = check.outcome == "failed", check.checked_at.astimezone(UTC)
            told = {"source": check.source, "outcome": check.outcome, "detail": values["detail"]}
            if failed and before != "failed":
                emit(conn, "source.failed", told, now=now)
            elif before == "failed" and not failed:
                emit(conn, "source.recovered", told, now=now)

    def source_checks(self) -> dict[str, SourceCheck]:
        """Every source's last check, by name."""
        with self._transaction() as conn:
            rows = conn.execute(select(source_checks)).all()
        return {
            row.source: SourceCheck(
                row.source,
                aware(row.checked_at),
                row.outcome,
                row.detail,
                row.read,
                row.new,
                aware(row.last_new_at) if row.last_new_at else None,
            )
            for row in rows
        }

    def entries_by_source(self, edition_id: int) -> dict[str, int]:
        """How many of an edition's entries each source brought first."""
        query = (
            select(entries.c.source, func.count())
            .join(edition_entries, edition_entries.c.entry_id == entries.c.id)
            .where(edition_entries.c.edition_id == edition_id)
            .group_by(entries.c.source)
        )
        with self._transaction() as conn:
            return {source: int(n) for source, n in conn.execute(query)}
