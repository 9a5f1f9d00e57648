"""Shared fixtures and helpers: real SQLite files in temp dirs, the seed and our own feeds,
a frozen clock, settings for a test installation, and waiting on a condition."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from digest import subscriptions
from digest.app import accounts, job
from digest.config import Settings, load_settings
from digest.deliver.transports import transport_for
from digest.ingest.dedupe import dedupe
from digest.models import StoredEntry, Subscriber
from digest.store import Store
from digest.subscribers import SubscriberInput, check_input

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


#: The day of the edition most tests build.
DAY = date(2026, 11, 28)
THEMES = ["compact", "dark", "light"]


class Clock:
    """A clock the test moves; every call returns the same instant until moved."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Sleeps(list[float]):
    """Records the pauses asked for, without pausing."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def make_settings(tmp_path: Path, port: int | None, **env: str) -> Settings:
    config = tmp_path / "digest.toml"
    config.write_text(
        '[digest]\ntitle = "Daily papers"\n[sender]\nname = "Daily papers"\n'
        'address = "digest@example.org"\n'
    )
    environ = {
        "DIGEST_BASE_URL": "https://digest.example.org",
        "SECRET_KEY": "test-secret-key-for-digest-tests-0123456789",
        "DIGEST_OUTBOX_DIR": str(tmp_path / "outbox"),
        "SMTP_SECURITY": "none",
    }
    if port is not None:
        environ |= {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(port)}
    return load_settings(config, environ=environ | env)


def fill(store: Store, subscribers: int, *, topics: list[str] | None = None) -> None:
    from digest.ingest import read_source

    entries = read_source(str(SAMPLE_DUMP), today=TODAY).entries
    store.add_entries(entries, decide=dedupe, source="sample", now=NOW)
    items = [
        check_input(f"reader{n}@example.org", name=f"Reader {n}", topics=topics, themes=THEMES)
        for n in range(subscribers)
    ]
    import_subscribers(store, items)


def subscribe(
    store: Store, item: SubscriberInput, *, now: datetime = NOW
) -> tuple[Subscriber, bool]:
    """An operator adds or updates someone, as ``digest subscribe`` does."""
    return accounts.add(store, item, now=now)


def sign_up(store: Store, item: SubscriberInput, *, now: datetime = NOW) -> Subscriber:
    """Someone signs up on the web (the mail left out)."""
    amended = store.amend_subscriber(
        item.email, subscriptions.signs_up(item), now=now, channel="web"
    )
    assert amended.subscriber is not None
    return amended.subscriber


def unsubscribe(
    store: Store, email: str, *, now: datetime = NOW, channel: str = "cli"
) -> Subscriber | None:
    return accounts.leave(store, email, now=now, channel=channel)


def set_paused(store: Store, email: str, *, paused: bool, now: datetime = NOW) -> Subscriber | None:
    return accounts.set_paused(store, email, paused=paused, now=now)


def import_subscribers(
    store: Store, items: list[SubscriberInput], *, now: datetime = NOW
) -> subscriptions.ImportResult:
    """An operator imports rows, as ``digest subscribers import`` does."""
    rows = list(enumerate(items, start=2))
    return accounts.import_rows(store, rows, [], now=now).result


def run(store: Store, settings: Settings, *, plan: bool = True, **runtime: Any) -> job.RunReport:
    """A run of the day's edition, without reading sources (``runtime``: ``job.Runtime``'s
    fields, each with a test's default)."""
    runtime.setdefault("now", Clock())
    runtime.setdefault("sleep", Sleeps())
    runtime.setdefault("transport", transport_for(settings))
    options = job.RunOptions(DAY, ingest_sources=False, plan=plan)
    return job.run(store, settings, job.Runtime(**runtime), options)


def message_text(raw: str | bytes) -> str:
    """The decoded text of every text part of a message, whatever its transfer encoding."""
    import email
    import email.policy

    data = raw.encode() if isinstance(raw, str) else raw
    message = email.message_from_bytes(data, policy=email.policy.default)
    return "\n".join(
        part.get_content() for part in message.walk() if part.get_content_maintype() == "text"
    )


def wait_until(condition: Callable[[], object], seconds: float = 60) -> None:
    """Wait until ``condition()`` is true, failing after ``seconds``; never a fixed sleep."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for a condition"
        time.sleep(0.02)


@pytest.fixture(scope="session")
def sample_stored() -> list[StoredEntry]:
    """The sample dump and the Hugging Face sample as stored entries, ids from 1."""
    from digest.ingest import read_source

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
        pytest.skip(
            f"PostgreSQL not reachable at {server.render_as_string(hide_password=True)} "
            "(set DIGEST_TEST_POSTGRES_URL; .ci/run starts it)"
        )
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


def dkim_key(folder: Path) -> tuple[Path, str]:
    """A private key file as `openssl genrsa` writes it, and the DNS record (TXT) that
    publishes its public half."""
    import base64

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_file = folder / "dkim.pem"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return key_file, "v=DKIM1; k=rsa; p=" + base64.b64encode(public).decode()


def all_commands(group: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command of a click group, as the words that name it (the group's own first)."""
    import click

    found = [prefix]
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found += all_commands(command, prefix + (name,))
        else:
            found.append(prefix + (name,))
    return found
