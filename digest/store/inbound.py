"""Bounce scores and what came back (the numbers are ``digest.inbound.policy``'s)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import Connection, func, select

from digest.models import Delivery, InboundRecord
from digest.store.base import StoreBase, aware
from digest.store.deliveries import delivery_of
from digest.store.schema import bounce_scores, deliveries, inbound_events, subscribers
from digest.store.subscribers import Rule, apply_rules, subscriber_of

if TYPE_CHECKING:
    from digest.inbound.policy import BounceScore


class InboundMixin(StoreBase):
    def get_delivery(self, delivery_id: int) -> Delivery | None:
        """One delivery by its id, or None."""
        query = select(deliveries).where(deliveries.c.id == delivery_id)
        with self._transaction() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        return delivery_of(row)

    def bounce_score(self, subscriber_id: int) -> tuple[float, datetime | None, float]:
        """A reader's bounce score: (value, when a bounce last counted, counted that day)."""
        query = select(bounce_scores).where(bounce_scores.c.subscriber_id == subscriber_id)
        with self._transaction() as conn:
            row = conn.execute(query).first()
        if row is None:
            return 0.0, None, 0.0
        return row.value, aware(row.counted_at), row.counted_today

    def save_bounce_score(
        self, subscriber_id: int, *, value: float, counted_at: datetime, counted_today: float
    ) -> None:
        """Keep a reader's bounce score."""
        values = {
            "value": value,
            "counted_at": counted_at.astimezone(UTC),
            "counted_today": counted_today,
        }
        where = bounce_scores.c.subscriber_id == subscriber_id
        with self._transaction() as conn:
            if not conn.execute(bounce_scores.update().where(where).values(values)).rowcount:
                conn.execute(bounce_scores.insert().values(subscriber_id=subscriber_id, **values))

    def record_inbound(self, record: InboundRecord) -> None:
        """Keep what came back, whether it changed anything or not."""
        with self._transaction() as conn:
            _insert_event(conn, record)

    def apply_inbound(
        self,
        record: InboundRecord,
        *,
        score: BounceScore | None,
        rule: Rule | None,
        channel: str,
        everywhere: bool = False,
    ) -> bool:
        """Keep what came back about a reader with its new score (if it changed) and
        its consent rule (if any), in one transaction; whether the reader's state changed.
        With ``everywhere`` the rule applies to the address in every newsletter."""
        subscriber_id = record.subscriber_id
        assert subscriber_id is not None  # what is applied is about a reader
        with self._transaction() as conn:
            if score is not None and score.counted_at is not None:
                values = {
                    "value": score.value,
                    "counted_at": score.counted_at.astimezone(UTC),
                    "counted_today": score.counted_today,
                }
                where = bounce_scores.c.subscriber_id == subscriber_id
                if not conn.execute(bounce_scores.update().where(where).values(values)).rowcount:
                    conn.execute(
                        bounce_scores.insert().values(subscriber_id=subscriber_id, **values)
                    )
            _insert_event(conn, record)
            if rule is None:
                return False
            row = conn.execute(select(subscribers).where(subscribers.c.id == subscriber_id)).first()
            if row is None:
                return False
            same = subscribers.c.id == subscriber_id
            if everywhere:
                same = same | (subscribers.c.email_key == row.email_key)
            rows = conn.execute(select(subscribers).where(same).order_by(subscribers.c.id)).all()
            moment = record.at.astimezone(UTC)
            amended = apply_rules(
                conn,
                [(subscriber_of(r), rule) for r in rows],
                now=moment,
                channel=channel,
                newsletter=row.newsletter,
            )
        return any(a.after is not None and a.after.id == subscriber_id for a in amended)

    def inbound_of(
        self, subscriber_id: int, *, limit: int = 200
    ) -> list[tuple[datetime, str, str]]:
        """What came back about a reader, newest last: (when, kind, detail)."""
        query = (
            select(inbound_events.c.at, inbound_events.c.kind, inbound_events.c.detail)
            .where(inbound_events.c.subscriber_id == subscriber_id)
            .order_by(inbound_events.c.id.desc())
            .limit(limit)
        )
        with self._transaction() as conn:
            rows = conn.execute(query).all()
        return [(aware(r.at), r.kind, r.detail or "") for r in reversed(rows)]

    def inbound_totals(self) -> dict[str, int]:
        """How many messages came back of each kind, ever."""
        query = select(inbound_events.c.kind, func.count()).group_by(inbound_events.c.kind)
        with self._transaction() as conn:
            return {kind: int(n) for kind, n in conn.execute(query)}

    def inbound_counts(self, edition_id: int) -> dict[str, int]:
        """How many of each kind came back about an edition's messages."""
        query = (
            select(inbound_events.c.kind, func.count())
            .where(inbound_events.c.edition_id == edition_id)
            .group_by(inbound_events.c.kind)
        )
        with self._transaction() as conn:
            return {kind: int(count) for kind, count in conn.execute(query)}


def _insert_event(conn: Connection, record: InboundRecord) -> None:
    conn.execute(
        inbound_events.insert().values(
            at=record.at.astimezone(UTC),
            kind=record.kind,
            subscriber_id=record.subscriber_id,
            delivery_id=record.delivery_id,
            edition_id=record.edition_id,
            message_id=record.message_id[:300] or None,
            detail=record.detail[:2000] or None,
        )
    )
