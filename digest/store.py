"""The one module that owns the SQL: entries (the seen-list), and later subscribers,
editions and deliveries.

Storage makes no product decisions beyond identity bookkeeping.  It goes
through SQLAlchemy Core; backend-specific SQL stays here.  Every SQLAlchemy
error is wrapped in ``StorageError`` at this boundary.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Connection,
    Date,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    func,
    select,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from digest.errors import StorageError
from digest.models import Entry

#: Bump with a new entry in ``_MIGRATIONS`` whenever the schema changes.
SCHEMA_VERSION = 1

metadata = MetaData()

meta = Table(
    "digest_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

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
)


@dataclass(frozen=True)
class StoredEntry:
    """An entry as stored, with its row id, source and first-seen time."""

    id: int
    entry: Entry
    source: str
    first_seen: datetime


@dataclass(frozen=True)
class AddResult:
    """How many of a batch of entries were new and how many already seen."""

    new: int
    seen: int


class Store:
    """Access to digest's database; open it with ``Store.open(url)``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.url = engine.url.render_as_string(hide_password=True)

    @classmethod
    def open(cls, url: str) -> Store:
        """Connect, creating the SQLite file's folder and the schema when missing."""
        try:
            parsed = make_url(url)
        except ArgumentError as e:
            raise StorageError(url, "not a database URL") from e
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        try:
            engine = create_engine(parsed)
        except (ArgumentError, ImportError) as e:
            raise StorageError(url, f"cannot use this database: {e}") from e
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _configure_sqlite)
        store = cls(engine)
        store.migrate()
        return store

    def close(self) -> None:
        """Release every connection."""
        self.engine.dispose()

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except SQLAlchemyError as e:
            raise StorageError(self.url, _first_line(e)) from e

    # -- schema

    def schema_version(self) -> int | None:
        """Return the schema version recorded in the database, None when empty."""
        with self._transaction() as conn:
            if not self.engine.dialect.has_table(conn, meta.name):
                return None
            value = conn.scalar(select(meta.c.value).where(meta.c.key == "schema_version"))
            return int(value) if value is not None else None

    def migrate(self) -> None:
        """Create the schema, or bring an older one up to ``SCHEMA_VERSION``."""
        version = self.schema_version()
        if version is not None and version > SCHEMA_VERSION:
            raise StorageError(
                self.url,
                f"schema version {version} is newer than this digest knows ({SCHEMA_VERSION})",
                hint="upgrade digest before using this database",
            )
        if version == SCHEMA_VERSION:
            return
        with self._transaction() as conn:
            if version is None:
                metadata.create_all(conn)
            else:
                for step in range(version + 1, SCHEMA_VERSION + 1):
                    _MIGRATIONS[step](conn)
            _set_meta(conn, "schema_version", str(SCHEMA_VERSION))

    # -- entries (the seen-list)

    def add_entries(self, batch: Sequence[Entry], *, source: str, now: datetime) -> AddResult:
        """Store the entries not seen before, in one transaction; count new and seen.

        An entry is already seen when its arXiv id is stored, or when its
        normalised title is stored and at most one side has an id.  A seen
        entry that brings an id the stored one lacked fills it in.
        """
        new = seen = 0
        now = now.astimezone(UTC)
        fresh: list[Entry] = []
        # Known keys map to a row id, or to None for an entry of this batch not yet inserted.
        fresh_by_title: dict[str, int] = {}
        with self._transaction() as conn:
            by_id, by_title = self._known(conn, batch)
            for entry in batch:
                key = entry.title_key
                if entry.arxiv_id and entry.arxiv_id in by_id:
                    seen += 1
                    continue
                known = by_title.get(key)
                if known is not None and (entry.arxiv_id is None or known[1] is None):
                    seen += 1
                    if entry.arxiv_id:
                        row_id = known[0]
                        if row_id is None:
                            index = fresh_by_title[key]
                            fresh[index] = fresh[index].filled_from(entry)
                        else:
                            self._enrich(conn, row_id, entry)
                        by_id[entry.arxiv_id] = row_id
                        by_title[key] = (row_id, entry.arxiv_id)
                    continue
                new += 1
                fresh.append(entry)
                if entry.arxiv_id:
                    by_id[entry.arxiv_id] = None
                if key not in by_title:
                    by_title[key] = (None, entry.arxiv_id)
                    fresh_by_title[key] = len(fresh) - 1
            if fresh:
                conn.execute(entries.insert(), [_row_of(e, source=source, now=now) for e in fresh])
        return AddResult(new=new, seen=seen)

    def _known(
        self, conn: Connection, batch: Sequence[Entry]
    ) -> tuple[dict[str, int | None], dict[str, tuple[int | None, str | None]]]:
        ids = sorted({e.arxiv_id for e in batch if e.arxiv_id})
        keys = sorted({e.title_key for e in batch})
        by_id: dict[str, int | None] = {}
        by_title: dict[str, tuple[int | None, str | None]] = {}
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

    def _enrich(self, conn: Connection, row_id: int, entry: Entry) -> None:
        stored = _stored_entry(conn.execute(select(entries).where(entries.c.id == row_id)).one())
        filled = stored.entry.filled_from(entry)
        row = _row_of(filled, source=stored.source, now=stored.first_seen)
        conn.execute(entries.update().where(entries.c.id == row_id).values(**row))

    def count_entries(self) -> int:
        """Return how many distinct papers the seen-list holds."""
        with self._transaction() as conn:
            return int(conn.scalar(select(func.count()).select_from(entries)) or 0)

    def list_entries(self, *, since: datetime | None = None) -> list[StoredEntry]:
        """Return stored entries in first-seen order, optionally only those since ``since``."""
        query = select(entries).order_by(entries.c.first_seen, entries.c.id)
        if since is not None:
            query = query.where(entries.c.first_seen >= since)
        with self._transaction() as conn:
            return [_stored_entry(row) for row in conn.execute(query)]


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


def _set_meta(conn: Connection, key: str, value: str) -> None:
    conn.execute(meta.delete().where(meta.c.key == key))
    conn.execute(meta.insert().values(key=key, value=value))


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers (web, status) work while a run writes; the busy timeout
    # makes a second process wait for the lock instead of failing at once.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _chunks(values: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _first_line(error: Exception) -> str:
    original = getattr(error, "orig", None) or error
    return str(original).strip().splitlines()[0] if str(original).strip() else type(error).__name__


#: Schema upgrades: version -> function that brings version-1 up to it.
_MIGRATIONS: dict[int, Any] = {}
