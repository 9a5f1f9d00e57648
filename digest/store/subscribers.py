"""Subscribers and the history of their states.

Whether a change is allowed is the consent rule's to say
(``digest.subscriptions``): the store reads the row, runs the rule it is
given inside the same transaction, and writes what the rule returns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import Connection, bindparam, func, select

from digest.cadence import read_cadence
from digest.events import reader_events
from digest.models import STATES, Subscriber, Topic
from digest.store.base import StoreBase, aware, chunks
from digest.store.events import emit_all
from digest.store.schema import deliveries, subscriber_events, subscribers
from digest.subscribers import email_key

if TYPE_CHECKING:
    from digest.subscriptions import Change

#: A consent rule (``digest.subscriptions.Rule``): the row as stored, now -> what to store.
Rule = Callable[[Subscriber | None, datetime], "Change | None"]


@dataclass(frozen=True)
class SubscriberRow:
    """A subscriber as an operator's list shows them: with when they joined and when
    digest last mailed them."""

    subscriber: Subscriber
    created_at: datetime
    last_sent: datetime | None


class Amended(NamedTuple):
    """One subscriber before and after a rule ran (``after`` None: nothing changed)."""

    before: Subscriber | None
    after: Subscriber | None

    @property
    def subscriber(self) -> Subscriber | None:
        """The subscriber as stored now."""
        return self.after or self.before


@dataclass(frozen=True)
class SubscriberEvent:
    """One change of a subscriber's state, for ``digest subscribers show``."""

    at: datetime
    state: str
    channel: str
    detail: str | None = None


