"""Events and the webhooks' outbox: each event kept with the change it tells of, and
each webhook's copy of it tried until its endpoint takes it (at least once)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from sqlalchemy import Connection, func, insert, literal, select
from sqlalchemy.exc import IntegrityError

from digest.store.base import StoreBase, aware
from digest.store.schema import events, webhook_cursors, webhook_deliveries


@dataclass(frozen=True)
class Outgoing:
    """One webhook's copy of one event, due to be tried."""

    event: int
    event_id: str
    type: str
    data: dict[str, Any]
    at: datetime
    attempts: int


@dataclass(frozen=True)
class WebhookState:
    """A webhook's copies: how many wait, how many were given up, the last attempts."""

    waiting: int
    given_up: int
    last: list[tuple[datetime, str, str]]


def emit(
    conn: Connection, kind: str, data: dict[str, Any], *, now: datetime, once: str | None = None
) -> None:
    """Keep an event, in the caller's transaction (``once``: never a second one so)."""
    if once is not None:
        exists = select(events.c.id).where(events.c.once == once)
        if conn.execute(exists).first() is not None:
            return
    emit_all(conn, [(kind, data)], now=now, once=once)


def emit_all(
    conn: Connection,
    told: Sequence[tuple[str, dict[str, Any]]],
    *,
    now: datetime,
    once: str | None = None,
) -> None:
    """Keep several events in one statement, in the caller's transaction."""
    if told:
        rows = [
            {"event_id": f"msg_{uuid4().hex}", "type": k, "data": d, "at": now, "once": once}
            for k, d in told
        ]
        conn.execute(events.insert(), rows)


class EventsMixin(StoreBase):
    def emit_once(self, kind: str, data: dict[str, Any], *, key: str, now: datetime) -> None:
        """Keep an event told once only (another process may have told it: nothing)."""
        try:
            with self._transaction() as conn:
                emit(conn, kind, data, now=now.astimezone(UTC), once=key)
        except IntegrityError:
            pass  # told by another sender at the same moment

    def fan_out(self, webhook: str, kinds: Sequence[str], *, now: datetime) -> int:
        """Give a webhook its copy of each event it asks for since it last was; a new
        webhook starts from now.  How many copies were made."""
        now = now.astimezone(UTC)
        with self._transaction() as conn:
            newest = int(conn.scalar(select(func.max(events.c.id))) or 0)
            where = webhook_cursors.c.webhook == webhook
            cursor = conn.scalar(select(webhook_cursors.c.last_event).where(where))
            if cursor is None:
                conn.execute(webhook_cursors.insert().values(webhook=webhook, last_event=newest))
                return 0
            wanted = select(
                literal(webhook), events.c.id, literal(0), literal(now, events.c.at.type)
            ).where(events.c.id > cursor, events.c.id <= newest, events.c.type.in_(list(kinds)))
            made = conn.execute(
                insert(webhook_deliveries).from_select(
                    ["webhook", "event", "attempts", "next_at"], wanted
                )
            ).rowcount
            conn.execute(webhook_cursors.update().where(where).values(last_event=newest))
        return int(made or 0)

    def due_webhook(self, webhook: str, *, now: datetime, limit: int = 50) -> list[Outgoing]:
        """A webhook's copies due to be tried, oldest event first."""
        query = (
            select(webhook_deliveries.c.attempts, events)
            .join(events, events.c.id == webhook_deliveries.c.event)
            .where(
                webhook_deliveries.c.webhook == webhook,
                webhook_deliveries.c.done_at.is_(None),
                webhook_deliveries.c.given_up.is_(False),
                webhook_deliveries.c.next_at <= now.astimezone(UTC),
            )
            .order_by(events.c.id)
            .limit(limit)
        )
        with self._transaction() as conn:
            rows = conn.execute(query).all()
        return [Outgoing(r.id, r.event_id, r.type, r.data, aware(r.at), r.attempts) for r in rows]

    def webhook_tried(
        self,
        webhook: str,
        event: int,
        *,
        status: str,
        now: datetime,
        retry_in: timedelta | None,
    ) -> None:
        """Record an attempt: taken (``retry_in`` None and a 2xx), tried again after
        ``retry_in``, or given up (``retry_in`` None otherwise)."""
        now = now.astimezone(UTC)
        taken = status.startswith("2")
        values: dict[str, Any] = {
            "attempts": webhook_deliveries.c.attempts + 1,
            "last_status": status[:300],
            "last_at": now,
        }
        if taken:
            values["done_at"] = now
        elif retry_in is None:
            values["given_up"] = True
        else:
            values["next_at"] = now + retry_in
        where = (webhook_deliveries.c.webhook == webhook) & (webhook_deliveries.c.event == event)
        with self._transaction() as conn:
            conn.execute(webhook_deliveries.update().where(where).values(values))

    def webhook_state(self, webhook: str, *, last: int = 5) -> WebhookState:
        """How a webhook is doing: copies waiting, given up, and the last attempts."""
        mine = webhook_deliveries.c.webhook == webhook
        open_ = mine & webhook_deliveries.c.done_at.is_(None)
        with self._transaction() as conn:
            waiting = conn.scalar(
                select(func.count()).where(open_, webhook_deliveries.c.given_up.is_(False))
            )
            given_up = conn.scalar(
                select(func.count()).where(open_, webhook_deliveries.c.given_up.is_(True))
            )
            rows = conn.execute(
                select(
                    webhook_deliveries.c.last_at, webhook_deliveries.c.last_status, events.c.type
                )
                .join(events, events.c.id == webhook_deliveries.c.event)
                .where(mine, webhook_deliveries.c.last_at.is_not(None))
                .order_by(webhook_deliveries.c.last_at.desc())
                .limit(last)
            ).all()
        return WebhookState(
            int(waiting or 0),
            int(given_up or 0),
            [(aware(r.last_at), r.type, r.last_status or "") for r in rows],
        )
