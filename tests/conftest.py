"""Shared fixtures: real SQLite files in temp dirs, the seed and our own feeds, a fixed clock."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from digest.models import StoredEntry
from digest.store import Store

DATA = Path(__file__).parent / "data"
SAMPLE_DUMP = DATA / "daily-papers-mar21.txt"
# Fixtures of our own, written by tests/make_fixtures.py (see tests/data/README.md).
ARXIV_RSS = DATA / "arxiv-rss.xml"
ARXIV_ATOM = DATA / "arxiv-api-atom.xml"
HF_JSON = DATA / "hf-daily-papers.json"
OWN_DUMP = DATA / "daily-papers-nov27.txt"
JSON_FEED = DATA / "lab-news.json"

#: The tests' "now": a fixed instant, so dates in page dumps resolve the same way every run.
NOW = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
TODAY = date(2026, 11, 28)


@pytest.fixture(scope="session")
def sample_stored() -> list[StoredEntry]:
    """The sample dump and the Hugging Face sample as stored entries, ids from 1."""
    from digest.sources import read_source

    entries = read_source(str(SAMPLE_DUMP), today=TODAY).entries
    entries += read_source(str(HF_JSON), today=TODAY).entries
    return [StoredEntry(n + 1, e, "test", NOW) for n, e in enumerate(entries)]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(f"sqlite:///{tmp_path / 'digest.sqlite3'}")
    yield opened
    opened.close()


def _postgres_server_url() -> str:
    return os.environ.get(
        "DIGEST_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    )


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped at the end.

    Skips (one line) when no server answers at DIGEST_TEST_POSTGRES_URL or
    127.0.0.1:5432.
    """
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import OperationalError

    server = make_url(_postgres_server_url())
    admin = create_engine(server, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
    name = f"digest_test_{os.getpid()}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError:
        admin.dispose()
        pytest.skip(f"PostgreSQL not reachable at {server.render_as_string(hide_password=True)} "
                    "(set DIGEST_TEST_POSTGRES_URL; .ci/run starts it)")  # fmt: skip
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def empty_postgres(url: str) -> None:
    """Drop every table of the test database, so a test starts from nothing."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """The same storage tests on both backends."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'digest.sqlite3'}"
    else:
        url = request.getfixturevalue("postgres_url")
        empty_postgres(url)
    opened = Store.open(url)
    yield opened
    opened.close()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with its own config and a clean environment for the CLI."""
    for name in (
        "DIGEST_CONFIG",
        "DIGEST_DATABASE_URL",
        "DIGEST_BASE_URL",
        "DIGEST_OUTBOX_DIR",
        "SECRET_KEY",
        "SMTP_HOST",
        "SMTP_PORT",
        "SMTP_SECURITY",
        "SMTP_USERNAME",
        "SMTP_PASSWORD",
        "SMTP_TIMEOUT",
    ):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "digest.toml").write_text(
        f'[[sources]]\nname = "sample"\nlocation = "{SAMPLE_DUMP}"\n', encoding="utf-8"
    )
    monkeypatch.chdir(tmp_path)
    return tmp_path
