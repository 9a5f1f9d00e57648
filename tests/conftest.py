"""Shared fixtures: real SQLite files in temp dirs, the bundled samples, a fixed clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from digest.store import Store, StoredEntry

DATA = Path(__file__).parent / "data"
SAMPLE_DUMP = DATA / "daily-papers-mar21.txt"
ARXIV_RSS = DATA / "arxiv-rss-cs.LG-cs.AI-cs.CL-stat.ML.xml"
ARXIV_ATOM = DATA / "arxiv-api-atom-transformer-cs.LG.xml"
HF_JSON = DATA / "hf-daily-papers-api.json"

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
