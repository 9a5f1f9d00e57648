"""Deliveries: the outbox of each edition, with leases so that several senders share it.

Each delivery is marked once: a delivery already sent, failed or skipped
never changes again.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import Connection, bindparam, case, func, or_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql import Select

from digest.errors import StorageError
from digest.models import Delivery, Subscriber
from digest.store.base import StoreBase, aware, chunks, first_line
from digest.store.events import emit
from digest.store.schema import DELIVERY_STATES, deliveries, editions, subscribers
from digest.store.subscribers import subscriber_of


class _Mark(NamedTuple):
    """One delivery's outcome, as it is written."""

    delivery_id: int
    status: str
    detail: str
    now: datetime
    message_id: str | None
    period_day: date | None


class DeliveriesMixin(StoreBase):
    def queued_deliveries(
        self, edition_id: int, *, after_id: int = 0, limit: int = 500
    ) -> list[tuple[Delivery, Subscriber]]:
        """Return a page of an edition's queued deliveries with their subscribers, by id."""
        query = (
            delivery_with_subscriber()
            .where(*queued_after(edition_id, after_id))
            .order_by(deliveries.c.id)
            .limit(limit)
        )
        with self._transaction() as conn:
            rows = conn.execute(query).all()
        return [(delivery_of(row), delivery_subscriber(row)) for row in rows]

    def mark_sent(
        self,
        delivery_id: int,
        *,
        message_id: str,
        reply: str,
        now: datetime,
        period_day: date | None = None,
    ) -> None:
        """Record that the server accepted a delivery's message.  ``period_day`` (for a
        weekly or threshold reader) is the day of its edition: their next period begins
        there, recorded in the same transaction."""
        self._mark(
            delivery_id, "sent", detail=reply, message_id=message_id, now=now, period_day=period_day
        )

    def mark_failed(self, delivery_id: int, *, reason: str, now: datetime) -> None:
        """Record that a delivery failed for good (e.g. the server refused the address)."""
        self._mark(delivery_id, "failed", detail=reason, now=now)
        told = {"delivery_id": delivery_id, "reason": reason[:500]}
        with self._transaction() as conn:
            emit(conn, "delivery.failed", told, now=now.astimezone(UTC))

    def mark_skipped(
        self, delivery_id: int, *, reason: str, now: datetime, period_day: date | None = None
    ) -> None:
        """Record that a delivery was not sent on purpose (nothing matched, unsubscribed).
        ``period_day``: a weekly or threshold reader's period closed with nothing to mail,
        and their next one begins on that day (as ``mark_sent`` records it)."""
        self._mark(delivery_id, "skipped", detail=reason, now=now, period_day=period_day)

    def mark_folded(self, folded: Sequence[tuple[int, str]], *, now: datetime) -> None:
        """Record that these deliveries' papers wait for their readers' next emails (their
        cadence), each with its note, in one transaction."""
        if not folded:
            return
        if self.dialect == "sqlite":  # through the driver, as _mark_sqlite says why
            stamp = now.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
            with self._transaction() as conn:
                raw = conn.connection.dbapi_connection
                assert raw is not None
                raw.executemany(
                    _MARK_SQLITE,
                    [
                        ("folded", note[:2000], None, stamp, delivery_id)
                        for delivery_id, note in folded
                    ],
                )
            return
        rows = [
            {
                "delivery_id": delivery_id,
                "new_status": "folded",
                "new_detail": note[:2000],
                "new_message_id": None,
                "now": now.astimezone(UTC),
            }
            for delivery_id, note in folded
        ]
        with self._transaction() as conn:
            conn.execute(_MARK, rows)

    def periods_of(self, readers: Sequence[Subscriber]) -> dict[int, date]:
        """Where each reader's current period begins: the day of the edition they were last
        mailed, or for someone never mailed, the day before they joined.  Kept on the
        reader's row while their cadence gathers; read from the deliveries otherwise."""
        found = {r.id: r.period_start for r in readers if r.period_start is not None}
        unknown = [r.id for r in readers if r.period_start is None]
        return found | self._periods_from_deliveries(unknown) if unknown else found

    def _periods_from_deliveries(self, subscriber_ids: Sequence[int]) -> dict[int, date]:
        last_sent = (
            select(func.max(editions.c.day))
            .join(deliveries, deliveries.c.edition_id == editions.c.id)
            .where(deliveries.c.subscriber_id == subscribers.c.id, deliveries.c.status == "sent")
            .scalar_subquery()
        )
        found: dict[int, date] = {}
        with self._transaction() as conn:
            for some in chunks(list(subscriber_ids)):
                query = select(subscribers.c.id, subscribers.c.created_at, last_sent.label("last"))
                for row in conn.execute(query.where(subscribers.c.id.in_(some))):
                    joined = aware(row.created_at).date() - timedelta(days=1)
                    found[row.id] = row.last or joined
        return found

    def mark_deferred(self, delivery_id: int, *, reason: str, now: datetime) -> None:
        """Record a temporary failure: the delivery stays queued for the next run."""
        self._mark(delivery_id, "queued", detail=reason, now=now)

    def mark_unknown(
        self, delivery_id: int, *, reason: str, max_attempts: int, now: datetime
    ) -> bool:
        """Record a try whose outcome is unknown; after ``max_attempts`` of them the
        delivery is failed, never sent again.  Returns whether it was given up."""
        with self._transaction() as conn:
            tries = conn.scalar(
                select(deliveries.c.unknown_outcomes).where(deliveries.c.id == delivery_id)
            )
            tries = int(tries or 0) + 1
            given_up = tries >= max_attempts
            detail = f"outcome unknown after {tries} attempts: {reason}" if given_up else reason
            conn.execute(
                deliveries.update()
                .where(deliveries.c.id == delivery_id, deliveries.c.status == "queued")
                .values(
                    status="failed" if given_up else "queued",
                    detail=detail[:2000],
                    attempts=deliveries.c.attempts + 1,
                    unknown_outcomes=tries,
                    updated_at=now.astimezone(UTC),
                    claimed_by=None,
                    claimed_until=None,
                )
            )
        return given_up

    def _mark(
        self,
        delivery_id: int,
        status: str,
        *,
        detail: str,
        now: datetime,
        message_id: str | None = None,
        period_day: date | None = None,
    ) -> None:
        # Called once per message at the mail server's pace: one prepared
        # statement on a connection kept by each sending thread, one commit.
        conn = self._thread_connection()
        if self.dialect == "sqlite":
            mark = _Mark(delivery_id, status, detail[:2000], now, message_id, period_day)
            return self._mark_sqlite(conn, mark)
        try:
            with self._one_at_a_time:
                conn.execute(
                    _MARK,
                    {
                        "delivery_id": delivery_id,
                        "new_status": status,
                        "new_detail": detail[:2000],
                        "new_message_id": message_id,
                        "now": now.astimezone(UTC),
                    },
                )
                if period_day is not None:
                    conn.execute(_PERIOD, {"delivery_id": delivery_id, "day": period_day})
                conn.commit()
        except SQLAlchemyError as e:
            conn.rollback()
            raise StorageError(self.url, first_line(e)) from e

    def _mark_sqlite(self, conn: Connection, mark: _Mark) -> None:
        """``_mark`` on SQLite, through the driver itself: SQLAlchemy's execution costs as
        much again as the statement, and this runs while the mail server waits."""
        raw = conn.connection.dbapi_connection
        assert raw is not None
        stamp = mark.now.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")  # SQLAlchemy's form
        values = (mark.status, mark.detail, mark.message_id, stamp, mark.delivery_id)
        try:
            with self._one_at_a_time:
                raw.execute(_MARK_SQLITE, values)
                if mark.period_day is not None:
                    raw.execute(_PERIOD_SQLITE, (mark.period_day.isoformat(), mark.delivery_id))
                raw.commit()
        except sqlite3.Error as e:
            raw.rollback()
            raise StorageError(self.url, first_line(e)) from e

    def resend_delivery(
        self, edition_id: int, subscriber_id: int, *, now: datetime
    ) -> Delivery | None:
        """Queue a reader's copy of an edition again, on purpose: its next message is a
        new one (``resends`` goes into its Message-ID).  A reader the edition never
        planned for gets a delivery made now.  None when it is still queued."""
        now = now.astimezone(UTC)
        where = (deliveries.c.edition_id == edition_id, deliveries.c.subscriber_id == subscriber_id)
        again = {
            "status": "queued",
            "detail": "queued again by the operator",
            "updated_at": now,
            "resends": deliveries.c.resends + 1,
            "resent_at": now,
            "unknown_outcomes": 0,
            "claimed_by": None,
            "claimed_until": None,
        }
        with self._transaction() as conn:
            updated = conn.execute(
                deliveries.update().where(*where, deliveries.c.status != "queued").values(again)
            )
            if not updated.rowcount:
                if conn.scalar(select(func.count()).where(*where)):
                    return None  # queued: its next message is the first
                conn.execute(
                    deliveries.insert().values(
                        edition_id=edition_id,
                        subscriber_id=subscriber_id,
                        attempts=0,
                        **again | {"resends": 1},
                    )
                )
            return delivery_of(conn.execute(select(deliveries).where(*where)).one())

    def count_queued(
        self, edition_ids: Sequence[int], *, unclaimed_at: datetime | None = None
    ) -> int:
        """Return how many deliveries of these editions are still queued.

        With ``unclaimed_at``, those another sender holds at that time are not counted.
        """
        query = select(func.count()).where(
            deliveries.c.status == "queued", deliveries.c.edition_id.in_(list(edition_ids))
        )
        if unclaimed_at is not None:
            query = query.where(
                or_(
                    deliveries.c.claimed_until.is_(None),
                    deliveries.c.claimed_until < unclaimed_at.astimezone(UTC),
                )
            )
        with self._transaction() as conn:
            return int(conn.scalar(query) or 0)

    def expire_queued(self, *, created_before: datetime, reason: str, now: datetime) -> int:
        """Mark failed the queued deliveries of editions created before a time (a resend:
        queued again before it); count them."""
        before = created_before.astimezone(UTC)
        old = select(editions.c.id).where(editions.c.created_at < before)
        with self._transaction() as conn:
            result = conn.execute(
                deliveries.update()
                .where(
                    deliveries.c.status == "queued",
                    deliveries.c.edition_id.in_(old),
                    or_(deliveries.c.resent_at.is_(None), deliveries.c.resent_at < before),
                )
                .values(status="failed", detail=reason, updated_at=now.astimezone(UTC))
            )
        return int(result.rowcount or 0)

    def delivery_totals(self) -> dict[tuple[str, str], int]:
        """How many deliveries of every edition are in each state, by newsletter."""
        query = (
            select(editions.c.newsletter, deliveries.c.status, func.count())
            .join(editions, editions.c.id == deliveries.c.edition_id)
            .group_by(editions.c.newsletter, deliveries.c.status)
        )
        with self._transaction() as conn:
            return {(newsletter, status): int(n) for newsletter, status, n in conn.execute(query)}

    def delivery_counts(self, edition_id: int) -> dict[str, int]:
        """Return how many of an edition's deliveries are in each state."""
        query = (
            select(deliveries.c.status, func.count())
            .where(deliveries.c.edition_id == edition_id)
            .group_by(deliveries.c.status)
        )
        with self._transaction() as conn:
            counts = {status: int(n) for status, n in conn.execute(query)}
        return {status: counts.get(status, 0) for status in DELIVERY_STATES}

    def failures(self, edition_id: int, *, limit: int = 50) -> list[tuple[str, str]]:
        """Return (address, reason) for an edition's failed deliveries."""
        query = (
            select(subscribers.c.email, deliveries.c.detail)
            .join(subscribers, subscribers.c.id == deliveries.c.subscriber_id)
            .where(deliveries.c.edition_id == edition_id, deliveries.c.status == "failed")
            .order_by(deliveries.c.id)
            .limit(limit)
        )
        with self._transaction() as conn:
            return [(row.email, row.detail or "") for row in conn.execute(query)]

    def list_deliveries(self, edition_id: int, *, status: str | None = None) -> list[Delivery]:
        """Return an edition's deliveries, optionally in one state, by id."""
        query = select(deliveries).where(deliveries.c.edition_id == edition_id)
        if status is not None:
            query = query.where(deliveries.c.status == status)
        with self._transaction() as conn:
            return [delivery_of(row) for row in conn.execute(query.order_by(deliveries.c.id))]

    def deliveries_of(self, subscriber_id: int, *, limit: int = 60) -> list[tuple[date, Delivery]]:
        """A reader's deliveries with their editions' days, newest first."""
        query = (
            select(editions.c.day, deliveries)
            .join(editions, editions.c.id == deliveries.c.edition_id)
            .where(deliveries.c.subscriber_id == subscriber_id)
            .order_by(editions.c.day.desc(), deliveries.c.id.desc())
            .limit(limit)
        )
        with self._transaction() as conn:
            return [(row.day, delivery_of(row)) for row in conn.execute(query)]


