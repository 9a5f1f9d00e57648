"""Claims on queued deliveries: leases so that several senders share one outbox."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, or_, select

from digest.models import Claim, Delivery, Subscriber
from digest.store.base import StoreBase, aware
from digest.store.deliveries import (
    delivery_of,
    delivery_subscriber,
    delivery_with_subscriber,
    queued_after,
)
from digest.store.schema import deliveries


class ClaimsMixin(StoreBase):
    def claim_deliveries(
        self,
        edition_id: int,
        claim: Claim,
        *,
        now: datetime,
        after_id: int = 0,
        limit: int = 100,
    ) -> list[tuple[Delivery, Subscriber]]:
        """Claim a batch of an edition's queued deliveries for ``lease``; return them.

        Senders on several machines share the queue: on PostgreSQL the batch
        is picked with ``FOR UPDATE SKIP LOCKED``, and deliveries another
        sender holds are passed over until its lease runs out (it may have
        died).  An exclusive claim (one sender under the run lock, as on
        SQLite) ignores leases: whoever held them is gone.  Only ids above ``after_id``
        are claimed, so a sender never retries in one run what it deferred.
        """
        now = now.astimezone(UTC)
        candidates = (
            select(deliveries.c.id)
            .where(*queued_after(edition_id, after_id))
            .order_by(deliveries.c.id)
            .limit(limit)
        )
        if not claim.exclusive:
            candidates = candidates.where(
                or_(deliveries.c.claimed_until.is_(None), deliveries.c.claimed_until < now)
            )
        if self.dialect == "postgresql":
            candidates = candidates.with_for_update(skip_locked=True)
        with self._transaction() as conn:
            ids = [row.id for row in conn.execute(candidates)]
            if not ids:
                return []
            conn.execute(
                deliveries.update()
                .where(deliveries.c.id.in_(ids))
                .values(claimed_by=claim.holder, claimed_until=now + claim.lease)
            )
            rows = conn.execute(
                delivery_with_subscriber().where(deliveries.c.id.in_(ids)).order_by(deliveries.c.id)
            ).all()
        return [(delivery_of(row), delivery_subscriber(row)) for row in rows]

    def claims_held(
        self, edition_ids: Sequence[int], *, now: datetime, besides: str
    ) -> list[tuple[str, datetime, int]]:
        """Who else holds a running claim on these editions' queued deliveries:
        (holder, until when at the latest, how many), one row per holder."""
        query = (
            select(deliveries.c.claimed_by, func.max(deliveries.c.claimed_until), func.count())
            .where(
                deliveries.c.edition_id.in_(list(edition_ids)),
                deliveries.c.status == "queued",
                deliveries.c.claimed_by.is_not(None),
                deliveries.c.claimed_by != besides,
                deliveries.c.claimed_until >= now.astimezone(UTC),
            )
            .group_by(deliveries.c.claimed_by)
        )
        with self._transaction() as conn:
            return [(holder, aware(until), count) for holder, until, count in conn.execute(query)]

    def renew_claims(self, holder: str, *, now: datetime, lease: timedelta) -> bool:
        """Extend the lease of every queued delivery ``holder`` claimed (always True: a
        claim another took is no longer this holder's to renew)."""
        with self._transaction() as conn:
            conn.execute(
                deliveries.update()
                .where(deliveries.c.claimed_by == holder, deliveries.c.status == "queued")
                .values(claimed_until=now.astimezone(UTC) + lease)
            )
        return True

    def release_claims(self, holder: str) -> None:
        """Give back the queued deliveries a sender claimed but did not send."""
        with self._transaction() as conn:
            conn.execute(
                deliveries.update()
                .where(deliveries.c.claimed_by == holder, deliveries.c.status == "queued")
                .values(claimed_by=None, claimed_until=None)
            )
