"""The one module that owns the SQL: entries (the seen-list), and later subscribers,
editions and deliveries.

Storage makes no product decisions beyond identity bookkeeping.  It goes
through SQLAlchemy Core; backend-specific SQL stays here.  Every SQLAlchemy
error is wrapped in ``StorageError`` at this boundary.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    Date,
    DateTime,
    Engine,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    bindparam,
    create_engine,
    event,
    func,
    insert,
    inspect,
    literal,
    or_,
    select,
    text,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, SQLAlchemyError
from sqlalchemy.sql import Select

from digest.errors import StorageError
from digest.ingest.dedupe import Known, dedupe
from digest.models import (
    Delivery,
    Edition,
    Entry,
    StoredEntry,
    Subscriber,
    Topic,
)
from digest.subscribers import SubscriberInput, email_key
from digest.subscriptions import (
    STATES,
    ConsentRefused,
    SignUp,
    State,
    may_confirm,
    named,
    operator_add,
    sign_up,
    state_of,
)

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig
    from alembic.script import ScriptDirectory

#: The Alembic revision of the schema below; a test checks it is the newest migration.
SCHEMA_REVISION = "0004"

metadata = MetaData()

entries = Table(
    "entries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # arxiv:<id> or title:<normalised title>: see digest.identity.
    Column("fingerprint", String(600), nullable=False, unique=True),
    Column("arxiv_id", String(40), unique=True),
    Column("title_key", String(600), nullable=False, index=True),
    Column("title", Text, nullable=False),
    Column("abstract", Text, nullable=False),
    Column("authors", JSON, nullable=False),
    Column("url", Text),
    Column("pdf_url", Text),
    Column("hf_url", Text),
    Column("categories", JSON, nullable=False),
    Column("upvotes", Integer),
    Column("published", Date),
    Column("source", String(200), nullable=False),
    Column("first_seen", DateTime(timezone=True), nullable=False, index=True),
    # The edition that carried this entry; NULL until an edition takes it.
    Column("edition_id", Integer, ForeignKey("editions.id"), index=True),
)

editions = Table(
    "editions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("day", Date, nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("entry_count", Integer, nullable=False),
)

DELIVERY_STATES = ("queued", "sent", "failed", "skipped")

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("edition_id", Integer, ForeignKey("editions.id"), nullable=False),
    Column("subscriber_id", Integer, ForeignKey("subscribers.id"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    # Tries that were sent but never answered: the message may have arrived.
    Column("unknown_outcomes", Integer, nullable=False, default=0, server_default="0"),
    Column("message_id", String(300)),
    # The server's reply for a sent message, or why it failed or was skipped.
    Column("detail", Text),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # A sender's lease on a queued delivery, so that several can share a queue.
    Column("claimed_by", String(300)),
    Column("claimed_until", DateTime(timezone=True)),
    UniqueConstraint("edition_id", "subscriber_id", name="one_delivery_per_edition"),
    Index("deliveries_by_state", "edition_id", "status", "id"),
)

subscribers = Table(
    "subscribers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("email", String(320), nullable=False),
    # The address case-folded: two spellings of one mailbox are one subscriber.
    Column("email_key", String(320), nullable=False, unique=True),
    Column("name", String(200)),
    Column("status", String(16), nullable=False, index=True),
    Column("topics", JSON, nullable=False),
    Column("theme", String(64)),
    Column("timezone", String(64)),
    # A paused subscriber stays active but gets no editions until resumed.
    Column("paused", Boolean, nullable=False, default=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("unsubscribed_at", DateTime(timezone=True)),
)

# Every change of a subscriber's state: when, to what, through which channel.
subscriber_events = Table(
    "subscriber_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("subscriber_id", Integer, ForeignKey("subscribers.id"), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("state", String(16), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("detail", Text),
    Index("subscriber_events_by_subscriber", "subscriber_id", "id"),
)

# Per source, what its server said identifies the version it last sent (conditional GET).
source_state = Table(
    "source_state",
    metadata,
    Column("source", String(200), primary_key=True),
    Column("etag", Text),
    Column("last_modified", Text),
    Column("fetched_at", DateTime(timezone=True), nullable=False),
)

# One row: this installation's random id, made with the database.
installation = Table(
    "installation",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# One row per named lock: who holds it and until when (a lease, renewed while
# the holder works), so that one run at a time works across machines on any
# backend.
locks = Table(
    "locks",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(300), nullable=False),
    Column("acquired_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("holder", String(300), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False, index=True),
    Column("finished_at", DateTime(timezone=True)),
    # running, ok, partial (some failed or queued), interrupted, error
    Column("outcome", String(16), nullable=False),
    Column("summary", Text),
)


@dataclass(frozen=True)
class RunRecord:
    """A past or current run, for ``digest status``."""

    id: int
    holder: str
    started_at: datetime
    finished_at: datetime | None
    outcome: str
    summary: str | None


@dataclass(frozen=True)
class AddResult:
    """How many of a batch of entries were new and how many already seen."""

    new: int
    seen: int
    #: The new entries themselves (as they were or would be stored).
    fresh: tuple[Entry, ...] = ()


@dataclass(frozen=True)
class ImportResult:
    """What a bulk import did: rows created, rows updated, unsubscribed rows kept so,
    and the addresses refused because they left (their rows untouched)."""

    created: int = 0
    updated: int = 0
    kept_unsubscribed: int = 0
    refused: tuple[str, ...] = ()


@dataclass(frozen=True)
class SubscriberEvent:
    """One change of a subscriber's state, for ``digest subscribers show``."""

    at: datetime
    state: str
    channel: str
    detail: str | None = None


