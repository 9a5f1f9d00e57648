"""A throwaway copy of the database, for a dry run to do on it exactly what a run does."""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from digest.errors import StorageError
from digest.store.base import first_line
from digest.store.schema import admin_sessions, installation, locks, metadata

if TYPE_CHECKING:
    from digest.store import Store

#: Rows copied per insert when the database is not SQLite.
_COPY_BATCH = 2000


@contextmanager
def snapshot(store: Store) -> Iterator[Store]:
    """A copy of ``store`` in a temporary SQLite file, deleted afterwards.

    Locks and sign-in sessions are left behind: the copy belongs to the one
    process that made it, and whoever holds the real run lock is not in it.
    """
    with tempfile.TemporaryDirectory(prefix="digest-rehearsal-") as folder:
        path = Path(folder) / "rehearsal.sqlite3"
        try:
            if store.dialect == "sqlite":
                _copy_sqlite(store, path)
            copy = type(store).open(f"sqlite:///{path}")
            if store.dialect != "sqlite":
                _copy_rows(store, copy)
            with copy.engine.begin() as conn:
                conn.execute(locks.delete())
                conn.execute(admin_sessions.delete())
        except (SQLAlchemyError, sqlite3.Error) as e:
            raise StorageError(store.url, f"cannot copy the database: {first_line(e)}") from e
        try:
            yield copy
        finally:
            copy.close()


def _copy_sqlite(store: Store, path: Path) -> None:
    with store.engine.connect() as conn:
        source = conn.connection.dbapi_connection
        target = sqlite3.connect(path)
        try:
            source.backup(target)  # type: ignore[union-attr]
        finally:
            target.close()


def _copy_rows(store: Store, copy: Store) -> None:
    skipped = {locks.name, admin_sessions.name}
    with store.engine.connect() as source, copy.engine.begin() as target:
        target.execute(installation.delete())
        for table in metadata.sorted_tables:
            if table.name in skipped:
                continue
            rows = source.execution_options(yield_per=_COPY_BATCH).execute(select(table))
            for batch in rows.partitions():
                target.execute(table.insert(), [row._asdict() for row in batch])