# Only a queued delivery changes: a delivery already marked is never marked again.
_MARK = (
    deliveries.update()
    .where(deliveries.c.id == bindparam("delivery_id"), deliveries.c.status == "queued")
    .values(
        status=bindparam("new_status"),
        detail=bindparam("new_detail"),
        message_id=func.coalesce(bindparam("new_message_id"), deliveries.c.message_id),
        attempts=deliveries.c.attempts + 1,
        updated_at=bindparam("now"),
        # Whatever the outcome the claim ends: a deferred delivery is free again.
        claimed_by=None,
        claimed_until=None,
    )
)


#: ``_MARK`` as SQLite runs it (a test checks that both record the same).
_MARK_SQLITE = (
    "UPDATE deliveries SET status = ?, detail = ?, message_id = coalesce(?, message_id), "
    "attempts = attempts + 1, updated_at = ?, claimed_by = NULL, claimed_until = NULL "
    "WHERE id = ? AND status = 'queued'"
)


# A weekly or threshold reader's period closed with an edition (mailed, or with nothing
# to mail): their next period begins on its day, never earlier.
_PERIOD = (
    subscribers.update()
    .where(
        subscribers.c.id
        == select(deliveries.c.subscriber_id)
        .where(deliveries.c.id == bindparam("delivery_id"))
        .scalar_subquery()
    )
    .values(
        period_start=case(
            (subscribers.c.period_start > bindparam("day"), subscribers.c.period_start),
            else_=bindparam("day"),
        )
    )
)