class Store:
    """Access to digest's database; open it with ``Store.open(url)``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.url = engine.url.render_as_string(hide_password=True)
        self._local = threading.local()
        self._connections: list[Connection] = []
        self._connections_lock = threading.Lock()
        # SQLite has one writer at a time and makes a waiting writer sleep
        # (1 ms, then 2, then 5...): this process's threads queue here instead
        # and go on the moment the database is free.
        self._installation: str | None = None
        self._one_at_a_time: AbstractContextManager[Any] = (
            threading.RLock() if engine.dialect.name == "sqlite" else nullcontext()
        )

    @classmethod
    def open(cls, url: str, *, upgrade: bool = False, create_folder: bool = False) -> Store:
        """Connect; an empty database gets the schema, an outdated one is refused.

        With ``upgrade`` an outdated schema is migrated instead (``digest db
        upgrade``).  An SQLite file's folder must exist, so that a typo never
        looks like an empty installation; ``create_folder`` makes it.
        """
        try:
            parsed = make_url(url)
        except ArgumentError as e:
            raise StorageError(url, "not a database URL") from e
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
            folder = Path(parsed.database).expanduser().parent
            if create_folder:
                folder.mkdir(parents=True, exist_ok=True)
            elif not folder.is_dir():
                raise StorageError(url, f"the folder {folder} does not exist")
        try:
            engine = create_engine(parsed, pool_pre_ping=True)
        except (ArgumentError, ImportError) as e:
            raise StorageError(url, f"cannot use this database: {e}") from e
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _configure_sqlite)
        store = cls(engine)
        try:
            store._check_schema(upgrade=upgrade)
        except BaseException:
            engine.dispose()
            raise
        return store

    @property
    def installation_id(self) -> str:
        """This installation's random id, made with its database (it never changes)."""
        if self._installation is None:
            with self._transaction() as conn:
                self._installation = str(conn.scalar(select(installation.c.id)))
        return self._installation

    @property
    def dialect(self) -> str:
        """The backend's name: sqlite or postgresql."""
        return self.engine.dialect.name

    def close(self) -> None:
        """Release every connection."""
        with self._connections_lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self.engine.dispose()

    @contextmanager
    def _transaction(self, *, rollback: bool = False) -> Iterator[Connection]:
        """A transaction that commits, or with ``rollback`` always rolls back (dry runs)."""
        try:
            with self._one_at_a_time, self.engine.connect() as conn:
                transaction = conn.begin()
                try:
                    yield conn
                except BaseException:
                    transaction.rollback()
                    raise
                if rollback:
                    transaction.rollback()
                else:
                    transaction.commit()
        except SQLAlchemyError as e:
            raise StorageError(self.url, _first_line(e)) from e

    # -- schema

    def schema_revision(self) -> str | None:
        """Return the Alembic revision the database is at (None: no schema yet)."""
        with self._transaction() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return None
            revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        return str(revision) if revision is not None else None

    def _check_schema(self, *, upgrade: bool) -> None:
        current = self.schema_revision()
        if current == SCHEMA_REVISION:
            return  # the usual case, without loading Alembic
        head = _migrations().get_current_head()
        known = {script.revision for script in _migrations().walk_revisions()}
        if current is not None and current not in known:
            raise StorageError(
                self.url,
                f"schema revision {current} is newer than this digest knows ({head})",
                hint="upgrade digest before using this database",
            )
        if current is not None and not upgrade:
            raise StorageError(
                self.url,
                f"schema revision {current} is out of date (this digest needs {head})",
                hint="run 'digest db upgrade' (back the database up first)",
            )
        self.upgrade()

    def upgrade(self) -> None:
        """Apply every pending migration (an empty database gets the whole schema)."""
        from alembic import command

        try:
            with self.engine.begin() as conn:
                config = _alembic_config()
                config.attributes["connection"] = conn
                command.upgrade(config, "head")
        except SQLAlchemyError as e:
            raise StorageError(self.url, f"migration failed: {_first_line(e)}") from e

    # -- entries (the seen-list)

    def add_entries(
        self, batch: Sequence[Entry], *, source: str, now: datetime, dry_run: bool = False
    ) -> AddResult:
        """Store the entries not seen before, in one transaction; count new and seen.

        Which entries are new, and which fill in a stored one, is
        ``digest.ingest.dedupe``'s decision; here it is read and written.  With
        ``dry_run`` nothing is kept.
        """
        now = now.astimezone(UTC)
        with self._transaction(rollback=dry_run) as conn:
            decided = dedupe(batch, *self._known(conn, batch))
            for row_id, fillers in decided.enrich.items():
                self._enrich(conn, row_id, fillers)
            if decided.fresh:
                rows = [_row_of(e, source=source, now=now) for e in decided.fresh]
                conn.execute(entries.insert(), rows)
        return AddResult(new=len(decided.fresh), seen=decided.seen, fresh=decided.fresh)

    def _known(
        self, conn: Connection, batch: Sequence[Entry]
    ) -> tuple[dict[str, int], dict[str, Known]]:
        ids = sorted({e.arxiv_id for e in batch if e.arxiv_id})
        keys = sorted({e.title_key for e in batch})
        by_id: dict[str, int] = {}
        by_title: dict[str, Known] = {}
        for chunk in _chunks(ids, 500):
            query = select(entries.c.arxiv_id, entries.c.id).where(entries.c.arxiv_id.in_(chunk))
            by_id.update({row.arxiv_id: row.id for row in conn.execute(query)})
        for chunk in _chunks(keys, 500):
            query = select(entries.c.title_key, entries.c.id, entries.c.arxiv_id).where(
                entries.c.title_key.in_(chunk)
            )
            for row in conn.execute(query):
                by_title.setdefault(row.title_key, (row.id, row.arxiv_id))
        return by_id, by_title

    def _enrich(self, conn: Connection, row_id: int, fillers: Sequence[Entry]) -> None:
        stored = _stored_entry(conn.execute(select(entries).where(entries.c.id == row_id)).one())
        filled = stored.entry
        for entry in fillers:
            filled = filled.filled_from(entry)
        row = _row_of(filled, source=stored.source, now=stored.first_seen)
        conn.execute(entries.update().where(entries.c.id == row_id).values(**row))

    def source_validators(self, source: str) -> tuple[str | None, str | None]:
        """The ETag and Last-Modified a source's server last sent (None, None: never)."""
        query = select(source_state.c.etag, source_state.c.last_modified).where(
            source_state.c.source == source
        )
        with self._transaction() as conn:
            row = conn.execute(query).first()
        return (row.etag, row.last_modified) if row is not None else (None, None)

    def save_source_validators(
        self, source: str, *, etag: str | None, last_modified: str | None, now: datetime
    ) -> None:
        """Remember what identifies the version of a source just stored."""
        values = {"etag": etag, "last_modified": last_modified, "fetched_at": now.astimezone(UTC)}
        with self._transaction() as conn:
            updated = conn.execute(
                source_state.update().where(source_state.c.source == source).values(values)
            )
            if not updated.rowcount:
                conn.execute(source_state.insert().values(source=source, **values))

    def count_entries(self) -> int:
        """Return how many distinct papers the seen-list holds."""
        with self._transaction() as conn:
            return int(conn.scalar(select(func.count()).select_from(entries)) or 0)

    def list_entries(
        self, *, since: datetime | None = None, until: datetime | None = None
    ) -> list[StoredEntry]:
        """Return stored entries in first-seen order, optionally first seen in [since, until)."""
        query = select(entries).order_by(entries.c.first_seen, entries.c.id)
        if since is not None:
            query = query.where(entries.c.first_seen >= since.astimezone(UTC))
        if until is not None:
            query = query.where(entries.c.first_seen < until.astimezone(UTC))
        with self._transaction() as conn:
            return [_stored_entry(row) for row in conn.execute(query)]

    # -- subscribers

    def subscribe(
        self, item: SubscriberInput, *, now: datetime, channel: str = "cli"
    ) -> tuple[Subscriber, bool]:
        """Add or update a subscriber for an operator; say whether it is new.

        The state follows ``subscriptions.operator_add``: someone who left
        raises ``ConsentRefused`` and their row is left exactly as it is.
        """
        now = now.astimezone(UTC)
        with self._transaction() as conn:
            row = self._subscriber_row(conn, item.email)
            current = _subscriber(row) if row is not None else None
            state = operator_add(current, item.status)
            if current is None:
                subscriber = self._insert_subscriber(conn, item, state, now=now)
                self._record(conn, subscriber.id, state.name, channel, now)
                return subscriber, True
            changes = _field_changes(item) | {"email": item.email}
            self._change(conn, current, state, channel, now, changes)
            stored = self._subscriber_row(conn, item.email)
        return _subscriber(stored), False

    def request_subscription(
        self, item: SubscriberInput, *, now: datetime, channel: str = "web"
    ) -> tuple[Subscriber, SignUp]:
        """Record a sign-up (web form or invite) as ``subscriptions.sign_up`` says.

        A new or pending address becomes ``pending`` with these choices; an
        active one, and one that left, are left exactly as they are (a
        stranger must not change someone's topics, nor bring back someone
        who left): only the confirmation link can.
        """
        now = now.astimezone(UTC)
        with self._transaction() as conn:
            row = self._subscriber_row(conn, item.email)
            current = _subscriber(row) if row is not None else None
            decision = sign_up(current)
            if current is None and decision.store is not None:
                subscriber = self._insert_subscriber(conn, item, decision.store, now=now)
                self._record(conn, subscriber.id, "pending", channel, now)
                return subscriber, decision
            assert current is not None
            if decision.store is not None:
                self._change(conn, current, decision.store, channel, now, _field_changes(item))
                current = _subscriber(self._subscriber_row(conn, item.email))
        return current, decision

    def confirm_subscriber(
        self,
        subscriber_id: int,
        *,
        left_at: str | None,
        topics: Sequence[Topic] | None,
        theme: str | None,
        now: datetime,
    ) -> bool:
        """Activate a subscriber whose confirmation link ``subscriptions.may_confirm`` accepts.

        ``topics`` and ``theme`` are what a returning reader asked for (None
        keeps the stored ones).  Returns whether the subscriber is active now.
        """
        now = now.astimezone(UTC)
        with self._transaction() as conn:
            row = conn.execute(select(subscribers).where(subscribers.c.id == subscriber_id)).first()
            if row is None:
                return False
            current = _subscriber(row)
            if not may_confirm(current, left_at):
                return current.status == "active"
            changes: dict[str, Any] = {}
            if topics is not None:
                changes["topics"] = _topics_json(topics)
            if theme is not None:
                changes["theme"] = theme
            detail = "opted in again" if current.status == "unsubscribed" else "confirmed"
            self._change(conn, current, State("active"), "confirm", now, changes, detail=detail)
        return True

    def get_subscriber_by_id(self, subscriber_id: int) -> Subscriber | None:
        """Return a subscriber by id, if any."""
        with self._transaction() as conn:
            row = conn.execute(select(subscribers).where(subscribers.c.id == subscriber_id)).first()
        return _subscriber(row) if row is not None else None

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
            changed = [i for i, at in rows if stamps[i] is None or _aware(at) != stamps[i]]
            if not changed:
                return {}
            rows = conn.execute(select(subscribers).where(subscribers.c.id.in_(changed)))
            return {row.id: _subscriber(row) for row in rows}

    def update_preferences(
        self,
        subscriber_id: int,
        *,
        topics: Sequence[Topic],
        theme: str | None,
        timezone: str | None,
        paused: bool,
        now: datetime,
    ) -> None:
        """Save what a subscriber chose on their preferences page."""
        now = now.astimezone(UTC)
        with self._transaction() as conn:
            row = conn.execute(select(subscribers).where(subscribers.c.id == subscriber_id)).first()
            if row is None:
                return
            current = _subscriber(row)
            state = State(current.status, paused if current.status == "active" else current.paused)
            changes = {"topics": _topics_json(topics), "theme": theme, "timezone": timezone}
            self._change(conn, current, state, "preferences", now, changes)

    def set_paused(
        self, email: str, *, paused: bool, now: datetime, channel: str = "cli"
    ) -> Subscriber | None:
        """Pause or resume an active subscriber; None when the address is unknown."""
        now = now.astimezone(UTC)
        with self._transaction() as conn:
            row = self._subscriber_row(conn, email)
            if row is None:
                return None
            current = _subscriber(row)
            if current.status == "active":
                self._change(conn, current, State("active", paused), channel, now, {})
            return _subscriber(self._subscriber_row(conn, email))

    def unsubscribe_by_id(self, subscriber_id: int, *, now: datetime, channel: str) -> bool:
        """Unsubscribe by id (from a signed link); False when there is no such subscriber."""
        subscriber = self.get_subscriber_by_id(subscriber_id)
        if subscriber is None:
            return False
        self.unsubscribe(subscriber.email, now=now, channel=channel)
        return True

    def unsubscribe(self, email: str, *, now: datetime, channel: str) -> Subscriber | None:
        """Mark a subscriber unsubscribed (the row stays); None when the address is unknown."""
        now = now.astimezone(UTC)
        with self._transaction() as conn:
            row = self._subscriber_row(conn, email)
            if row is None:
                return None
            self._change(conn, _subscriber(row), State("unsubscribed"), channel, now, {})
            return _subscriber(self._subscriber_row(conn, email))

    def subscriber_history(self, subscriber_id: int) -> list[SubscriberEvent]:
        """Every recorded change of a subscriber's state, oldest first."""
        query = (
            select(subscriber_events)
            .where(subscriber_events.c.subscriber_id == subscriber_id)
            .order_by(subscriber_events.c.id)
        )
        with self._transaction() as conn:
            return [
                SubscriberEvent(_aware(row.at), row.state, row.channel, row.detail)
                for row in conn.execute(query)
            ]

    def get_subscriber(self, email: str) -> Subscriber | None:
        """Return the subscriber with this address (any spelling of it), if any."""
        with self._transaction() as conn:
            row = self._subscriber_row(conn, email)
        return _subscriber(row) if row is not None else None

    def iter_subscribers(
        self, *, state: str | None = None, page: int = 1000
    ) -> Iterator[Subscriber]:
        """Yield subscribers in id order, a page at a time, without holding a transaction.

        ``state`` is one of ``subscriptions.STATES``: ``active`` leaves out the paused.
        """
        last_id = 0
        while True:
            query = select(subscribers).where(subscribers.c.id > last_id)
            if state is not None:
                wanted = named(state)
                query = query.where(subscribers.c.status == wanted.status)
                if wanted.status == "active":
                    query = query.where(subscribers.c.paused.is_(wanted.paused))
            with self._transaction() as conn:
                rows = conn.execute(query.order_by(subscribers.c.id).limit(page)).all()
            yield from (_subscriber(row) for row in rows)
            if len(rows) < page:
                return
            last_id = rows[-1].id

    def count_subscribers(self) -> dict[str, int]:
        """Return how many subscribers are in each state, paused ones apart from active."""
        query = select(subscribers.c.status, subscribers.c.paused, func.count()).group_by(
            subscribers.c.status, subscribers.c.paused
        )
        counts = dict.fromkeys(STATES, 0)
        with self._transaction() as conn:
            for status, paused, n in conn.execute(query):
                counts[State(status, bool(paused)).name] += int(n)
        return counts

    def import_subscribers(
        self, items: Sequence[SubscriberInput], *, now: datetime
    ) -> ImportResult:
        """Insert or update many subscribers in one transaction, as an operator.

        Each row's state follows ``subscriptions.operator_add``: an address
        that left is never brought back; its row is left exactly as it is
        and its address listed in ``refused`` (unless the row keeps it out).
        """
        now = now.astimezone(UTC)
        created = updated = kept = 0
        refused: list[str] = []
        with self._transaction() as conn:
            for chunk in _chunks(list(items), 500):
                keys = [email_key(i.email) for i in chunk]
                existing = {
                    row.email_key: _subscriber(row)
                    for row in conn.execute(
                        select(subscribers).where(subscribers.c.email_key.in_(keys))
                    )
                }
                inserts, updates, events = [], [], []
                for item, key in zip(chunk, keys, strict=True):
                    current = existing.get(key)
                    try:
                        state = operator_add(current, item.status)
                    except ConsentRefused:
                        refused.append(item.email)
                        continue
                    if current is None:
                        inserts.append(_new_subscriber_row(item, state, now=now))
                        continue
                    if current.status == "unsubscribed":
                        kept += 1  # a suppression row for someone who left: nothing changes
                        continue
                    row = _state_values(current, state, now) | _field_changes(item)
                    updates.append(row | {"email": item.email, "row_id": current.id})
                    if state != state_of(current):
                        events.append((current.id, state.name))
                if inserts:
                    conn.execute(subscribers.insert(), inserts)
                    ids = conn.execute(
                        select(subscribers.c.email_key, subscribers.c.id).where(
                            subscribers.c.email_key.in_([r["email_key"] for r in inserts])
                        )
                    )
                    by_key = {key: row_id for key, row_id in ids}
                    events += [(by_key[r["email_key"]], _row_state(r)) for r in inserts]
                for group in _same_columns(updates):
                    statement = (
                        subscribers.update()
                        .where(subscribers.c.id == bindparam("row_id"))
                        .values({name: bindparam(name) for name in group[0] if name != "row_id"})
                    )
                    conn.execute(statement, group)
                if events:
                    conn.execute(
                        subscriber_events.insert(),
                        [
                            {"subscriber_id": sid, "at": now, "state": name, "channel": "import"}
                            for sid, name in events
                        ],
                    )
                created += len(inserts)
                updated += len(updates)
        return ImportResult(created, updated, kept, tuple(refused))

    def _subscriber_row(self, conn: Connection, email: str) -> Any:
        query = select(subscribers).where(subscribers.c.email_key == email_key(email))
        return conn.execute(query).first()

    def _insert_subscriber(
        self, conn: Connection, item: SubscriberInput, state: State, *, now: datetime
    ) -> Subscriber:
        conn.execute(subscribers.insert().values(_new_subscriber_row(item, state, now=now)))
        return _subscriber(self._subscriber_row(conn, item.email))

    def _change(
        self,
        conn: Connection,
        current: Subscriber,
        state: State,
        channel: str,
        now: datetime,
        changes: dict[str, Any],
        *,
        detail: str | None = None,
    ) -> None:
        """Store a subscriber's new state and fields; record the state if it changed."""
        values = _state_values(current, state, now) | changes
        conn.execute(subscribers.update().where(subscribers.c.id == current.id).values(values))
        if state != state_of(current):
            self._record(conn, current.id, state.name, channel, now, detail)

    def _record(
        self,
        conn: Connection,
        subscriber_id: int,
        state: str,
        channel: str,
        now: datetime,
        detail: str | None = None,
    ) -> None:
        conn.execute(
            subscriber_events.insert().values(
                subscriber_id=subscriber_id, at=now, state=state, channel=channel, detail=detail
            )
        )

    # -- editions and deliveries

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
                return _edition(existing)
            pending = conn.scalar(
                select(func.count()).select_from(entries).where(entries.c.edition_id.is_(None))
            )
            if not pending and not allow_empty:
                return None
            edition_id = conn.execute(
                editions.insert().values(day=day, created_at=now, entry_count=pending)
            ).inserted_primary_key[0]
            conn.execute(
                entries.update().where(entries.c.edition_id.is_(None)).values(edition_id=edition_id)
            )
            active = select(
                literal(edition_id),
                subscribers.c.id,
                literal("queued"),
                literal(0),
                literal(now, DateTime(timezone=True)),
            ).where(subscribers.c.status == "active")  # the decider skips the paused
            conn.execute(
                insert(deliveries).from_select(
                    ["edition_id", "subscriber_id", "status", "attempts", "updated_at"], active
                )
            )
            row = conn.execute(select(editions).where(editions.c.id == edition_id)).one()
        return _edition(row)

    def get_edition(self, day: date) -> Edition | None:
        """Return the edition of a day, if there is one."""
        with self._transaction() as conn:
            row = conn.execute(select(editions).where(editions.c.day == day)).first()
        return _edition(row) if row is not None else None

    def recent_editions(self, limit: int = 7) -> list[Edition]:
        """Return the latest editions, newest first."""
        query = select(editions).order_by(editions.c.day.desc()).limit(limit)
        with self._transaction() as conn:
            return [_edition(row) for row in conn.execute(query)]

    def editions_with_queued(self) -> list[Edition]:
        """Return the editions that still have queued deliveries, oldest first."""
        queued = select(deliveries.c.edition_id).where(deliveries.c.status == "queued")
        query = select(editions).where(editions.c.id.in_(queued)).order_by(editions.c.day)
        with self._transaction() as conn:
            return [_edition(row) for row in conn.execute(query)]

    def edition_entries(self, edition_id: int | None) -> list[StoredEntry]:
        """Return the entries an edition carries (None: no edition yet), in first-seen order."""
        where = (
            entries.c.edition_id.is_(None)
            if edition_id is None
            else entries.c.edition_id == edition_id
        )
        query = select(entries).where(where).order_by(entries.c.first_seen, entries.c.id)
        with self._transaction() as conn:
            return [_stored_entry(row) for row in conn.execute(query)]

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
                found[row.edition_id].append(_stored_entry(row))
        return found

    def queued_deliveries(
        self, edition_id: int, *, after_id: int = 0, limit: int = 500
    ) -> list[tuple[Delivery, Subscriber]]:
        """Return a page of an edition's queued deliveries with their subscribers, by id."""
        query = (
            _delivery_with_subscriber()
            .where(*_queued_after(edition_id, after_id))
            .order_by(deliveries.c.id)
            .limit(limit)
        )
        with self._transaction() as conn:
            rows = conn.execute(query).all()
        return [(_delivery(row), _delivery_subscriber(row)) for row in rows]

    def claim_deliveries(
        self,
        edition_id: int,
        *,
        holder: str,
        now: datetime,
        lease: timedelta,
        after_id: int = 0,
        limit: int = 100,
        exclusive: bool = False,
    ) -> list[tuple[Delivery, Subscriber]]:
        """Claim a batch of an edition's queued deliveries for ``lease``; return them.

        Senders on several machines share the queue: on PostgreSQL the batch
        is picked with ``FOR UPDATE SKIP LOCKED``, and deliveries another
        sender holds are passed over until its lease runs out (it may have
        died).  ``exclusive`` (one sender under the run lock, as on SQLite)
        ignores leases: whoever held them is gone.  Only ids above ``after_id``
        are claimed, so a sender never retries in one run what it deferred.
        """
        now = now.astimezone(UTC)
        candidates = (
            select(deliveries.c.id)
            .where(*_queued_after(edition_id, after_id))
            .order_by(deliveries.c.id)
            .limit(limit)
        )
        if not exclusive:
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
                .values(claimed_by=holder, claimed_until=now + lease)
            )
            rows = conn.execute(
                _delivery_with_subscriber()
                .where(deliveries.c.id.in_(ids))
                .order_by(deliveries.c.id)
            ).all()
        return [(_delivery(row), _delivery_subscriber(row)) for row in rows]

    def release_claims(self, holder: str) -> None:
        """Give back the queued deliveries a sender claimed but did not send."""
        with self._transaction() as conn:
            conn.execute(
                deliveries.update()
                .where(deliveries.c.claimed_by == holder, deliveries.c.status == "queued")
                .values(claimed_by=None, claimed_until=None)
            )

    def mark_sent(self, delivery_id: int, *, message_id: str, reply: str, now: datetime) -> None:
        """Record that the server accepted a delivery's message."""
        self._mark(delivery_id, "sent", detail=reply, message_id=message_id, now=now)

    def mark_failed(self, delivery_id: int, *, reason: str, now: datetime) -> None:
        """Record that a delivery failed for good (e.g. the server refused the address)."""
        self._mark(delivery_id, "failed", detail=reason, now=now)

    def mark_skipped(self, delivery_id: int, *, reason: str, now: datetime) -> None:
        """Record that a delivery was not sent on purpose (nothing matched, unsubscribed)."""
        self._mark(delivery_id, "skipped", detail=reason, now=now)

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
                    status="failed" if given_up else "queued", detail=detail[:2000],
                    attempts=deliveries.c.attempts + 1, unknown_outcomes=tries,
                    updated_at=now.astimezone(UTC), claimed_by=None, claimed_until=None,
                )
            )  # fmt: skip
        return given_up

    def _mark(
        self,
        delivery_id: int,
        status: str,
        *,
        detail: str,
        now: datetime,
        message_id: str | None = None,
    ) -> None:
        # Called once per message at the mail server's pace: one prepared
        # statement on a connection kept by each sending thread, one commit.
        conn = self._thread_connection()
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
                conn.commit()
        except SQLAlchemyError as e:
            conn.rollback()
            raise StorageError(self.url, _first_line(e)) from e

    def _thread_connection(self) -> Connection:
        conn: Connection | None = getattr(self._local, "connection", None)
        if conn is None:
            conn = self.engine.connect()
            if self.dialect == "postgresql":
                # As SQLite's synchronous=NORMAL: a mark survives a crash or
                # kill of digest without a flush to disk per delivery; only a
                # database crash may lose the last moment's marks, and those
                # messages would go again with the same Message-ID.
                conn.exec_driver_sql("SET synchronous_commit TO OFF")
                conn.commit()
            self._local.connection = conn
            with self._connections_lock:
                self._connections.append(conn)
        return conn

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
        """Mark failed the queued deliveries of editions created before a time; count them."""
        old = select(editions.c.id).where(editions.c.created_at < created_before.astimezone(UTC))
        with self._transaction() as conn:
            result = conn.execute(
                deliveries.update()
                .where(deliveries.c.status == "queued", deliveries.c.edition_id.in_(old))
                .values(status="failed", detail=reason, updated_at=now.astimezone(UTC))
            )
        return int(result.rowcount or 0)

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
            return [_delivery(row) for row in conn.execute(query.order_by(deliveries.c.id))]

    # -- locks and runs

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

    def start_run(self, holder: str, *, now: datetime) -> int:
        """Record that a run started; return its id."""
        with self._transaction() as conn:
            return int(
                conn.execute(
                    runs.insert().values(
                        holder=holder, started_at=now.astimezone(UTC), outcome="running"
                    )
                ).inserted_primary_key[0]
            )

    def finish_run(self, run_id: int, *, outcome: str, summary: str, now: datetime) -> None:
        """Record how a run ended."""
        with self._transaction() as conn:
            conn.execute(
                runs.update()
                .where(runs.c.id == run_id)
                .values(outcome=outcome, summary=summary[:2000], finished_at=now.astimezone(UTC))
            )

    def recent_runs(self, limit: int = 5) -> list[RunRecord]:
        """Return the latest runs, newest first."""
        query = select(runs).order_by(runs.c.started_at.desc(), runs.c.id.desc()).limit(limit)
        with self._transaction() as conn:
            return [
                RunRecord(
                    id=row.id,
                    holder=row.holder,
                    started_at=_aware(row.started_at),
                    finished_at=_aware(row.finished_at) if row.finished_at else None,
                    outcome=row.outcome,
                    summary=row.summary,
                )
                for row in conn.execute(query)
            ]


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


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