class SubscribersMixin(StoreBase):
    def amend_subscriber(
        self, who: str | int, rule: Rule, *, now: datetime, channel: str
    ) -> Amended:
        """Run a consent rule on one subscriber (an address, or an id) and store its change."""
        where = subscribers.c.id == who if isinstance(who, int) else self._by_address(who)
        with self._transaction() as conn:
            row = conn.execute(select(subscribers).where(where)).first()
            current = subscriber_of(row) if row is not None else None
            moment = now.astimezone(UTC)
            [amended] = apply_rules(
                conn, [(current, rule)], now=moment, channel=channel, newsletter=self.newsletter
            )
        return amended

    def claim_notice(self, subscriber_id: int, *, now: datetime, interval: timedelta) -> bool:
        """Take the right to mail a sign-up notice to this subscriber now: whether no other
        went out within ``interval`` (one statement, so two requests cannot both win)."""
        now = now.astimezone(UTC)
        column = subscribers.c.notice_sent_at
        statement = (
            subscribers.update()
            .where(subscribers.c.id == subscriber_id)
            .where(column.is_(None) | (column <= now - interval))
            .values(notice_sent_at=now)
        )
        with self._transaction() as conn:
            return bool(conn.execute(statement).rowcount)

    def forget_sign_up(self, subscriber_id: int) -> None:
        """Remove a pending row nobody confirmed whose sign-up mail could not go out."""
        pending = select(subscribers.c.id).where(
            subscribers.c.id == subscriber_id, subscribers.c.status == "pending"
        )
        with self._transaction() as conn:
            if conn.execute(pending).first() is not None:
                conn.execute(
                    subscriber_events.delete().where(
                        subscriber_events.c.subscriber_id == subscriber_id
                    )
                )
                conn.execute(subscribers.delete().where(subscribers.c.id == subscriber_id))

    def amend_subscribers(
        self, changes: Sequence[tuple[str, Rule]], *, now: datetime, channel: str
    ) -> list[Amended]:
        """Run a rule per address on many subscribers, in one transaction (an import)."""
        now = now.astimezone(UTC)
        amended: list[Amended] = []
        with self._transaction() as conn:
            for chunk in chunks(changes):
                keys = [email_key(email) for email, _ in chunk]
                query = select(subscribers).where(
                    subscribers.c.email_key.in_(keys), subscribers.c.newsletter == self.newsletter
                )
                stored = {row.email_key: subscriber_of(row) for row in conn.execute(query)}
                pairs = [
                    (stored.get(key), rule) for key, (_, rule) in zip(keys, chunk, strict=True)
                ]
                amended += apply_rules(
                    conn, pairs, now=now, channel=channel, newsletter=self.newsletter
                )
        return amended

    def get_subscriber_by_id(self, subscriber_id: int) -> Subscriber | None:
        """Return a subscriber by id, if any."""
        with self._transaction() as conn:
            row = conn.execute(select(subscribers).where(subscribers.c.id == subscriber_id)).first()
        return subscriber_of(row) if row is not None else None

    def topics_of(self, subscriber_ids: Sequence[int]) -> dict[int, tuple[Topic, ...]]:
        """Each of these readers' own topics (none for a reader who chose none)."""
        found: dict[int, tuple[Topic, ...]] = {}
        with self._transaction() as conn:
            for chunk in chunks(sorted(set(subscriber_ids))):
                rows = conn.execute(select(subscribers).where(subscribers.c.id.in_(chunk)))
                found.update((row.id, subscriber_of(row).topics) for row in rows)
        return found

    def get_subscriber(self, email: str) -> Subscriber | None:
        """Return this newsletter's subscriber with this address (any spelling), if any."""
        with self._transaction() as conn:
            row = conn.execute(select(subscribers).where(self._by_address(email))).first()
        return subscriber_of(row) if row is not None else None

    def subscriptions_of(self, email: str) -> list[Subscriber]:
        """This address's consent in every newsletter (any spelling), by newsletter."""
        query = select(subscribers).where(subscribers.c.email_key == email_key(email))
        with self._transaction() as conn:
            rows = conn.execute(query.order_by(subscribers.c.newsletter)).all()
        return [subscriber_of(row) for row in rows]

    def count_by_newsletter(self) -> dict[str, dict[str, int]]:
        """How many readers each newsletter with any has in each state."""
        query = select(
            subscribers.c.newsletter, subscribers.c.status, subscribers.c.paused, func.count()
        ).group_by(subscribers.c.newsletter, subscribers.c.status, subscribers.c.paused)
        counts: dict[str, dict[str, int]] = {}
        with self._transaction() as conn:
            for newsletter, status, paused, n in conn.execute(query):
                states = counts.setdefault(newsletter, dict.fromkeys(STATES, 0))
                states[Subscriber(0, "", status, paused=bool(paused)).state] += int(n)
        return counts

    def _by_address(self, email: str) -> Any:
        return (subscribers.c.email_key == email_key(email)) & (
            subscribers.c.newsletter == self.newsletter
        )

    def _mine(self, state: str | None) -> list[Any]:
        """The conditions for this newsletter's subscribers in ``state`` (None: any)."""
        return [subscribers.c.newsletter == self.newsletter, *_in_state(state)]

    def changed_subscribers(self, known: Sequence[Subscriber]) -> dict[int, Subscriber]:
        """Those of ``known`` whose rows changed since they were read, as stored now.

        One small query when nothing changed (the usual case), two otherwise.
        """
        stamps = {s.id: s.updated_at for s in known}
        if not stamps:
            return {}
        with self._transaction() as conn:
            query = select(subscribers.c.id, subscribers.c.updated_at)
            rows = conn.execute(query.where(subscribers.c.id.in_(list(stamps))))
            changed = [i for i, at in rows if stamps[i] is None or aware(at) != stamps[i]]
            if not changed:
                return {}
            rows = conn.execute(select(subscribers).where(subscribers.c.id.in_(changed)))
            return {row.id: subscriber_of(row) for row in rows}

    def subscriber_history(self, subscriber_id: int) -> list[SubscriberEvent]:
        """Every recorded change of a subscriber's state, oldest first."""
        query = (
            select(subscriber_events)
            .where(subscriber_events.c.subscriber_id == subscriber_id)
            .order_by(subscriber_events.c.id)
        )
        with self._transaction() as conn:
            return [
                SubscriberEvent(aware(row.at), row.state, row.channel, row.detail)
                for row in conn.execute(query)
            ]

    def iter_subscribers(
        self, *, state: str | None = None, page: int = 1000
    ) -> Iterator[Subscriber]:
        """Yield subscribers in id order, a page at a time, without holding a transaction.

        ``state`` is one of ``models.STATES``: ``active`` leaves out the paused.
        """
        last_id = 0
        while True:
            query = select(subscribers).where(subscribers.c.id > last_id, *self._mine(state))
            with self._transaction() as conn:
                rows = conn.execute(query.order_by(subscribers.c.id).limit(page)).all()
            yield from (subscriber_of(row) for row in rows)
            if len(rows) < page:
                return
            last_id = rows[-1].id

    def find_subscribers(
        self, *, state: str | None = None, search: str = "", offset: int = 0, limit: int = 50
    ) -> tuple[int, list[SubscriberRow]]:
        """A page of subscribers in id order, in one state and with ``search`` in their
        address or name if given; and how many match in all."""
        where = self._mine(state)
        if search.strip():
            pattern = "%" + _like_escaped(search.strip().lower()[:200]) + "%"
            where.append(
                func.lower(subscribers.c.email).like(pattern, escape="\\")
                | func.lower(func.coalesce(subscribers.c.name, "")).like(pattern, escape="\\")
            )
        last_sent = (
            select(func.max(deliveries.c.updated_at))
            .where(deliveries.c.subscriber_id == subscribers.c.id, deliveries.c.status == "sent")
            .scalar_subquery()
        )
        query = (
            select(subscribers, last_sent.label("last_sent"))
            .where(*where)
            .order_by(subscribers.c.id)
            .offset(offset)
            .limit(limit)
        )
        with self._transaction() as conn:
            total = int(
                conn.scalar(select(func.count()).select_from(subscribers).where(*where)) or 0
            )
            rows = conn.execute(query).all()
        return total, [
            SubscriberRow(
                subscriber_of(row),
                aware(row.created_at),
                aware(row.last_sent) if row.last_sent else None,
            )
            for row in rows
        ]

    def count_cadences(self) -> dict[str, int]:
        """How many active readers have each cadence, the most common first."""
        query = (
            select(subscribers.c.cadence, func.count())
            .where(subscribers.c.newsletter == self.newsletter, subscribers.c.status == "active")
            .group_by(subscribers.c.cadence)
        )
        with self._transaction() as conn:
            counts = {cadence: int(n) for cadence, n in conn.execute(query)}
        return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))

    def count_subscribers(self) -> dict[str, int]:
        """Return how many subscribers are in each state, paused ones apart from active."""
        query = (
            select(subscribers.c.status, subscribers.c.paused, func.count())
            .where(*self._mine(None))
            .group_by(subscribers.c.status, subscribers.c.paused)
        )
        counts = dict.fromkeys(STATES, 0)
        with self._transaction() as conn:
            for status, paused, n in conn.execute(query):
                counts[Subscriber(0, "", status, paused=bool(paused)).state] += int(n)
        return counts