_PERIOD_SQLITE = (
    "UPDATE subscribers SET period_start = max(coalesce(period_start, ?1), ?1) "
    "WHERE id = (SELECT subscriber_id FROM deliveries WHERE id = ?2)"
)


def queued_after(edition_id: int, after_id: int) -> tuple[Any, ...]:
    return (
        deliveries.c.edition_id == edition_id,
        deliveries.c.status == "queued",
        deliveries.c.id > after_id,
    )


def delivery_with_subscriber() -> Select[Any]:
    return select(
        deliveries,
        subscribers.c.email,
        subscribers.c.status.label("subscriber_status"),
        subscribers.c.name,
        subscribers.c.topics,
        subscribers.c.theme,
        subscribers.c.timezone,
        subscribers.c.paused,
        subscribers.c.explore,
        subscribers.c.cadence,
        subscribers.c.period_start,
        subscribers.c.unsubscribed_at,
        subscribers.c.updated_at.label("subscriber_updated_at"),
        subscribers.c.newsletter,
    ).join(subscribers, subscribers.c.id == deliveries.c.subscriber_id)


def delivery_of(row: Any) -> Delivery:
    return Delivery(
        id=row.id,
        edition_id=row.edition_id,
        subscriber_id=row.subscriber_id,
        status=row.status,
        attempts=row.attempts,
        message_id=row.message_id,
        detail=row.detail,
        resends=row.resends,
    )


def delivery_subscriber(row: Any) -> Subscriber:
    return subscriber_of(
        row,
        subscriber_id=row.subscriber_id,
        status=row.subscriber_status,
        updated_at=row.subscriber_updated_at,
    )