def _queued_after(edition_id: int, after_id: int) -> tuple[Any, ...]:
    return (
        deliveries.c.edition_id == edition_id,
        deliveries.c.status == "queued",
        deliveries.c.id > after_id,
    )


def _delivery_with_subscriber() -> Select[Any]:
    return select(
        deliveries,
        subscribers.c.email,
        subscribers.c.status.label("subscriber_status"),
        subscribers.c.name,
        subscribers.c.topics,
        subscribers.c.theme,
        subscribers.c.timezone,
        subscribers.c.paused,
        subscribers.c.unsubscribed_at,
        subscribers.c.updated_at.label("subscriber_updated_at"),
    ).join(subscribers, subscribers.c.id == deliveries.c.subscriber_id)


def _edition(row: Any) -> Edition:
    created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
    return Edition(id=row.id, day=row.day, created_at=created, entry_count=row.entry_count)


def _delivery(row: Any) -> Delivery:
    return Delivery(
        id=row.id,
        edition_id=row.edition_id,
        subscriber_id=row.subscriber_id,
        status=row.status,
        attempts=row.attempts,
        message_id=row.message_id,
        detail=row.detail,
    )


def _delivery_subscriber(row: Any) -> Subscriber:
    return _subscriber(
        row,
        subscriber_id=row.subscriber_id,
        status=row.subscriber_status,
        updated_at=row.subscriber_updated_at,
    )


