"""Runs: when each run started and how it ended, for ``digest status``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select

from digest.store.base import StoreBase, aware, inserted_id
from digest.store.schema import runs


@dataclass(frozen=True)
class RunRecord:
    """A past or current run, for ``digest status``."""

    id: int
    holder: str
    started_at: datetime
    finished_at: datetime | None
    outcome: str
    summary: str | None


class RunsMixin(StoreBase):
    def start_run(self, holder: str, *, now: datetime) -> int:
        """Record that a run started; return its id."""
        with self._transaction() as conn:
            started = runs.insert().values(
                holder=holder, started_at=now.astimezone(UTC), outcome="running"
            )
            return inserted_id(conn.execute(started))

    def finish_run(self, run_id: int, *, outcome: str, summary: str, now: datetime) -> None:
        """Record how a run ended."""
        with self._transaction() as conn:
            conn.execute(
                runs.update()
                .where(runs.c.id == run_id)
                .values(outcome=outcome, summary=summary[:2000], finished_at=now.astimezone(UTC))
            )

    def running_runs(self) -> list[tuple[int, str]]:
        """The runs recorded as running: (id, holder)."""
        query = select(runs.c.id, runs.c.holder).where(runs.c.outcome == "running")
        with self._transaction() as conn:
            return [(row.id, row.holder) for row in conn.execute(query)]

    def recent_runs(self, limit: int = 5) -> list[RunRecord]:
        """Return the latest runs, newest first."""
        query = select(runs).order_by(runs.c.started_at.desc(), runs.c.id.desc()).limit(limit)
        with self._transaction() as conn:
            return [
                RunRecord(
                    id=row.id,
                    holder=row.holder,
                    started_at=aware(row.started_at),
                    finished_at=aware(row.finished_at) if row.finished_at else None,
                    outcome=row.outcome,
                    summary=row.summary,
                )
                for row in conn.execute(query)
            ]
