"""The connection to the database: opening it, transactions, the schema's revision.

Every SQLAlchemy error is wrapped in ``StorageError`` here, at the boundary.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self, TypeVar

from sqlalchemy import (
    Connection,
    CursorResult,
    Engine,
    create_engine,
    event,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
)

from digest.errors import StorageError
from digest.models import MAIN_NEWSLETTER, MAX_SMTP_CONNECTIONS
from digest.store.schema import SCHEMA_REVISION, installation

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig
    from alembic.script import ScriptDirectory

T = TypeVar("T")


class StoreBase:
    """What every part of the store shares: the engine and its transactions."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.url = engine.url.render_as_string(hide_password=True)
        self._local = threading.local()
        self._connections: list[Connection] = []
        self._connections_lock = threading.Lock()
        self._installation: str | None = None
        self.opened_at_revision: str | None = None
        #: The newsletter whose readers and editions this store reads and writes, and the
        #: sources its editions take papers from (None: every source).
        self.newsletter = MAIN_NEWSLETTER
        self.newsletter_sources: tuple[str, ...] | None = None
        # SQLite has one writer at a time and makes a waiting writer sleep
        # (1 ms, then 2, then 5...): this process's threads queue here instead
        # and go on the moment the database is free.
        self._one_at_a_time: AbstractContextManager[Any] = (
            threading.RLock() if engine.dialect.name == "sqlite" else nullcontext()
        )

    @classmethod
    def open(cls, url: str, *, upgrade: bool = False, create_folder: bool = False) -> Self:
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
            # Each sender thread keeps a connection for the run (SMTP_CONNECTIONS, up to
            # 64), with the main thread and the lease keeper beside them: a pool that
            # ran dry would stall the senders with accepted messages not yet recorded.
            # Connections are opened only as needed.
            engine = create_engine(
                parsed, pool_pre_ping=True, pool_size=5, max_overflow=MAX_THREAD_CONNECTIONS
            )
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

    @staticmethod
    def unreachable(url: str) -> str | None:
        """Why the database at ``url`` cannot be used now (None: it answers).  Nothing is
        created or changed: a PostgreSQL server is asked ``SELECT 1``; an SQLite file
        is made by the first run."""
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            return None
        engine = create_engine(parsed)
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except SQLAlchemyError as e:
            return f"cannot use the database {parsed.render_as_string()}: {first_line(e)}"
        finally:
            engine.dispose()
        return None

    @property
    def installation_id(self) -> str:
        """This installation's random id, made with its database (it never changes)."""
        if self._installation is None:
            with self._transaction() as conn:
                self._installation = str(conn.scalar(select(installation.c.id)))
        return self._installation

    def write_refused(self) -> str | None:
        """Why this database takes no writes (None: it does).  A write is tried and
        rolled back, so nothing changes."""
        try:
            with self.engine.connect() as conn, conn.begin() as transaction:
                conn.execute(update(installation).values(id=installation.c.id))
                transaction.rollback()
        except SQLAlchemyError as e:
            return first_line(e)
        return None

    def scoped(self, newsletter: str, sources: Sequence[str] | None = None) -> Self:
        """This store, for one newsletter's readers and editions (the same connections:
        close the store it came from, not this one)."""
        view = copy.copy(self)
        view.newsletter = newsletter
        view.newsletter_sources = None if sources is None else tuple(sources)
        return view

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
    def _transaction(self) -> Iterator[Connection]:
        """A transaction that commits, or rolls back on an error."""
        try:
            with self._one_at_a_time, self.engine.connect() as conn:
                transaction = conn.begin()
                try:
                    yield conn
                except BaseException:
                    transaction.rollback()
                    raise
                transaction.commit()
        except SQLAlchemyError as e:
            raise StorageError(self.url, first_line(e), transient=is_transient(e)) from e

    def _thread_connection(self) -> Connection:
        """A connection kept by the calling thread, for writes at the mail server's pace."""
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

    def close_thread_connection(self) -> None:
        """Give back the calling thread's kept connection, if it has one."""
        conn: Connection | None = getattr(self._local, "connection", None)
        if conn is None:
            return
        self._local.connection = None
        with self._connections_lock:
            self._connections.remove(conn)
        conn.close()

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
        #: The schema revision the database was at when opened (None: it was empty).
        self.opened_at_revision = current
        if current == SCHEMA_REVISION:
            return  # the usual case, without loading Alembic
        head = migrations().get_current_head()
        known = {script.revision for script in migrations().walk_revisions()}
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

        sqlite = self.dialect == "sqlite"
        try:
            with self.engine.connect() as conn:
                # SQLite changes a constraint by rebuilding the table, which the rows of
                # other tables refer to: references are checked once, at the end.
                self._references(conn, checked=not sqlite)
                with conn.begin():
                    config = alembic_config()
                    config.attributes["connection"] = conn
                    command.upgrade(config, "head")
                    broken = sqlite and conn.exec_driver_sql("PRAGMA foreign_key_check").first()
                    if broken:
                        raise StorageError(
                            self.url, f"migration failed: a broken reference in {broken[0]}"
                        )
                self._references(conn, checked=True)
        except SQLAlchemyError as e:
            raise StorageError(self.url, f"migration failed: {first_line(e)}") from e

    def _references(self, conn: Connection, *, checked: bool) -> None:
        """Turn SQLite's foreign key checks on or off (outside a transaction)."""
        if self.dialect == "sqlite":
            conn.exec_driver_sql(f"PRAGMA foreign_keys={'ON' if checked else 'OFF'}")
            conn.commit()


def inserted_id(result: CursorResult[Any]) -> int:
    """The id the database gave the row an INSERT made."""
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def aware(moment: datetime) -> datetime:
    """A stored time with its zone: SQLite keeps no offset, and digest always stores UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def chunks(values: Sequence[T], size: int = 500) -> Iterable[Sequence[T]]:
    """``values`` in slices small enough for one ``IN (...)``."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


#: Connections one process may hold at once beyond the pool's five: the most sender
#: threads and a few for the threads beside them.
MAX_THREAD_CONNECTIONS = MAX_SMTP_CONNECTIONS + 8


def is_transient(error: SQLAlchemyError) -> bool:
    """Whether a database error may pass (the server is down, busy or locked), rather
    than being the data's fault (a NUL in text, a broken constraint)."""
    return isinstance(error, OperationalError | InterfaceError) or not isinstance(error, DBAPIError)


def first_line(error: Exception) -> str:
    """The database's own words for an error, in one line."""
    original = getattr(error, "orig", None) or error
    return str(original).strip().splitlines()[0] if str(original).strip() else type(error).__name__


def alembic_config() -> AlembicConfig:
    """The Alembic configuration of digest's migrations."""
    from alembic.config import Config as AlembicConfig

    config = AlembicConfig()
    config.set_main_option("script_location", "digest:migrations")
    return config


@lru_cache(maxsize=1)
def migrations() -> ScriptDirectory:
    """digest's migration scripts."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config())


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
    # SQLite's lower() folds ASCII only: searching for "örjan" should find "Örjan".
    dbapi_connection.create_function("lower", 1, _lower, deterministic=True)


def _lower(text: object) -> object:
    return text.lower() if isinstance(text, str) else text