def apply_rules(
    conn: Connection,
    pairs: Sequence[tuple[Subscriber | None, Rule]],
    *,
    now: datetime,
    channel: str,
    newsletter: str,
) -> list[Amended]:
    """Run each rule on its subscriber and write the changes: inserts (new readers of
    ``newsletter``), updates, history."""
    results = [(current, rule(current, now)) for current, rule in pairs]
    new = [change for before, change in results if before is None and change is not None]
    ids = _inserted(conn, [c.subscriber for c in new], now, newsletter) if new else {}
    updates = [
        _row(change.subscriber, now) | {"row_id": before.id}
        for before, change in results
        if before is not None and change is not None
    ]
    if updates:
        columns: dict[str, Any] = {n: bindparam(n) for n in updates[0] if n != "row_id"}
        statement = subscribers.update().where(subscribers.c.id == bindparam("row_id"))
        conn.execute(statement.values(columns), updates)
    amended: list[Amended] = []
    events: list[dict[str, Any]] = []
    told: list[tuple[str, dict[str, Any]]] = []
    for before, change in results:
        if change is None:
            amended.append(Amended(before, None))
            continue
        row_id = before.id if before is not None else ids[email_key(change.subscriber.email)]
        home = before.newsletter if before is not None else newsletter
        after = replace(change.subscriber, id=row_id, updated_at=now, newsletter=home)
        amended.append(Amended(before, after))
        told += reader_events(before, after, channel)
        if before is None or before.state != after.state:
            events.append(
                {
                    "subscriber_id": row_id,
                    "at": now,
                    "state": after.state,
                    "channel": channel,
                    "detail": change.detail,
                }
            )
    if events:
        conn.execute(subscriber_events.insert(), events)
    emit_all(conn, told, now=now)
    return amended


