"""The seen-list on a real SQLite file: each paper counts once, across sources."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, text

from digest.errors import StorageError
from digest.ingest import parse_source, read_source
from digest.ingest.clean import EntryLimits, clean_entry
from digest.ingest.dedupe import dedupe
from digest.models import Claim, Entry
from digest.store import Store
from digest.store.base import aware
from digest.subscribers import check_input
from digest.text import safe_text

from .conftest import ARXIV_RSS, HF_JSON, NOW, OWN_DUMP, SAMPLE_DUMP, TODAY, subscribe


@pytest.fixture
def store(any_store: Store) -> Store:
    """Every storage test runs on SQLite and on PostgreSQL."""
    return any_store


def test_the_sample_stored_twice_gives_73_new_then_0(store: Store) -> None:
    entries = read_source(str(SAMPLE_DUMP), today=TODAY).entries
    first = store.add_entries(entries, decide=dedupe, source="dump", now=NOW)
    second = store.add_entries(entries, decide=dedupe, source="dump", now=NOW + timedelta(days=1))
    assert (first.new, first.seen) == (73, 0)
    assert (second.new, second.seen) == (0, 73)
    assert store.count_entries() == 73


def test_entries_come_back_as_they_went_in(store: Store) -> None:
    entry = Entry(
        title="A <b>bold</b> {{ title }} with $i$REPO and 汉字 🎉",
        abstract="Abstract with %s and \u05e9\u05dc\u05d5\u05dd.",
        authors=("Zoë", "Li Wei"),
        url="https://arxiv.org/abs/2606.00001",
        arxiv_id="2606.00001",
        published=date(2026, 3, 21),
        upvotes=12,
        categories=("cs.LG",),
        summary="A TL;DR with 汉字.",
        code_url="https://github.com/example/repo",
        stars=3,
        organization="Université d'Exemple",
    )
    store.add_entries([entry], decide=dedupe, source="feed", now=NOW)
    (stored,) = store.list_entries()
    assert stored.entry == entry
    assert stored.source == "feed"
    assert stored.first_seen == NOW


def test_the_same_paper_with_and_without_an_id_is_one_entry(store: Store) -> None:
    titled = Entry(title="Bias Loss for Mobile Neural Networks", abstract="From the dump.")
    with_id = Entry(
        title="Bias loss for mobile neural networks",
        abstract="From the feed.",
        arxiv_id="2107.11170",
        hf_url="https://huggingface.co/papers/2107.11170",
        authors=("Lazar Atanackovic",),
    )
    assert store.add_entries([titled], decide=dedupe, source="dump", now=NOW).new == 1
    assert store.add_entries([with_id], decide=dedupe, source="hf", now=NOW).seen == 1
    (stored,) = store.list_entries()
    # The id the dump lacked is filled in; the first-seen text stays.
    assert stored.entry.arxiv_id == "2107.11170"
    assert stored.entry.hf_url == "https://huggingface.co/papers/2107.11170"
    assert stored.entry.authors == ("Lazar Atanackovic",)
    assert stored.entry.abstract == "From the dump."
    # Seen again by title only, or by id only, it stays one paper.
    assert store.add_entries([titled], decide=dedupe, source="dump", now=NOW).seen == 1
    renamed = Entry(title="Bias Loss (v2 title)", arxiv_id="2107.11170v2")
    assert store.add_entries([renamed], decide=dedupe, source="feed", now=NOW).seen == 1
    assert store.count_entries() == 1


def test_a_later_source_brings_the_tldr_code_stars_and_organisation(store: Store) -> None:
    titled = Entry(title="Rubato: Expressive Timing", abstract="From the dump.")
    from_hf = Entry(
        title="Rubato: expressive timing",
        arxiv_id="2611.20118",
        summary="Rubato learns expressive timing.",
        code_url="https://github.com/halvorsen/rubato",
        stars=18,
        organization="Example Humanities Lab",
    )
    store.add_entries([titled], decide=dedupe, source="dump", now=NOW)
    store.add_entries([from_hf], decide=dedupe, source="hf", now=NOW)
    (stored,) = store.list_entries()
    assert stored.entry.summary == "Rubato learns expressive timing."
    assert stored.entry.code_url == "https://github.com/halvorsen/rubato"
    assert (stored.entry.stars, stored.entry.organization) == (18, "Example Humanities Lab")
    assert stored.entry.abstract == "From the dump."


def test_two_papers_with_one_title_but_different_ids_are_two(store: Store) -> None:
    a = Entry(title="Attention Is All You Need", arxiv_id="1706.03762")
    b = Entry(title="Attention is all you need", arxiv_id="2501.00001")
    assert store.add_entries([a, b], decide=dedupe, source="feed", now=NOW).new == 2


def test_duplicates_within_one_batch_count_once(store: Store) -> None:
    entries = [Entry(title="Same Paper"), Entry(title="same  paper"), Entry(title="Other")]
    result = store.add_entries(entries, decide=dedupe, source="feed", now=NOW)
    assert (result.new, result.seen) == (2, 1)


def test_cross_source_dedupe_of_the_real_samples(store: Store) -> None:
    hf = read_source(str(HF_JSON), today=TODAY).entries
    store.add_entries(hf[:5], decide=dedupe, source="hf", now=NOW)
    # The same papers as title-only dump entries (as a page dump would list them).
    as_dump = [Entry(title=e.title.upper(), abstract=e.abstract) for e in hf]
    result = store.add_entries(as_dump, decide=dedupe, source="dump", now=NOW)
    assert (result.new, result.seen) == (15, 5)


def test_one_paper_in_three_formats_is_stored_once(store: Store) -> None:
    # The warm-start paper is in the HF JSON and the arXiv RSS with its id, and in the
    # page dump under another spelling with no id; Lanternfish is in the JSON and the dump.
    hf = store.add_entries(
        read_source(str(HF_JSON), today=TODAY).entries, decide=dedupe, source="hf", now=NOW
    )
    rss = store.add_entries(
        read_source(str(ARXIV_RSS), today=TODAY).entries, decide=dedupe, source="rss", now=NOW
    )
    dump = store.add_entries(
        read_source(str(OWN_DUMP), today=TODAY).entries, decide=dedupe, source="dump", now=NOW
    )
    assert (hf.new, rss.new, rss.seen, dump.new, dump.seen) == (20, 1, 1, 1, 2)
    assert store.count_entries() == 22


def test_a_failing_batch_leaves_the_database_as_it_was(store: Store) -> None:
    good = Entry(title="Good Paper")
    broken = Entry(title="Broken Paper", published="not a date")  # type: ignore[arg-type]
    with pytest.raises(StorageError):
        store.add_entries([good, broken], decide=dedupe, source="feed", now=NOW)
    assert store.count_entries() == 0


def test_list_entries_since_a_time(store: Store) -> None:
    store.add_entries([Entry(title="Old")], decide=dedupe, source="a", now=NOW)
    store.add_entries([Entry(title="New")], decide=dedupe, source="a", now=NOW + timedelta(days=1))
    assert [s.entry.title for s in store.list_entries(since=NOW + timedelta(hours=1))] == ["New"]


def test_the_schema_revision_the_code_expects_is_the_newest_migration() -> None:
    from digest.store import SCHEMA_REVISION
    from digest.store.base import migrations as _migrations

    assert _migrations().get_current_head() == SCHEMA_REVISION


def test_an_outdated_schema_is_refused_until_db_upgrade(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    Store.open(url).close()
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    engine.dispose()
    with pytest.raises(StorageError, match="schema revision 0001 is out of date") as raised:
        Store.open(url)
    assert raised.value.hint == "run 'digest db upgrade' (back the database up first)"
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(StorageError, match="schema revision 9999 is newer"):
        Store.open(url)


def test_a_missing_sqlite_folder_is_an_error_unless_asked_for(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'deep' / 'er' / 'db.sqlite3'}"
    with pytest.raises(StorageError, match="the folder .*/deep/er does not exist"):
        Store.open(url)
    assert not (tmp_path / "deep").exists()  # a typo never looks like an empty installation
    Store.open(url, create_folder=True).close()
    assert (tmp_path / "deep" / "er" / "db.sqlite3").is_file()
    with pytest.raises(StorageError, match="not a database URL"):
        Store.open("not a url")
    with pytest.raises(StorageError, match="cannot use this database"):
        Store.open("nosuchdb://x/y")


def test_an_id_later_in_the_same_batch_fills_in_the_title_only_entry(store: Store) -> None:
    batch = [Entry(title="One Paper"), Entry(title="ONE PAPER", arxiv_id="2606.00002v1")]
    result = store.add_entries(batch, decide=dedupe, source="mixed", now=NOW)
    assert (result.new, result.seen) == (1, 1)
    (stored,) = store.list_entries()
    assert stored.entry.arxiv_id == "2606.00002"
    assert stored.entry.title == "One Paper"


# -- hostile items: whatever the ingest gate passes stores on both backends

HOSTILE_ITEMS = {
    "a lone surrogate": '{"paper": {"id": "2611.00002", "title": "Bad \\ud800 title"}}',
    "a 20-digit upvote count": '{"paper": {"title": "Big", "upvotes": 99999999999999999999}}',
    "an upvote count past 32 bits": '{"paper": {"title": "Big 32", "upvotes": 2147483648}}',
    "a NUL in a title": '{"paper": {"title": "Nul\\u0000title", "summary": "a\\u0000b"}}',
    "a title that grows under NFKC": json.dumps({"paper": {"title": "\ufdfa" * 100}}),
    "control characters": '{"paper": {"title": "Ctrl \\u0001\\u001b[31m \\u0085title"}}',
    "200 KB of nested brackets": "[" * 100_000 + "]" * 100_000,
    "nesting inside an item": '{"paper": {"title": "Deep", "authors": '
    + "[" * 50_000
    + "]" * 50_000
    + "}}",
    "a non-string title": '{"paper": {"title": ["not", "text"]}}',
    "an id far too long": '{"paper": {"id": "arxiv:' + "a" * 99 + '/1234567", "title": "Id"}}',
}


@pytest.mark.parametrize("case", HOSTILE_ITEMS)
def test_a_hostile_item_never_stops_the_rest_of_its_source(store: Store, case: str) -> None:
    good = '{"paper": {"id": "2611.00001", "title": "Good paper", "summary": "Fine."}}'
    data = f"[{good}, {HOSTILE_ITEMS[case]}, {good.replace('00001', '00009')}]".encode()
    parsed = parse_source(data, name="hostile.json", today=TODAY)
    result = store.add_entries(parsed.entries, decide=dedupe, source="hostile.json", now=NOW)
    stored = store.list_entries()
    assert {"2611.00001", "2611.00009"} <= {s.entry.arxiv_id for s in stored}
    # The hostile item is either stored made safe, or dropped with a warning naming it.
    assert result.new == 3 or any(w.startswith("item 2") for w in parsed.warnings)
    for s in stored:
        for field in (s.entry.title, s.entry.abstract, *s.entry.authors):
            assert safe_text(field) == field
        assert s.entry.upvotes is None or 0 <= s.entry.upvotes < 2**31


_ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=300)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    title=_ANY_TEXT,
    abstract=_ANY_TEXT,
    authors=st.lists(_ANY_TEXT, max_size=5),
    upvotes=st.one_of(st.none(), st.integers()),
    arxiv_id=st.one_of(st.none(), _ANY_TEXT, st.from_regex(r"\d{4}\.\d{5}", fullmatch=True)),
    url=st.one_of(st.none(), _ANY_TEXT.map(lambda t: "https://example.org/" + t)),
    categories=st.lists(_ANY_TEXT, max_size=30),
)
def test_any_entry_the_gate_passes_stores_and_reads_back(  # noqa: PLR0913
    store: Store,
    title: str,
    abstract: str,
    authors: list[str],
    upvotes: int | None,
    arxiv_id: str | None,
    url: str | None,
    categories: list[str],
) -> None:
    raw = Entry(
        title=title,
        abstract=abstract,
        authors=tuple(authors),
        url=url,
        upvotes=upvotes,
        arxiv_id=arxiv_id,
        categories=tuple(categories),
    )
    try:
        entry, _ = clean_entry(raw, EntryLimits())
    except ValueError:
        assert not safe_text(title).strip()  # only an entry with no title is refused
        return
    result = store.add_entries([entry], decide=dedupe, source="generated", now=NOW)
    assert result.new + result.seen == 1  # new, or the same paper as an earlier example
    if result.new:
        assert any(s.entry.title == entry.title for s in store.list_entries())


def test_a_mark_records_the_same_on_either_backend(any_store: Store) -> None:
    """SQLite marks through its driver, PostgreSQL through SQLAlchemy: the rows agree."""
    from sqlalchemy import select

    from digest.store.schema import deliveries

    subscribe(any_store, check_input("ada@example.org", themes=["light"]), now=NOW)
    any_store.add_entries([Entry(title="A paper")], decide=dedupe, source="feed", now=NOW)
    edition = any_store.create_edition(NOW.date(), now=NOW)
    (claimed,) = any_store.claim_deliveries(
        edition.id, Claim("me", timedelta(minutes=5), exclusive=True), now=NOW
    )
    later = NOW + timedelta(seconds=3, microseconds=0)
    any_store.mark_deferred(claimed[0].id, reason="451 try later", now=NOW)
    any_store.mark_sent(claimed[0].id, message_id="<m@example.org>", reply="250 ok", now=later)
    any_store.mark_failed(claimed[0].id, reason="late", now=later)  # not queued: no change
    (delivery,) = any_store.list_deliveries(edition.id)
    assert (delivery.status, delivery.attempts, delivery.message_id, delivery.detail) == (
        "sent",
        2,
        "<m@example.org>",
        "250 ok",
    )
    with any_store._transaction() as conn:
        row = conn.execute(select(deliveries).where(deliveries.c.id == delivery.id)).one()
    assert aware(row.updated_at) == later and row.claimed_by is None and row.claimed_until is None


@given(needle=st.text(alphabet="ab%_\\.@", min_size=1, max_size=4))
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_a_subscriber_search_matches_its_text_literally(any_store: Store, needle: str) -> None:
    people = {"a_b@x.org": "", "axb@x.org": "", "a%b@x.org": "", "plain@x.org": "Ab\\c"}
    if not any_store.find_subscribers(limit=1)[1]:
        for address, name in people.items():
            subscribe(any_store, check_input(address, name=name, themes=["light"]), now=NOW)
    total, rows = any_store.find_subscribers(search=needle, limit=100)
    found = {row.subscriber.email for row in rows}
    wanted = {a for a, name in people.items() if needle.lower() in f"{a} {name}".lower()}
    assert found == wanted and total == len(found)
    assert all(row.created_at == NOW and row.last_sent is None for row in rows)


def test_a_subscriber_search_folds_case_beyond_ascii(any_store: Store) -> None:
    subscribe(any_store, check_input("orjan@x.org", name="Örjan Åström", themes=["light"]), now=NOW)
    assert [r.subscriber.email for r in any_store.find_subscribers(search="åSTRÖM")[1]] == [
        "orjan@x.org"
    ]
