"""Named locks: leases in the database, so that one run at a time works across machines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError

from digest.store.base import StoreBase
from digest.store.schema import locks


class LocksMixin(StoreBase):
    def acquire_lock(
        self,
        name: str,
        holder: str,
        *,
        now: datetime,
        ttl: timedelta,
        steal_from: str | None = None,
    ) -> str | None:
        """Take a named lock for ``ttl``; return None on success, else the current holder.

        An expired lease is taken over; ``steal_from`` names a holder known to
        be dead (a crashed process on this machine), whose lease is taken at once.
        """
        now = now.astimezone(UTC)
        values = {"holder": holder, "acquired_at": now, "expires_at": now + ttl}
        with self._transaction() as conn:
            takeover = locks.update().where(
                locks.c.name == name,
                or_(
                    locks.c.expires_at < now,
                    locks.c.holder == holder,
                    locks.c.holder == (steal_from or holder),
                ),
            )
            if conn.execute(takeover.values(values)).rowcount:
                return None
            try:
                with conn.begin_nested():
                    conn.execute(locks.insert().values(name=name, **values))
                return None
            except IntegrityError:
                current = conn.scalar(select(locks.c.holder).where(locks.c.name == name))
                return str(current)

    def renew_lock(self, name: str, holder: str, *, now: datetime, ttl: timedelta) -> bool:
        """Extend a held lease; False means the lock was lost (taken over as expired)."""
        now = now.astimezone(UTC)
        with self._transaction() as conn:
            result = conn.execute(
                locks.update()
                .where(locks.c.name == name, locks.c.holder == holder)
                .values(expires_at=now + ttl)
            )
        return bool(result.rowcount)

    def release_lock(self, name: str, holder: str) -> None:
        """Give a lock back (only if this holder still has it)."""
        with self._transaction() as conn:
            conn.execute(locks.delete().where(locks.c.name == name, locks.c.holder == holder))

    def lock_holder(self, name: str, *, now: datetime) -> str | None:
        """Return who holds a lock whose lease is still running, if anyone."""
        query = select(locks.c.holder).where(
            locks.c.name == name, locks.c.expires_at >= now.astimezone(UTC)
        )
        with self._transaction() as conn:
            holder = conn.scalar(query)
        return str(holder) if holder is not None else None
