"""One bad item never stops anyone else's digest: hostile input through every stage.

Rows that validation now refuses may still sit in a database written by an
older digest or by hand; they are stored here directly, as such rows would
be, and each must end as its own failed delivery while everyone else gets
exactly one message.  Runs on SQLite and PostgreSQL, against a real SMTP
server.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from digest.deliver.message import envelope_address
from digest.errors import DigestError
from digest.ingest import parse_source
from digest.ingest.dedupe import dedupe
from digest.models import Topic
from digest.store import Store
from digest.subscribers import SubscriberError, SubscriberInput, check_input

from .conftest import (
    DAY,
    NOW,
    THEMES,
    TODAY,
    empty_postgres,
    fill,
    import_subscribers,
    make_settings,
    run,
    subscribe,
)
from .smtp_server import smtp_server

#: Rows no longer accepted at the edge, as an older version or a hand edit left them.
LEGACY_ROWS = {
    "a NUL in a topic": SubscriberInput("nul@example.org", topics=(Topic("diffusion\x00"),)),
    "a topic the parser refuses": SubscriberInput("quote@example.org", topics=(Topic('"open'),)),
    "a non-ASCII local part": SubscriberInput("josé@example.org"),
    "a line break in the address": SubscriberInput("evil@example.org\r\nBcc: all@example.org"),
    "a space in the address": SubscriberInput("two words@example.org"),
}


@pytest.fixture
def store(any_store: Store) -> Store:
    return any_store


def _add_legacy(store: Store, items: list[SubscriberInput]) -> None:
    for item in items:
        subscribe(store, item, now=NOW)


def test_each_bad_row_fails_alone_and_everyone_else_gets_one_message(
    store: Store, tmp_path: Path
) -> None:
    fill(store, 3)
    _add_legacy(store, list(LEGACY_ROWS.values()))
    import_subscribers(
        store, [check_input(f"after{n}@example.org", themes=THEMES) for n in range(3)], now=NOW
    )
    with smtp_server() as (server, port):
        report = run(store, make_settings(tmp_path, port))
    received = server.by_recipient()
    good = {f"reader{n}@example.org" for n in range(3)} | {
        f"after{n}@example.org" for n in range(3)
    }
    assert set(received) == good and all(len(m) == 1 for m in received.values())
    assert (report.delivery.sent, report.delivery.failed, report.still_queued) == (6, 5, 0)
    assert not report.ok  # exit 1: some items failed
    reasons = dict(report.delivery.failures)
    assert "control character U+0000" in reasons["nul@example.org"]
    assert "unbalanced quote" in reasons["quote@example.org"]
    assert "ASCII addresses only" in reasons["josé@example.org"]
    assert all(r.startswith("could not compose: ") and "\n" not in r for r in reasons.values())
    edition = store.get_edition(DAY)
    assert edition is not None
    assert len(store.list_deliveries(edition.id, status="failed")) == 5


def test_a_bad_row_first_in_line_stops_nobody(store: Store, tmp_path: Path) -> None:
    _add_legacy(store, [LEGACY_ROWS["a NUL in a topic"]] * 1)
    fill(store, 4)
    settings = make_settings(tmp_path, None)
    first = run(store, settings)
    second = run(store, settings)
    assert (first.delivery.sent, first.delivery.failed) == (4, 1)
    assert (second.delivery.sent, second.delivery.failed, second.still_queued) == (0, 0, 0)


def test_a_setting_that_breaks_every_message_stops_the_run_before_anyone_is_marked(
    store: Store, tmp_path: Path
) -> None:
    fill(store, 4)
    key = tmp_path / "dkim.pem"
    key.write_text("not a key")
    settings = make_settings(tmp_path, None, DKIM_PRIVATE_KEY_FILE=str(key), DKIM_SELECTOR="s1")
    with pytest.raises(DigestError, match="composing failed before anyone was mailed: .*DKIM"):
        run(store, settings)
    edition = store.get_edition(DAY)
    assert edition is not None
    assert len(store.list_deliveries(edition.id, status="queued")) == 4


def test_an_address_no_message_can_carry_is_refused_at_every_edge() -> None:
    for address in ("josé@example.org", "a\r\nb@example.org", "x\u200b@example.org"):
        with pytest.raises(SubscriberError):
            check_input(address, themes=THEMES)
    # An internationalised domain is accepted, and sent as IDNA.
    assert check_input("reader@bücher.example", themes=THEMES).email == "reader@bücher.example"


# -- generated hostile input, end to end

_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=120)
_ENTRY = st.fixed_dictionaries(
    {"title": _TEXT, "summary": _TEXT, "upvotes": st.integers(), "id": _TEXT},
    optional={"authors": st.lists(st.fixed_dictionaries({"name": _TEXT}), max_size=3)},
)
_LOCAL = st.one_of(
    st.from_regex(r"[a-z][a-z0-9._+-]{0,15}", fullmatch=True),
    st.text(st.characters(codec=None, exclude_categories=()), min_size=1, max_size=20),
)
_QUERY = st.one_of(
    _TEXT, st.sampled_from(["rlhf", "title:fair*", "abstract:agents -title:survey", "x OR y"])
)


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """Opens a new, empty store on each call: one per generated example."""
    if request.param == "sqlite":
        return lambda: Store.open(f"sqlite:///{tmp_path_factory.mktemp('db') / 'digest.sqlite3'}")
    url = request.getfixturevalue("postgres_url")

    def fresh() -> Store:
        empty_postgres(url)
        return Store.open(url)

    return fresh


@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    entries=st.lists(_ENTRY, min_size=1, max_size=6),
    people=st.lists(st.tuples(_LOCAL, _TEXT, st.lists(_QUERY, max_size=2)), max_size=6),
)
def test_generated_entries_and_people_never_stop_a_run(
    fresh_store: Callable[[], Store],
    tmp_path_factory: pytest.TempPathFactory,
    entries: list[dict[str, object]],
    people: list[tuple[str, str, list[str]]],
) -> None:
    store = fresh_store()
    try:
        data = json.dumps([{"paper": e} for e in entries]).encode()
        parsed = parse_source(data, name="generated.json", today=TODAY)
        store.add_entries(parsed.entries, decide=dedupe, source="generated.json", now=NOW)
        accepted: set[str] = set()
        for number, (local, name, queries) in enumerate(people):
            try:
                item = check_input(
                    f"{local}.{number}@example.org", name=name, topics=queries, themes=THEMES
                )
            except SubscriberError:
                continue  # refused at the edge, with a reason
            subscribe(store, item, now=NOW)  # whatever validation passes must store
            accepted.add(item.email)
        event(f"{min(len(accepted), 3)} or more people accepted")
        legacy = list(LEGACY_ROWS.values())[: len(people) % 4]
        _add_legacy(store, legacy)
        with smtp_server() as (server, port):
            report = run(store, make_settings(tmp_path_factory.mktemp("run"), port))
    finally:
        store.close()
    received = server.by_recipient()
    assert all(len(m) == 1 for m in received.values())
    assert set(received) <= {envelope_address(a) for a in accepted}
    planned = len(accepted) + len(legacy) if parsed.entries else 0
    assert report.delivery.failed == (len(legacy) if parsed.entries else 0)
    assert report.delivery.sent + report.delivery.skipped + report.delivery.failed == planned
    assert report.delivery.sent == len(received)
    assert report.still_queued == 0
