"""PostgreSQL: migrations, and several sender processes sharing one edition's queue."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine, text

from digest.errors import StorageError
from digest.models import Claim
from digest.store import SCHEMA_REVISION, Store
from digest.store.base import alembic_config as _alembic_config

from .conftest import DAY, NOW, empty_postgres, fill, wait_until
from .smtp_server import smtp_server


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'migrate.sqlite3'}"
    url: str = request.getfixturevalue("postgres_url")
    empty_postgres(url)
    return url


def upgrade_to(url: str, revision: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        config = _alembic_config()
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
    engine.dispose()


def test_an_empty_database_gets_the_whole_schema(database: str) -> None:
    store = Store.open(database)
    assert store.schema_revision() == SCHEMA_REVISION
    fill(store, 3)
    assert store.count_subscribers()["active"] == 3
    store.close()


def test_the_migrations_build_exactly_the_schema_the_code_declares(database: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from digest.store.schema import metadata

    store = Store.open(database)  # an empty database: every migration, in order
    with store.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    store.close()


def test_address_keys_are_recomputed_from_the_wire_form(database: str) -> None:
    upgrade_to(database, "0009")
    engine = create_engine(database)
    with engine.begin() as conn:
        for email, old_key in (
            ("kurt@straße.de", "kurt@strasse.de"),
            ("Ada@Example.org", "ada@example.org"),
        ):
            conn.execute(
                text(
                    "INSERT INTO subscribers (email, email_key, status, topics, paused, cadence,"
                    " created_at, updated_at) VALUES (:email, :key, 'active', '[]', false, 'daily',"
                    " :now, :now)"
                ),
                {"email": email, "key": old_key, "now": NOW},
            )
    engine.dispose()
    store = Store.open(database, upgrade=True)
    # kurt@straße.de is no longer kurt@strasse.de, who may now subscribe as himself.
    assert store.get_subscriber("kurt@xn--strae-oqa.de") is not None
    assert store.get_subscriber("kurt@strasse.de") is None
    assert store.get_subscriber("ADA@example.org") is not None
    store.close()


def test_migrating_from_the_previous_schema_keeps_the_data(database: str) -> None:
    upgrade_to(database, "0001")
    engine = create_engine(database)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO subscribers (email, email_key, status, topics, paused, created_at,"
                " updated_at) VALUES ('ada@example.org', 'ada@example.org', 'active', '[]', false,"
                " :now, :now)"
            ),
            {"now": NOW},
        )
        conn.execute(
            text("INSERT INTO editions (day, created_at, entry_count) VALUES (:day, :now, 0)"),
            {"day": DAY, "now": NOW},
        )
        conn.execute(
            text(
                "INSERT INTO deliveries (edition_id, subscriber_id, status, attempts, updated_at)"
                " VALUES (1, 1, 'queued', 0, :now)"
            ),
            {"now": NOW},
        )
    engine.dispose()
    with pytest.raises(StorageError, match="run 'digest db upgrade'|out of date"):
        Store.open(database)
    store = Store.open(database, upgrade=True)
    assert store.schema_revision() == SCHEMA_REVISION
    assert store.get_subscriber("ada@example.org") is not None
    assert len(store.installation_id) == 32  # made by the migration, once
    claimed = store.claim_deliveries(1, Claim("me", timedelta(seconds=30)), now=NOW)
    assert [d.subscriber_id for d, _ in claimed] == [1]
    store.close()


def test_claims_skip_what_another_sender_holds(postgres_url: str) -> None:
    from datetime import timedelta

    empty_postgres(postgres_url)
    store = Store.open(postgres_url)
    fill(store, 10)
    edition = store.create_edition(DAY, now=NOW)
    assert edition is not None
    first = store.claim_deliveries(edition.id, Claim("a", timedelta(minutes=5)), now=NOW, limit=6)
    second = store.claim_deliveries(edition.id, Claim("b", timedelta(minutes=5)), now=NOW, limit=6)
    assert len(first) == 6 and len(second) == 4
    assert not {d.id for d, _ in first} & {d.id for d, _ in second}
    # Sender a dies: after its lease, its deliveries can be claimed again.
    later = NOW + timedelta(minutes=6)
    taken = store.claim_deliveries(edition.id, Claim("c", timedelta(minutes=5)), now=later)
    assert {d.id for d, _ in taken} == {d.id for d, _ in first} | {d.id for d, _ in second}
    store.close()


def _send_env(tmp_path: Path, url: str, port: int) -> dict[str, str]:
    (tmp_path / "config.toml").write_text(
        '[sender]\naddress = "digest@example.org"\n[delivery]\nlease_seconds = 4\n'
    )
    return os.environ | {
        "DIGEST_CONFIG": str(tmp_path / "config.toml"),
        "DIGEST_DATABASE_URL": url,
        "SECRET_KEY": "test-secret-key-for-digest-tests-0123456789",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(port),
        "SMTP_SECURITY": "none",
    }


def _planned(url: str, subscribers: int) -> None:
    empty_postgres(url)
    store = Store.open(url)
    fill(store, subscribers, topics=["title:fairness"])  # small messages: the test is about sharing
    store.create_edition(DAY, now=datetime.now(UTC))
    store.close()


@pytest.mark.slow
def test_four_sender_processes_deliver_4000_exactly_once(postgres_url: str, tmp_path: Path) -> None:
    _planned(postgres_url, 4000)
    with smtp_server() as (server, port):
        # However slowly a process starts, none finishes the queue before all four have
        # claimed a batch and asked the server what it offers.
        server.hold_until_sessions = 4
        # One connection each, so that the four sessions are the four processes'.
        env = _send_env(tmp_path, postgres_url, port) | {"SMTP_CONNECTIONS": "1"}
        senders = [
            subprocess.Popen(
                [sys.executable, "-m", "digest", "send"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(4)
        ]
        outputs = [process.communicate(timeout=600) for process in senders]
    assert [p.returncode for p in senders] == [0] * 4, [e for _, e in outputs]
    counts = server.by_recipient()
    assert len(counts) == 4000 and {len(v) for v in counts.values()} == {1}
    sent = [int(out.split("sent ")[1].split(",")[0]) for out, _ in outputs]
    assert sum(sent) == 4000 and all(n > 0 for n in sent), sent


@pytest.mark.slow
def test_a_killed_senders_batch_is_finished_by_the_others(
    postgres_url: str, tmp_path: Path
) -> None:
    _planned(postgres_url, 1500)
    with smtp_server() as (server, port):
        env = _send_env(tmp_path, postgres_url, port)
        command_line = [sys.executable, "-m", "digest", "send"]
        victim = subprocess.Popen(command_line, env=env, stderr=subprocess.DEVNULL)
        wait_until(lambda: len(server.received) >= 150)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        connections = server.sessions_seen  # the victim's, each with a message in flight
        survivor = subprocess.run(command_line, env=env, capture_output=True, text=True)
        assert survivor.returncode in (0, 1), survivor.stderr
        store = Store.open(postgres_url)
        edition = store.get_edition(DAY)
        assert edition is not None
        left = store.count_queued([edition.id])
        # The victim's lease runs out: then nobody holds what is left.
        wait_until(lambda: store.count_queued([edition.id], unclaimed_at=datetime.now(UTC)) == left)
        store.close()
        finisher = subprocess.run(command_line, env=env, capture_output=True, text=True)
        assert finisher.returncode == 0, finisher.stderr
    counts = server.by_recipient()
    assert len(counts) == 1500
    repeats = [v for v in counts.values() if len(v) > 1]
    assert len(repeats) <= connections  # only what was in flight at the kill, same Message-ID
    for items in repeats:
        assert items[0].message["Message-ID"] == items[1].message["Message-ID"]
    store = Store.open(postgres_url)
    edition = store.get_edition(DAY)
    assert edition is not None and store.delivery_counts(edition.id)["queued"] == 0
    store.close()


def test_delivery_marks_are_committed_without_a_flush_each(postgres_url: str) -> None:
    empty_postgres(postgres_url)
    store = Store.open(postgres_url)
    fill(store, 1)
    edition = store.create_edition(DAY, now=NOW)
    assert edition is not None
    [(delivery, _)] = store.claim_deliveries(edition.id, Claim("t", timedelta(minutes=5)), now=NOW)
    store.mark_sent(delivery.id, message_id="<m@x>", reply="250 ok", now=NOW)
    marking = store._thread_connection()  # the connection the marks went through
    assert marking.exec_driver_sql("SHOW synchronous_commit").scalar() == "off"
    with store.engine.connect() as other:  # planning and claims commit normally
        assert other.exec_driver_sql("SHOW synchronous_commit").scalar() == "on"
    store.close()


def test_a_database_from_before_newsletters_keeps_what_its_editions_carried(
    database: str,
) -> None:
    upgrade_to(database, "0012")
    engine = create_engine(database)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO subscribers (email, email_key, status, topics, paused, cadence,"
                " created_at, updated_at) VALUES ('ada@example.org', 'ada@example.org',"
                " 'active', '[]', false, 'daily', :now, :now)"
            ),
            {"now": NOW},
        )
        conn.execute(
            text("INSERT INTO editions (day, created_at, entry_count) VALUES (:day, :now, 1)"),
            {"day": DAY, "now": NOW},
        )
        for n, edition in ((1, 1), (2, None)):  # one carried, one still waiting
            conn.execute(
                text(
                    "INSERT INTO entries (fingerprint, title_key, title, abstract, authors,"
                    " categories, summary, source, first_seen, edition_id) VALUES (:f, :k, :t,"
                    " '', '[]', '[]', '', 'feed', :now, :edition)"
                ),
                {
                    "f": f"paper {n}",
                    "k": f"paper {n}",
                    "t": f"paper {n}",
                    "now": NOW,
                    "edition": edition,
                },
            )
    engine.dispose()
    store = Store.open(database, upgrade=True)
    try:
        [carried] = store.edition_entries(1)
        [waiting] = store.edition_entries(None)
        assert (carried.entry.title, waiting.entry.title) == ("paper 1", "paper 2")
        reader = store.get_subscriber("ada@example.org")
        assert reader is not None and reader.newsletter == "main"
        after = store.create_edition(DAY + timedelta(days=1), now=NOW)
        assert after is not None and after.entry_count == 1  # the waiting one, once
        assert store.scoped("main", ["feed"]).edition_entries(None) == []
    finally:
        store.close()