def _new_subscriber_row(item: SubscriberInput, state: State, *, now: datetime) -> dict[str, Any]:
    return {
        "email": item.email,
        "email_key": email_key(item.email),
        "name": item.name,
        "status": state.status,
        "topics": _topics_json(item.topics or ()),
        "theme": item.theme,
        "timezone": item.timezone,
        "paused": state.paused,
        "created_at": now,
        "updated_at": now,
        "unsubscribed_at": now if state.status == "unsubscribed" else None,
    }


def _row_state(row: dict[str, Any]) -> str:
    return State(row["status"], row["paused"]).name


def _state_values(current: Subscriber, state: State, now: datetime) -> dict[str, Any]:
    """The columns that store a state, with when they left (kept while they stay away)."""
    left = current.unsubscribed_at if current.status == "unsubscribed" else now
    return {
        "status": state.status,
        "paused": state.paused,
        "updated_at": now,
        "unsubscribed_at": left if state.status == "unsubscribed" else None,
    }


def _field_changes(item: SubscriberInput) -> dict[str, Any]:
    """The fields an input sets: None means "leave as it is"."""
    changes: dict[str, Any] = {
        name: value
        for name, value in (("name", item.name), ("theme", item.theme), ("timezone", item.timezone))
        if value is not None
    }
    if item.topics is not None:
        changes["topics"] = _topics_json(item.topics)
    return changes


