"""The web pages through Flask's test client: every route and every bad input."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from digest.app import job
from digest.cadence import parse_cadence
from digest.config import Settings
from digest.deliver.transports import Envelope, OutboxTransport, PermanentFailure, TemporaryFailure
from digest.ingest.dedupe import dedupe
from digest.models import Entry
from digest.store import Store
from digest.subscribers import check_input
from digest.subscriptions import suppresses
from digest.tokens import confirm_url, make_token, preferences_url, unsubscribe_url
from digest.web import create_app
from digest.web.context import limiter

from .conftest import (
    NOW,
    THEMES,
    Clock,
    Sleeps,
    fill,
    import_subscribers,
    make_settings,
    message_text,
    set_paused,
    sign_up,
    unsubscribe,
)
from .conftest import subscribe as add_subscriber


class RecordingTransport(OutboxTransport):
    """Writes .eml files like the outbox, and can be told to fail."""

    failure: Exception | None = None

    def send(self, envelope: Envelope, message: bytes, *, then: Envelope | None = None) -> str:
        if self.failure is not None:
            raise self.failure
        return super().send(envelope, message)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(
        tmp_path, None, DIGEST_DATABASE_URL=f"sqlite:///{tmp_path / 'web.sqlite3'}"
    )


@pytest.fixture
def transport(tmp_path: Path) -> RecordingTransport:
    return RecordingTransport(tmp_path / "outbox")


@pytest.fixture
def app(settings: Settings, transport: RecordingTransport) -> Iterator[Flask]:
    app = create_app(
        {
            "TESTING": True,
            "DIGEST_SETTINGS": settings,
            "DIGEST_TRANSPORT": lambda: transport,
            "DIGEST_CLOCK": Clock(NOW),
            "WTF_CSRF_ENABLED": True,
        }
    )
    yield app
    app.extensions["digest"].store.close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def store(app: Flask) -> Store:
    return app.extensions["digest"].store  # type: ignore[no-any-return]


def csrf_from(client: FlaskClient, path: str = "/") -> str:
    page = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, page[:500]
    return match.group(1)


def sent_messages(tmp_path: Path) -> list[str]:
    return [p.read_text() for p in sorted((tmp_path / "outbox").glob("*.eml"))]


def plain_text_of(message: str) -> str:
    return " ".join(message_text(message).split())


def link_in(message: str, kind: str) -> str:
    text = message_text(message)
    match = re.search(rf"https://digest\.example\.org/{kind}/[\w.-]+", text)
    assert match, text[:2000]
    return match.group(0).removeprefix("https://digest.example.org")


def subscribe(client: FlaskClient, email: str, topics: str = "", theme: str = "light") -> Any:
    token = csrf_from(client)
    return client.post(
        "/subscribe", data={"email": email, "topics": topics, "theme": theme, "csrf_token": token}
    )


def test_the_home_page_has_the_form_and_security_headers(client: FlaskClient) -> None:
    response = client.get("/")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert '<label for="email">Email address</label>' in page
    assert 'name="csrf_token"' in page
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "<script>" not in page and " style=" not in page


def test_subscribe_then_confirm_activates(
    client: FlaskClient, store: Store, tmp_path: Path
) -> None:
    response = subscribe(client, "Ada@Example.org", "Fairness: title:fairness\nrlhf")
    assert response.status_code == 200
    assert "Check your inbox" in response.get_data(as_text=True)
    subscriber = store.get_subscriber("ada@example.org")
    assert subscriber is not None and subscriber.status == "pending"
    assert [str(t) for t in subscriber.topics] == ["Fairness: title:fairness", "rlhf"]
    (message,) = sent_messages(tmp_path)
    assert "Subject: Daily papers: confirm your subscription" in message
    assert "the papers on Fairness; rlhf" in plain_text_of(message)  # the topics, recapped
    path = link_in(message, "confirm")
    # A GET (a link scanner) changes nothing: it shows a button.
    page = client.get(path)
    assert page.status_code == 200 and "Confirm my subscription" in page.get_data(as_text=True)
    assert store.get_subscriber("ada@example.org").status == "pending"  # type: ignore[union-attr]
    # Tomorrow's edition was built ahead (run --date --force) before Ada confirmed: it
    # planned nobody who joined later, so her first email is the one after.
    assert store.create_edition(date(2026, 11, 29), now=NOW, allow_empty=True) is not None
    confirmed = client.post(path, data={"csrf_token": csrf_from(client, path)})
    assert "You are subscribed" in confirmed.get_data(as_text=True)
    assert store.get_subscriber("ada@example.org").status == "active"  # type: ignore[union-attr]
    welcome = [m for m in sent_messages(tmp_path) if "Subject: Welcome to Daily papers" in m]
    assert len(welcome) == 1
    assert "The first edition comes Monday, November 30, at 07:00 UTC" in plain_text_of(welcome[0])
    # Replayed: a clear page, nothing changes.
    replay = client.get(path)
    assert "already used" in replay.get_data(as_text=True)


def test_the_answer_never_tells_who_subscribes(
    client: FlaskClient, store: Store, tmp_path: Path
) -> None:
    add_subscriber(store, check_input("known@example.org", topics=["rlhf"], themes=THEMES), now=NOW)
    known = subscribe(client, "known@example.org", "something else")
    unknown = subscribe(client, "new@example.org")
    strip = lambda r: r.get_data(as_text=True).replace("known@", "X@").replace("new@", "X@")  # noqa: E731
    assert known.status_code == unknown.status_code == 200
    assert strip(known) == strip(unknown)
    # The active subscriber's topics are untouched; they get a "you are already subscribed" note.
    assert [t.query for t in store.get_subscriber("known@example.org").topics] == ["rlhf"]  # type: ignore[union-attr]
    assert any("you are already subscribed" in m for m in sent_messages(tmp_path))


@pytest.mark.parametrize(
    ("email", "topics", "message"),
    [
        ("not-an-address", "", "An email address must have an @-sign."),
        ("a@b", "", "It should have a period."),
        ("ok@example.org", 'deep "learning', "Topic 1: invalid query"),
        ("ok@example.org", "fine\n(broken", "Topic 2: invalid query"),
        ("ok@example.org", "auther:x", "unknown field"),
        ("josé@example.org", "", "Internationalized characters before the @-sign"),
        ("ok@example.org", "diffusion\x00", "control character U+0000"),
        ("ok@example.org", "a\x1b[31m", "control character U+001B"),
    ],
)
def test_bad_input_is_refused_with_a_message(
    client: FlaskClient, store: Store, email: str, topics: str, message: str
) -> None:
    response = subscribe(client, email, topics)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert message in page.replace("&#39;", "'").replace("&#34;", '"')
    assert 'role="alert"' in page
    assert store.count_subscribers()["pending"] == 0


def test_a_form_without_its_csrf_token_is_refused(client: FlaskClient, store: Store) -> None:
    response = client.post("/subscribe", data={"email": "a@example.org"})
    assert response.status_code == 400
    assert store.count_subscribers()["pending"] == 0


def test_oversized_fields_are_refused(client: FlaskClient, store: Store) -> None:
    huge = client.post("/subscribe", data={"email": "a@example.org", "topics": "x" * 40_000})
    assert huge.status_code == 413
    long_topics = subscribe(client, "a@example.org", "word " * 1200)
    assert long_topics.status_code == 400
    assert store.count_subscribers()["pending"] == 0


def test_subscribe_attempts_are_rate_limited_per_address(client: FlaskClient) -> None:
    statuses = [subscribe(client, "again@example.org").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    assert subscribe(client, "other@example.org").status_code == 200


def test_a_mail_server_failure_says_so_calmly_and_keeps_no_row(
    client: FlaskClient, transport: RecordingTransport, store: Store
) -> None:
    transport.failure = TemporaryFailure("connection refused")
    assert subscribe(client, "a@example.org").status_code == 503
    transport.failure = PermanentFailure("RCPT TO: 550 5.1.1 <b@example.org>: no such user here")
    response = subscribe(client, "b@example.org")
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and "check it for typos" in page
    assert "550" not in page and "no such user" not in page  # the relay's words are its own
    assert list(store.iter_subscribers()) == []


@pytest.mark.parametrize(("how", "days"), [("unsubscribed", 7), ("bounced", 7), ("complained", 30)])
def test_a_stranger_cannot_make_digest_mail_someone_who_left(
    app: Flask, client: FlaskClient, store: Store, tmp_path: Path, how: str, days: int
) -> None:
    add_subscriber(store, check_input("gone@example.org", themes=THEMES), now=NOW)
    store.amend_subscriber("gone@example.org", suppresses(how), now=NOW, channel="test")
    clock = app.extensions["digest"].clock
    for hours in (0, 1, 2, 24 * days - 1):
        clock.now = NOW + timedelta(hours=hours)
        limiter.reset()  # the page's own limit aside
        assert subscribe(client, "gone@example.org").status_code == 200
    assert len(sent_messages(tmp_path)) == 1  # one confirmation mail, whoever asked
    clock.now = NOW + timedelta(days=days, hours=1)
    assert subscribe(client, "gone@example.org").status_code == 200
    assert len(sent_messages(tmp_path)) == 2
    assert store.get_subscriber("gone@example.org").state == how  # type: ignore[union-attr]


def test_a_pending_sign_up_keeps_its_choices_until_its_owner_confirms(
    app: Flask, client: FlaskClient, store: Store, tmp_path: Path
) -> None:
    assert subscribe(client, "eve@example.org", "Vision: diffusion").status_code == 200
    clock = app.extensions["digest"].clock
    clock.now = NOW + timedelta(minutes=11)
    assert subscribe(client, "eve@example.org", "Spam: casino", "dark").status_code == 200
    pending = store.get_subscriber("eve@example.org")
    assert pending is not None and [str(t) for t in pending.topics] == ["Vision: diffusion"]
    (hers,) = [m for m in sent_messages(tmp_path) if "Vision" in plain_text_of(m)]
    (strangers,) = [m for m in sent_messages(tmp_path) if "Spam" in plain_text_of(m)]
    path = link_in(hers, "confirm")
    client.post(path, data={"csrf_token": csrf_from(client, path)})
    active = store.get_subscriber("eve@example.org")
    assert active is not None and active.state == "active"
    assert [str(t) for t in active.topics] == ["Vision: diffusion"] and active.theme != "dark"
    # The stranger's choices travel only in the stranger's link, now used up.
    assert "already used" in client.get(link_in(strangers, "confirm")).get_data(as_text=True)


def test_a_filled_honeypot_mails_nobody(client: FlaskClient, store: Store, tmp_path: Path) -> None:
    token = csrf_from(client)
    form = {"email": "victim@example.org", "website": "http://spam.example", "csrf_token": token}
    response = client.post("/subscribe", data=form)
    assert response.status_code == 200 and "Check your inbox" in response.get_data(as_text=True)
    assert list(store.iter_subscribers()) == [] and sent_messages(tmp_path) == []


def test_expired_and_forged_confirm_tokens(
    client: FlaskClient, app: Flask, settings: Settings, store: Store
) -> None:
    subscriber = sign_up(store, check_input("late@example.org", themes=THEMES))
    path = confirm_url("", settings.secret_key, subscriber.id)
    forged = client.get(path[:-3] + "abc")
    assert forged.status_code == 400 and "not valid" in forged.get_data(as_text=True)
    other_purpose = client.get(
        "/confirm/" + make_token(settings.secret_key, "unsubscribe", subscriber.id)
    )
    assert other_purpose.status_code == 400
    site = app.extensions["digest"]
    app.extensions["digest"] = replace(site, installation=_with_confirm_hours(settings, -1))
    expired = client.get(path)
    assert expired.status_code == 400
    page = expired.get_data(as_text=True)
    assert "This link has expired" in page and 'action="/subscribe"' in page


@pytest.mark.parametrize("method", ["HEAD", "OPTIONS", "PUT", "DELETE", "PATCH", "GET"])
def test_only_post_changes_state_on_every_route_that_changes_state(
    client: FlaskClient, settings: Settings, store: Store, method: str
) -> None:
    pending = sign_up(store, check_input("new@example.org", themes=THEMES))
    active, _ = add_subscriber(
        store, check_input("ada@example.org", topics=["rlhf"], themes=THEMES), now=NOW
    )
    key = settings.secret_key
    body = {
        "List-Unsubscribe": "One-Click",
        "topics": "other",
        "paused": "on",
        "email": "x@example.org",
    }
    before = sorted(store.iter_subscribers(), key=lambda s: s.id)
    for path in (
        confirm_url("", key, pending.id),
        unsubscribe_url("", key, active.id),
        preferences_url("", key, active.id),
        "/subscribe",
    ):
        response = client.open(path, method=method, data=body)
        assert response.status_code in (200, 405), (path, response.status_code)
    assert sorted(store.iter_subscribers(), key=lambda s: s.id) == before


def test_a_web_sign_up_never_brings_back_someone_who_left_until_they_confirm(
    client: FlaskClient, settings: Settings, store: Store, tmp_path: Path
) -> None:
    add_subscriber(store, check_input("ada@example.org", topics=["rlhf"], themes=THEMES), now=NOW)
    left = unsubscribe(store, "ada@example.org", now=NOW, channel="one-click")
    assert subscribe(client, "ada@example.org", "Vision: diffusion", "dark").status_code == 200
    assert store.get_subscriber("ada@example.org") == left  # not pending, nothing changed
    # An import without a status column cannot bring them back either.
    assert import_subscribers(
        store, [check_input("ada@example.org", themes=THEMES)], now=NOW
    ).refused == ("ada@example.org",)
    assert store.get_subscriber("ada@example.org") == left
    (message,) = sent_messages(tmp_path)
    path = link_in(message, "confirm")
    assert client.head(path).status_code == 200 and client.get(path).status_code == 200
    assert store.get_subscriber("ada@example.org") == left
    client.post(path, data={"csrf_token": csrf_from(client, path)})
    back = store.get_subscriber("ada@example.org")
    assert back is not None and back.state == "active"
    assert [str(t) for t in back.topics] == ["Vision: diffusion"] and back.theme == "dark"
    assert [(e.state, e.channel) for e in store.subscriber_history(back.id)] == [
        ("active", "cli"),
        ("unsubscribed", "one-click"),
        ("active", "confirm"),
    ]
    # They leave again: the old link never undoes the newer unsubscribe.
    unsubscribe(store, "ada@example.org", now=NOW + timedelta(hours=1), channel="link")
    replay = client.post(path, data={"csrf_token": csrf_from(client)})
    assert "already used" in replay.get_data(as_text=True)
    assert store.get_subscriber("ada@example.org").state == "unsubscribed"  # type: ignore[union-attr]


def test_the_per_address_limit_counts_look_alike_spellings_as_one_mailbox(
    client: FlaskClient,
) -> None:
    spellings = [
        "bomb@example.org",
        "bomb@\uff45xample.org",
        "BOMB@EXAMPLE.ORG",
        "bomb@ｅｘａｍｐｌｅ.org",
        " bomb@example.org ",
    ]
    statuses = [subscribe(client, address).status_code for address in spellings]
    assert statuses == [200, 200, 200, 429, 429]


def _with_confirm_hours(settings: Settings, hours: float) -> Settings:
    from dataclasses import replace

    return replace(settings, web=replace(settings.web, confirm_hours=hours))


def test_one_click_unsubscribe_per_rfc_8058(
    client: FlaskClient, settings: Settings, store: Store
) -> None:
    subscriber, _ = add_subscriber(store, check_input("ada@example.org", themes=THEMES), now=NOW)
    path = unsubscribe_url("", settings.secret_key, subscriber.id)
    fresh = client.application.test_client()  # no cookie, no CSRF token
    response = fresh.post(path, data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200 and "Location" not in response.headers
    assert store.get_subscriber("ada@example.org").status == "unsubscribed"  # type: ignore[union-attr]
    assert fresh.post(path, data={"List-Unsubscribe": "One-Click"}).status_code == 200  # idempotent
    unknown = fresh.post("/unsubscribe/forged-token", data={"List-Unsubscribe": "One-Click"})
    assert unknown.status_code == 400


def test_unsubscribe_page_needs_a_post_with_csrf(
    client: FlaskClient, settings: Settings, store: Store
) -> None:
    subscriber, _ = add_subscriber(store, check_input("bob@example.org", themes=THEMES), now=NOW)
    path = unsubscribe_url("", settings.secret_key, subscriber.id)
    page = client.get(path)
    assert page.status_code == 200 and "Stop sending" in page.get_data(as_text=True)
    assert store.get_subscriber("bob@example.org").status == "active"  # type: ignore[union-attr]
    assert client.post(path, data={}).status_code == 400  # a plain POST without the token
    assert store.get_subscriber("bob@example.org").status == "active"  # type: ignore[union-attr]
    done = client.post(path, data={"csrf_token": csrf_from(client, path)})
    assert "You are unsubscribed" in done.get_data(as_text=True)
    assert store.get_subscriber("bob@example.org").status == "unsubscribed"  # type: ignore[union-attr]


def test_preferences_change_topics_theme_timezone_and_pause(
    client: FlaskClient, settings: Settings, store: Store, tmp_path: Path
) -> None:
    fill(store, 0)
    subscriber, _ = add_subscriber(
        store, check_input("ada@example.org", topics=["rlhf"], themes=THEMES), now=NOW
    )
    job.run(
        store,
        settings,
        job.Runtime(now=Clock(NOW), transport=OutboxTransport(tmp_path / "o"), sleep=Sleeps()),
        job.RunOptions(ingest_sources=False),
    )
    path = preferences_url("", settings.secret_key, subscriber.id)
    page = client.get(path).get_data(as_text=True)
    assert "Taming Overconfidence in LLMs" in page  # what "rlhf" selects in the latest edition
    data = {
        "csrf_token": csrf_from(client, path),
        "topics": "Fair: title:fairness",
        "theme": "dark",
        "timezone": "Europe/Paris",
        "paused": "1",
    }
    saved = client.post(path, data=data)
    assert saved.status_code == 200 and "Saved." in saved.get_data(as_text=True)
    assert "Distraction is All You Need for Fairness" in saved.get_data(as_text=True)
    updated = store.get_subscriber("ada@example.org")
    assert updated is not None
    assert (str(updated.topics[0]), updated.theme, updated.timezone, updated.paused) == (
        "Fair: title:fairness",
        "dark",
        "Europe/Paris",
        True,
    )
    bad = client.post(path, data=data | {"topics": "(oops", "timezone": "Mars/Base"})
    assert bad.status_code == 400
    text = bad.get_data(as_text=True)
    assert "unbalanced parenthesis" in text and "not a timezone" in text
    assert str(store.get_subscriber("ada@example.org").topics[0]) == "Fair: title:fairness"  # type: ignore[union-attr]
    assert client.get("/preferences/forged").status_code == 400


def test_a_reader_chooses_how_often_and_sees_when_the_next_email_comes(
    client: FlaskClient, settings: Settings, store: Store
) -> None:
    subscriber, _ = add_subscriber(store, check_input("ada@example.org", themes=THEMES), now=NOW)
    path = preferences_url("", settings.secret_key, subscriber.id)
    page = client.get(path).get_data(as_text=True)
    assert 'value="daily" checked' in page and "Now: daily." in page
    form = {"csrf_token": csrf_from(client, path), "topics": "", "theme": "light"}
    weekly = client.post(path, data=form | {"cadence": "weekly", "cadence_day": "monday"})
    assert weekly.status_code == 200
    text = weekly.get_data(as_text=True)
    # Ada joined on Saturday 28 November: her first weekly email is on Monday the 30th.
    assert "Now: weekly, on Mondays." in text and "due on Monday 30 November" in text
    assert store.get_subscriber("ada@example.org").cadence == parse_cadence("weekly:monday")  # type: ignore[union-attr]
    client.post(path, data=form | {"cadence": "threshold", "cadence_papers": "12"})
    assert store.get_subscriber("ada@example.org").cadence == parse_cadence("threshold:12")  # type: ignore[union-attr]
    for papers in ("0", "x", "99999"):
        bad = client.post(path, data=form | {"cadence": "threshold", "cadence_papers": papers})
        assert bad.status_code == 400 and "How often" in bad.get_data(as_text=True)
    wrong_day = client.post(path, data=form | {"cadence": "weekly", "cadence_day": "funday"})
    assert wrong_day.status_code == 400
    assert store.get_subscriber("ada@example.org").cadence == parse_cadence("threshold:12")  # type: ignore[union-attr]


def test_the_archive_pages_and_feeds_escape_feed_text(
    client: FlaskClient, settings: Settings, store: Store, tmp_path: Path
) -> None:
    evil = Entry(
        title='<script>alert(1)</script> & "quotes"',
        abstract="<img src=x>",
        url="javascript:alert(1)",
    )
    # Stored as a database written before the ingest gate might hold it.
    control = Entry(title="Control \x01\x1b[31m characters \x7f", abstract="x")
    store.add_entries(
        [evil, control, Entry(title="A Good Paper", arxiv_id="2606.00001")],
        decide=dedupe,
        source="x",
        now=NOW,
    )
    add_subscriber(store, check_input("ada@example.org", themes=THEMES), now=NOW)
    job.run(
        store,
        settings,
        job.Runtime(now=Clock(NOW), transport=OutboxTransport(tmp_path / "o"), sleep=Sleeps()),
        job.RunOptions(ingest_sources=False),
    )
    listing = client.get("/archive").get_data(as_text=True)
    assert 'href="/archive/2026-11-28"' in listing
    page = client.get("/archive/2026-11-28").get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<img" not in page
    assert "javascript:" not in page and "ada@example.org" not in page
    assert 'href="https://arxiv.org/abs/2606.00001"' in page
    # Skimmable: the TL;DR shows, the abstract waits behind a summary (no script needed).
    assert '<details><summary>Abstract</summary><p dir="auto">' in page
    atom = client.get("/archive.atom")
    assert atom.mimetype == "application/atom+xml"
    assert "&lt;script&gt;" in atom.get_data(as_text=True)
    import xml.etree.ElementTree as ElementTree

    parsed = ElementTree.fromstring(atom.get_data())
    ns = {"a": "http://www.w3.org/2005/Atom"}
    assert parsed.find("a:author/a:name", ns) is not None  # RFC 4287 wants an author
    [entry] = parsed.findall("a:entry", ns)
    content = entry.find("a:content", ns)
    assert content is not None and content.text is not None
    assert content.text.count("<li>") == 3  # every paper of the edition, not ten titles
    # The content is HTML: feed text in it is escaped once more than the XML needs.
    assert "<script>" not in content.text and "&lt;script&gt;" in content.text
    feed = client.get("/archive.json").get_json()
    assert feed["version"] == "https://jsonfeed.org/version/1.1"
    assert feed["items"][0]["url"] == "https://digest.example.org/archive/2026-11-28"
    papers = feed["items"][0]["_digest"]["papers"]
    paper = next(p for p in papers if p["arxiv_id"] == "2606.00001")
    assert set(paper) >= {
        "tldr",
        "abstract",
        "authors",
        "organization",
        "links",
        "upvotes",
        "stars",
    }
    assert client.get("/archive/2026-01-01").status_code == 404
    assert client.get("/archive/not-a-date").status_code == 404
    home = client.get("/").get_data(as_text=True)
    assert "A Good Paper" in home


def test_the_live_query_check(client: FlaskClient) -> None:
    assert client.post("/api/check-query", data={"topics": "rlhf\ntitle:x"}).get_json() == {
        "ok": True,
        "errors": [],
        "count": 2,
    }
    result = client.post("/api/check-query", data={"topics": '"open'}).get_json()
    assert not result["ok"] and "unbalanced quote" in result["errors"][0]


def test_paused_subscribers_get_nothing(settings: Settings, store: Store, tmp_path: Path) -> None:
    fill(store, 2)
    set_paused(store, "reader0@example.org", paused=True)
    report = job.run(
        store,
        settings,
        job.Runtime(
            now=Clock(NOW + timedelta(hours=1)),
            transport=OutboxTransport(tmp_path / "p"),
            sleep=Sleeps(),
        ),
        job.RunOptions(ingest_sources=False),
    )
    assert report.delivery.sent == 1


def test_feedback_links_change_nothing_until_the_reader_posts(
    client: FlaskClient, settings: Settings, store: Store
) -> None:
    from digest.tokens import feedback_url

    reader, _ = add_subscriber(store, check_input("ada@example.org", themes=THEMES), now=NOW)
    store.add_entries(
        [Entry(title="Sparse <b>routing</b>", arxiv_id="2611.00077")],
        decide=dedupe,
        source="feed",
        now=NOW,
    )
    (paper,) = store.list_entries()
    path = feedback_url("", settings.secret_key, reader.id, paper.id)
    # What a mail scanner does: GET and HEAD, with either vote.
    for method in (client.get, client.head):
        for vote in ("more", "less"):
            assert method(f"{path}?v={vote}").status_code == 200
    assert store.feedback_of([reader.id])[reader.id] == []
    page = client.get(f"{path}?v=less").get_data(as_text=True)
    assert "Sparse &lt;b&gt;routing&lt;/b&gt;" in page
    assert client.post(path, data={"vote": "more"}).status_code == 400  # no CSRF token
    token = csrf_from(client, path)
    for vote, stored in (("more", 1), ("more", 1), ("less", -1)):
        assert client.post(path, data={"vote": vote, "csrf_token": token}).status_code == 200
        (mark,) = store.feedback_of([reader.id])[reader.id]
        assert (mark.vote, mark.paper) == (stored, "arxiv:2611.00077")
    # The preferences page lists it, and takes it back.
    prefs = preferences_url("", settings.secret_key, reader.id)
    shown = client.get(prefs).get_data(as_text=True)
    assert "Less like this</span> Sparse &lt;b&gt;routing&lt;/b&gt;" in shown
    client.post(f"{prefs}/marked", data={"paper": "arxiv:2611.00077", "csrf_token": token})
    assert store.feedback_of([reader.id])[reader.id] == []
    # The page's preview marks papers too.
    assert 'name="paper" value="arxiv:2611.00077"' in shown
    client.post(
        f"{prefs}/marked", data={"paper": "arxiv:2611.00077", "vote": "more", "csrf_token": token}
    )
    assert [m.vote for m in store.feedback_of([reader.id])[reader.id]] == [1]
    client.post(f"{prefs}/marked", data={"paper": "arxiv:2611.00077", "csrf_token": token})
    # A paper key is held to the text rules: a control character or no key is refused.
    for paper in ("arxiv:2611\x0000077", "title:a\x1bb", "anything", ""):
        refused = client.post(
            f"{prefs}/marked", data={"paper": paper, "vote": "more", "csrf_token": token}
        )
        assert refused.status_code == 400, paper
    # A forged or altered link shows nothing and records nothing.
    for forged in (path[:-3] + "xyz", path.replace(f"/{reader.id}.", f"/{reader.id + 1}.")):
        assert client.get(forged).status_code == 404
        assert client.post(forged, data={"vote": "more", "csrf_token": token}).status_code == 404
    assert store.feedback_of([reader.id])[reader.id] == []


def test_following_an_author_and_the_guided_start_change_state_only_on_post(
    client: FlaskClient, settings: Settings, store: Store
) -> None:
    from digest.tokens import feedback_url

    reader, _ = add_subscriber(
        store, check_input("ada@example.org", topics=["routing"], themes=THEMES), now=NOW
    )
    store.add_entries(
        [
            Entry(
                title=f"Sparse routing {n}",
                authors=("Grace <Hopper>", f"Author {n}"),
                arxiv_id=f"2611.0007{n}",
            )
            for n in range(3)
        ],
        decide=dedupe,
        source="feed",
        now=NOW,
    )
    paper = store.list_entries()[0]
    card = feedback_url("", settings.secret_key, reader.id, paper.id)
    prefs = preferences_url("", settings.secret_key, reader.id)
    scanner = {"author": "Grace <Hopper>", "vote-0": "more", "paper-0": "arxiv:2611.00070"}
    for path in (f"{card}?v=follow", f"{prefs}/start"):
        for method in ("GET", "HEAD"):
            assert client.open(path, method=method, data=scanner).status_code == 200
    assert client.get(f"{prefs}/follows").status_code == 405
    page = client.get(f"{card}?v=follow").get_data(as_text=True)
    assert "Grace &lt;Hopper&gt;" in page and "<Hopper>" not in page
    assert store.follows_of([reader.id])[reader.id] == ()
    assert store.feedback_of([reader.id])[reader.id] == []
    token = csrf_from(client, prefs)
    # A card's link follows only one of that paper's authors.
    assert (
        client.post(card, data={"author": "Someone else", "csrf_token": token}).status_code == 400
    )
    followed = client.post(card, data={"author": "grace <hopper>", "csrf_token": token})
    assert followed.status_code == 200 and "You follow Grace &lt;Hopper&gt;" in followed.get_data(
        as_text=True
    )
    # By name on the preferences page (one printable line), and unfollowed there.
    for bad in ("", "   ", "Ada\r\nBcc: x@example.org", "x" * 201):
        refused = client.post(f"{prefs}/follows", data={"author": bad, "csrf_token": token})
        assert refused.status_code == 400, bad
    client.post(f"{prefs}/follows", data={"author": "Alan Turing", "csrf_token": token})
    shown = client.get(prefs).get_data(as_text=True)
    assert "Alan Turing" in shown and "Grace &lt;Hopper&gt;" in shown
    client.post(
        f"{prefs}/follows", data={"author": "alan turing", "follow": "no", "csrf_token": token}
    )
    assert [f.author for f in store.follows_of([reader.id])[reader.id]] == ["Grace <Hopper>"]
    # The guided start: one choice per paper, recorded on POST; skipped ones are not.
    start = client.get(f"{prefs}/start").get_data(as_text=True)
    assert start.count('type="radio"') == 3 * 3
    answers = {"csrf_token": token, "paper-0": "arxiv:2611.00070", "vote-0": "more"}
    answers |= {"paper-1": "arxiv:2611.00071", "vote-1": "less"}
    answers |= {"paper-2": "arxiv:2611.00072", "vote-2": ""}
    done = client.post(f"{prefs}/start", data=answers)
    assert done.status_code == 200 and "2 ratings saved" in done.get_data(as_text=True)
    marks = {(m.paper, m.vote) for m in store.feedback_of([reader.id])[reader.id]}
    assert marks == {("arxiv:2611.00070", 1), ("arxiv:2611.00071", -1)}


def test_a_reader_who_left_can_follow_rate_or_vote_nothing(
    client: FlaskClient, settings: Settings, store: Store
) -> None:
    from digest.tokens import feedback_url

    reader, _ = add_subscriber(store, check_input("ada@example.org", themes=THEMES), now=NOW)
    store.add_entries(
        [Entry(title="Sparse routing", authors=("Grace Hopper",), arxiv_id="2611.00077")],
        decide=dedupe,
        source="feed",
        now=NOW,
    )
    (paper,) = store.list_entries()
    prefs = preferences_url("", settings.secret_key, reader.id)
    token = csrf_from(client, prefs)
    client.post(unsubscribe_url("", settings.secret_key, reader.id), data={"csrf_token": token})
    assert store.get_subscriber_by_id(reader.id).status == "unsubscribed"
    card = feedback_url("", settings.secret_key, reader.id, paper.id)
    for path, data in (
        (card, {"author": "Grace Hopper"}),
        (card, {"vote": "more"}),
        (f"{prefs}/follows", {"author": "Grace Hopper"}),
        (f"{prefs}/start", {"paper-0": "arxiv:2611.00077", "vote-0": "more"}),
    ):
        left = client.post(path, data={**data, "csrf_token": token})
        assert left.status_code == 200 and "gets no digest" in left.get_data(as_text=True)
    assert store.follows_of([reader.id])[reader.id] == ()
    assert store.feedback_of([reader.id])[reader.id] == []


def test_readers_name_liked_papers_and_import_a_library_on_their_page(
    client: FlaskClient, settings: Settings, store: Store
) -> None:
    import io

    reader, _ = add_subscriber(store, check_input("ada@example.org", themes=THEMES), now=NOW)
    prefs = preferences_url("", settings.secret_key, reader.id)
    token = csrf_from(client, prefs)
    bad = client.post(prefs, data={"csrf_token": token, "likes": "2611.00001 soup"})
    assert bad.status_code == 400 and "&#39;soup&#39; is not an arXiv id" in bad.get_data(True)
    assert store.feedback_of([reader.id])[reader.id] == []
    client.post(prefs, data={"csrf_token": token, "likes": "2611.00001, arXiv:2611.00002"})
    marks = store.feedback_of([reader.id])[reader.id]
    assert {(m.paper, m.kind) for m in marks} == {
        ("arxiv:2611.00001", "like"),
        ("arxiv:2611.00002", "like"),
    }
    bibtex = b"@article{a, title={A Liked Paper}, eprint={2611.00003}, year={2026}}\n"
    bibtex += b"% a library of some size: well over the 32 KB other forms may send\n" * 3000
    done = client.post(
        f"{prefs}/library",
        data={"csrf_token": token, "library": (io.BytesIO(bibtex), "mine.bib")},
        content_type="multipart/form-data",
    )
    assert done.status_code == 200 and "1 papers from mine.bib" in done.get_data(as_text=True)
    assert len(store.feedback_of([reader.id])[reader.id]) == 3


def test_the_public_feeds_are_paged_small_cached_and_valid(
    client: FlaskClient, store: Store
) -> None:
    import xml.etree.ElementTree as ElementTree

    long = "word " * 2_000
    for day in range(12):  # 12 editions (two pages) of 300 papers with the longest fields
        when = NOW - timedelta(days=12 - day)
        batch = [
            Entry(
                title=f"Paper {day}.{n} " + "t" * 400,
                abstract=long,
                authors=tuple(f"Author {a}" for a in range(100)),
                url=f"https://example.org/{day}/{n}\x01",
            )
            for n in range(300)
        ]
        store.add_entries(batch, decide=dedupe, source="x", now=when)
        store.create_edition(when.date(), now=when)
    for path, key in (("/archive.json", "next_url"), ("/archive.atom", "next")):
        seen: list[str] = []
        url: str | None = path
        while url:
            response = client.get(url)
            assert response.status_code == 200
            assert len(response.get_data()) < 2_000_000
            assert response.headers["Cache-Control"].startswith("public")
            assert (
                client.get(url, headers={"If-None-Match": response.headers["ETag"]}).status_code
                == 304
            )
            if key == "next_url":
                feed = response.get_json()
                assert feed["version"].endswith("/1.1") and all("id" in i for i in feed["items"])
                seen += [item["id"] for item in feed["items"]]
                url = feed.get("next_url")
            else:
                parsed = ElementTree.fromstring(response.get_data())  # well-formed, controls too
                ns = {"a": "http://www.w3.org/2005/Atom"}
                seen += [
                    e.findtext("a:id", namespaces=ns) or "" for e in parsed.findall("a:entry", ns)
                ]
                link = parsed.find("a:link[@rel='next']", ns)
                url = link.get("href") if link is not None else None
            url = url.removeprefix("https://digest.example.org") if url else None
        assert len(seen) == len(set(seen)) == 12, path
    assert client.get("/archive.json?before=not-a-day").status_code == 404


def test_every_public_page_is_rate_limited_per_ip(settings: Settings) -> None:
    from dataclasses import replace

    tight = replace(settings, web=replace(settings.web, public_limit_per_ip="5 per minute"))
    app = create_app({"TESTING": True, "DIGEST_SETTINGS": tight, "DIGEST_CLOCK": Clock(NOW)})
    try:
        client = app.test_client()
        paths = ("/", "/archive", "/archive.json", "/archive.atom", "/", "/")
        statuses = [client.get(path).status_code for path in paths]
        assert statuses[:5] == [200] * 5 and statuses[5] == 429
        with client.get("/static/site.css") as css:  # what a page loads with it
            assert css.status_code == 200
    finally:
        app.extensions["digest"].store.close()


def test_a_reader_who_left_is_told_so_on_their_preferences_page_and_nothing_changes(
    client: FlaskClient, settings: Settings, store: Store
) -> None:
    subscriber, _ = add_subscriber(
        store, check_input("ada@example.org", topics=["rlhf"], themes=THEMES), now=NOW
    )
    unsubscribe(store, "ada@example.org", now=NOW, channel="link")
    path = preferences_url("", settings.secret_key, subscriber.id)
    shown = client.get(path).get_data(as_text=True)
    assert "ada@example.org gets no digest" in shown and "You unsubscribed" in shown
    assert 'name="email"' in shown and 'value="ada@example.org"' in shown  # subscribe again
    token = re.search(r'name="csrf_token" value="([^"]+)"', shown)
    assert token is not None
    posted = client.post(
        path, data={"csrf_token": token[1], "topics": "title:fairness", "paused": "1"}
    )
    assert "Saved." not in posted.get_data(as_text=True)
    after = store.get_subscriber("ada@example.org")
    assert (
        after is not None and after.status == "unsubscribed" and after.topics == subscriber.topics
    )