def _inserted(
    conn: Connection, new: Sequence[Subscriber], now: datetime, newsletter: str
) -> dict[str, int]:
    """Insert new readers of ``newsletter``; their ids, by address key."""
    rows = [_row(subscriber, now, created=True) | {"newsletter": newsletter} for subscriber in new]
    conn.execute(subscribers.insert(), rows)
    keys = [email_key(subscriber.email) for subscriber in new]
    query = select(subscribers.c.email_key, subscribers.c.id).where(
        subscribers.c.email_key.in_(keys), subscribers.c.newsletter == newsletter
    )
    return dict(conn.execute(query).all())


def _in_state(state: str | None) -> list[Any]:
    """The conditions for subscribers in one of ``models.STATES`` (None: any): an active
    subscriber is either active or paused."""
    if state is None:
        return []
    status = "active" if state == "paused" else state
    where = [subscribers.c.status == status]
    if status == "active":
        where.append(subscribers.c.paused.is_(state == "paused"))
    return where


def _like_escaped(text: str) -> str:
    """``text`` matched literally by LIKE: its wildcards escaped."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _row(subscriber: Subscriber, now: datetime, *, created: bool = False) -> dict[str, Any]:
    row = {
        "email": subscriber.email,
        "email_key": email_key(subscriber.email),
        "name": subscriber.name,
        "status": subscriber.status,
        "topics": topics_json(subscriber.topics),
        "theme": subscriber.theme,
        "timezone": subscriber.timezone,
        "paused": subscriber.paused,
        "explore": subscriber.explore,
        "cadence": str(subscriber.cadence),
        "period_start": subscriber.period_start,
        "updated_at": now,
        "unsubscribed_at": subscriber.unsubscribed_at,
    }
    return row | {"created_at": now} if created else row


def topics_json(topics: Sequence[Topic]) -> list[dict[str, str | None]]:
    """Topics as the ``topics`` column stores them."""
    return [{"query": t.query, "label": t.label} for t in topics]


def subscriber_of(
    row: Any,
    *,
    subscriber_id: int | None = None,
    status: str | None = None,
    updated_at: datetime | None = None,
) -> Subscriber:
    """A subscriber from a row of ``subscribers`` (or of a join, naming its id, status and
    last change)."""
    return Subscriber(
        id=row.id if subscriber_id is None else subscriber_id,
        email=row.email,
        status=row.status if status is None else status,
        name=row.name,
        topics=tuple(Topic(query=t["query"], label=t.get("label")) for t in row.topics or ()),
        theme=row.theme,
        timezone=row.timezone,
        paused=bool(row.paused),
        explore=bool(row.explore),
        cadence=read_cadence(row.cadence),
        period_start=row.period_start,
        unsubscribed_at=aware(row.unsubscribed_at) if row.unsubscribed_at else None,
        updated_at=aware(row.updated_at if updated_at is None else updated_at),
        newsletter=row.newsletter,
    )