def _same_columns(rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Rows grouped by the columns they set, for executemany."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(sorted(row)), []).append(row)
    return list(groups.values())


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _topics_json(topics: Sequence[Topic]) -> list[dict[str, str | None]]:
    return [{"query": t.query, "label": t.label} for t in topics]


def _subscriber(
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
        unsubscribed_at=_aware(row.unsubscribed_at) if row.unsubscribed_at else None,
        updated_at=_aware(row.updated_at if updated_at is None else updated_at),
    )


def _row_of(entry: Entry, *, source: str, now: datetime) -> dict[str, Any]:
    return {
        "fingerprint": entry.fingerprint,
        "arxiv_id": entry.arxiv_id,
        "title_key": entry.title_key,
        "title": entry.title,
        "abstract": entry.abstract,
        "authors": list(entry.authors),
        "url": entry.url,
        "pdf_url": entry.pdf_url,
        "hf_url": entry.hf_url,
        "categories": list(entry.categories),
        "upvotes": entry.upvotes,
        "published": entry.published,
        "source": source,
        "first_seen": now,
    }


def _stored_entry(row: Any) -> StoredEntry:
    first_seen = row.first_seen
    if first_seen.tzinfo is None:  # SQLite keeps no offset; we always store UTC.
        first_seen = first_seen.replace(tzinfo=UTC)
    entry = Entry(
        title=row.title,
        abstract=row.abstract,
        authors=tuple(row.authors or ()),
        url=row.url,
        pdf_url=row.pdf_url,
        hf_url=row.hf_url,
        arxiv_id=row.arxiv_id,
        published=row.published,
        upvotes=row.upvotes,
        categories=tuple(row.categories or ()),
    )
    return StoredEntry(id=row.id, entry=entry, source=row.source, first_seen=first_seen)


def _alembic_config() -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    config = AlembicConfig()
    config.set_main_option("script_location", "digest:migrations")
    return config


@lru_cache(maxsize=1)
def _migrations() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config())


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers (web, status) work while a run writes; the busy timeout
    # makes a second process wait for the lock instead of failing at once.
    cursor.execute("PRAGMA journal_mode=WAL")
    # In WAL mode NORMAL survives a crash or kill of the process (what the
    # outbox guards against) without an fsync per delivery; only a power cut
    # may lose the last few marks, and those messages carry the same Message-ID.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _chunks(values: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _first_line(error: Exception) -> str:
    original = getattr(error, "orig", None) or error
    return str(original).strip().splitlines()[0] if str(original).strip() else type(error).__name__
