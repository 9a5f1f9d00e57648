"""The dashboard under /admin through Flask's test client: every route without and with
a session, CSRF, the sign-in's rate limit, and what each action does to a reader."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.test import TestResponse

from digest.app import job
from digest.config import Settings
from digest.ingest.dedupe import dedupe
from digest.models import Entry
from digest.passwords import hash_password, verify_password
from digest.store import Store
from digest.subscribers import check_input
from digest.tokens import make_token
from digest.web import create_app
from digest.web.admin import ADMIN_COOKIE

from .conftest import DAY, NOW, THEMES, Clock, Sleeps, make_settings, unsubscribe
from .conftest import subscribe as add_subscriber
from .test_web import RecordingTransport, csrf_from

PASSWORD = "a long enough password"


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


def make_app(settings: Settings, tmp_path: Path, clock: Clock) -> Flask:
    return create_app(
        {
            "TESTING": True,
            "DIGEST_SETTINGS": settings,
            "WTF_CSRF_ENABLED": True,
            "DIGEST_TRANSPORT": lambda: RecordingTransport(tmp_path / "outbox"),
            "DIGEST_CLOCK": clock,
        }
    )


@pytest.fixture
def app(tmp_path: Path, clock: Clock) -> Flask:
    database = f"sqlite:///{tmp_path / 'admin.sqlite3'}"
    settings = make_settings(tmp_path, None, DIGEST_DATABASE_URL=database)
    app = make_app(settings, tmp_path, clock)
    store: Store = app.extensions["digest"].store
    store.save_admin("root@example.org", hash_password(PASSWORD), now=NOW)
    for address in ("ada@example.org", "bob@example.org"):
        add_subscriber(
            store,
            check_input(address, name="<b>Ada</b>" if "ada" in address else None, themes=THEMES),
            now=NOW,
        )
    store.add_entries([Entry(title="Fairness in ranking")], decide=dedupe, source="feed", now=NOW)
    job.run(
        store,
        settings,
        job.Runtime(now=clock, transport=RecordingTransport(tmp_path / "outbox"), sleep=Sleeps()),
        job.RunOptions(day=DAY, ingest_sources=False),
    )
    yield app
    store.close()


@pytest.fixture
def store(app: Flask) -> Store:
    return app.extensions["digest"].store  # type: ignore[no-any-return]


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def sign_in(
    client: FlaskClient, email: str = "root@example.org", password: str = PASSWORD, **extra: str
) -> TestResponse:
    token = csrf_from(client, "/admin/login")
    return client.post(
        "/admin/login", data={"email": email, "password": password, "csrf_token": token, **extra}
    )


def post(client: FlaskClient, path: str, **data: str) -> TestResponse:
    """A dashboard form sent as a browser sends it: with the page's CSRF token."""
    return client.post(path, data={"csrf_token": csrf_from(client, "/admin/"), **data})


def every_route(app: Flask, store: Store) -> list[tuple[str, str]]:
    """(method, path) for every admin route but signing in, with real arguments."""
    ada = store.get_subscriber("ada@example.org")
    assert ada is not None
    values = {"subscriber_id": str(ada.id), "day": DAY.isoformat(), "action": "pause"}
    found = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/admin") or rule.endpoint in ("admin.login", "admin.sign_in"):
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", lambda m: values[m.group(1)], rule.rule)
        path = re.sub(r"<any\([^)]*\):action>", "pause", path)
        found += [(method, path) for method in sorted(rule.methods - {"HEAD", "OPTIONS"})]
    return found


def test_no_admin_page_or_action_answers_without_a_session(app: Flask, store: Store) -> None:
    client = app.test_client()
    routes = every_route(app, store)
    pages = {"/admin/", "/admin/subscribers", "/admin/editions", "/admin/sources"}
    assert {p for _, p in routes} >= pages | {"/admin/test-send", "/admin/logout"}
    reader_token = make_token(app.config["SECRET_KEY"], "preferences", 1)
    for cookie in (None, "forged", reader_token):
        if cookie is not None:
            client.set_cookie(ADMIN_COOKIE, cookie, path="/admin")
        for method, path in routes:
            form = {"csrf_token": csrf_from(client, "/admin/login")}
            response = client.open(
                path, method=method, query_string={"token": reader_token}, data=form
            )
            if method == "GET":
                assert response.status_code == 303, (method, path)
                assert response.headers["Location"].startswith("/admin/login?next=/admin")
            else:
                assert response.status_code == 403, (method, path)
    ada = store.get_subscriber("ada@example.org")
    assert ada is not None and ada.state == "active"  # the pause never happened


def test_every_admin_page_shows_with_a_session(
    app: Flask, client: FlaskClient, store: Store
) -> None:
    assert sign_in(client).status_code == 303
    for method, path in every_route(app, store):
        if method == "GET":
            response = client.get(path)
            assert response.status_code == 200, path
            shown = response.get_data(as_text=True)
            assert "Sign out" in shown and "root@example.org" in shown
            assert "<b>Ada</b>" not in shown  # a reader's name is text, never markup
            assert "<script" not in shown and "style=" not in shown  # the CSP allows neither
    overview = client.get("/admin/").get_data(as_text=True)
    assert "<svg" in overview and 'class="bar bar-sent"' in overview and "2 active" in overview
    reader = client.get("/admin/subscribers/1").get_data(as_text=True)
    assert "&lt;b&gt;Ada&lt;/b&gt;" in reader and "sent" in reader and "Message-ID" in reader


def test_sign_in_sets_a_strict_cookie_and_sign_out_ends_the_session(
    client: FlaskClient, clock: Clock, store: Store
) -> None:
    assert sign_in(client, password="wrong password!").status_code == 401
    unknown = sign_in(client, email="nobody@example.org")
    assert unknown.status_code == 401
    assert "do not match an admin" in unknown.get_data(as_text=True)
    signed = sign_in(client, email="ROOT@example.org", next="/admin/sources")
    assert signed.status_code == 303 and signed.headers["Location"] == "/admin/sources"
    cookie = signed.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/admin" in cookie
    assert "Secure" in cookie  # the site is https://
    token = client.get_cookie(ADMIN_COOKIE, path="/admin")
    assert token is not None and client.get("/admin/").status_code == 200
    assert post(client, "/admin/logout").status_code == 303
    assert client.get("/admin/").status_code == 303
    client.set_cookie(ADMIN_COOKIE, token.value, path="/admin")  # replayed: ended for good
    assert client.get("/admin/").status_code == 303
    # Taking the account away ends its sessions at once.
    sign_in(client)
    assert client.get("/admin/").status_code == 200
    store.remove_admin("root@example.org")
    assert client.get("/admin/").status_code == 303
    store.save_admin("root@example.org", hash_password(PASSWORD), now=NOW)
    # A session ends by itself after admin_session_hours.
    sign_in(client)
    assert client.get("/admin/").status_code == 200
    clock.now += timedelta(hours=12, seconds=1)
    assert client.get("/admin/").status_code == 303


@pytest.mark.parametrize(
    "wanted", ["//evil.example/admin", "https://evil.example/", "/\\evil", "/preferences/x"]
)
def test_signing_in_never_sends_anyone_to_another_site(client: FlaskClient, wanted: str) -> None:
    response = sign_in(client, next=wanted)
    assert response.headers["Location"] == "/admin/"


def test_the_cookie_is_not_secure_only_for_plain_http_on_loopback(
    tmp_path: Path, clock: Clock
) -> None:
    database = f"sqlite:///{tmp_path / 'local.sqlite3'}"
    settings = make_settings(
        tmp_path, None, DIGEST_BASE_URL="http://127.0.0.1:8000", DIGEST_DATABASE_URL=database
    )
    app = make_app(settings, tmp_path, clock)
    app.extensions["digest"].store.save_admin("root@example.org", hash_password(PASSWORD), now=NOW)
    local = app.test_client()
    assert "Secure" not in sign_in(local).headers["Set-Cookie"]
    public, site = app.test_client(), "http://digest.example.org"  # plain HTTP, but not local
    form = public.get("/admin/login", base_url=site).get_data(as_text=True)
    token = re.findall(r'name="csrf_token" value="([^"]+)"', form)[0]
    answer = public.post(
        "/admin/login",
        base_url=site,
        data={"email": "root@example.org", "password": PASSWORD, "csrf_token": token},
    )
    assert "Secure" in answer.headers["Set-Cookie"]
    app.extensions["digest"].store.close()


def test_sign_in_is_rate_limited_per_address_even_with_the_right_password(
    client: FlaskClient,
) -> None:
    for _ in range(6):  # the right password, more often than the limit: never locked out
        assert sign_in(client).status_code == 303
    for _ in range(5):
        assert sign_in(client, password="wrong password!").status_code == 401
    limited = sign_in(client)
    assert limited.status_code == 429  # five failures: even the right password waits
    assert "Please wait 15 minutes" in limited.get_data(as_text=True)


def test_every_form_needs_its_csrf_token(client: FlaskClient, store: Store) -> None:
    token = csrf_from(client, "/admin/login")
    no_token = client.post("/admin/login", data={"email": "root@example.org", "password": PASSWORD})
    assert no_token.status_code == 400 and client.get_cookie(ADMIN_COOKIE, path="/admin") is None
    client.post(
        "/admin/login",
        data={"email": "root@example.org", "password": PASSWORD, "csrf_token": token},
    )
    for path in (
        "/admin/subscribers/1/pause",
        "/admin/subscribers/1/unsubscribe",
        "/admin/subscribers/1/resend",
        "/admin/test-send",
        "/admin/logout",
    ):
        assert client.post(path, data={"day": DAY.isoformat()}).status_code == 400, path
    ada = store.get_subscriber("ada@example.org")
    assert ada is not None and ada.state == "active"
    assert client.get("/admin/").status_code == 200  # still signed in


def test_pause_resume_and_unsubscribe_and_no_way_back_for_who_left(
    client: FlaskClient, store: Store
) -> None:
    sign_in(client)
    post(client, "/admin/subscribers/1/pause")
    ada = store.get_subscriber("ada@example.org")
    assert ada is not None and ada.state == "paused"
    assert store.subscriber_history(ada.id)[-1].channel == "admin"
    page = client.get("/admin/subscribers/1").get_data(as_text=True)
    assert "is paused." in page and ">Resume<" in page
    post(client, "/admin/subscribers/1/resume")
    post(client, "/admin/subscribers/1/unsubscribe")
    ada = store.get_subscriber("ada@example.org")
    assert ada is not None and ada.state == "unsubscribed"
    page = client.get("/admin/subscribers/1").get_data(as_text=True)
    assert ">Resume<" not in page and ">Pause<" not in page and ">Unsubscribe<" not in page
    assert "Resend</button>" not in page and "Only they can come back" in page
    for action in ("resume", "pause"):
        post(client, f"/admin/subscribers/1/{action}")
        ada = store.get_subscriber("ada@example.org")
        assert ada is not None and ada.state == "unsubscribed"
    post(client, "/admin/subscribers/1/resend", day=DAY.isoformat())
    assert store.deliveries_of(ada.id)[0][1].resends == 0
    assert client.post("/admin/subscribers/999/pause").status_code in (400, 404)


def test_resend_and_test_send_from_the_dashboard(
    client: FlaskClient, store: Store, tmp_path: Path
) -> None:
    sign_in(client)
    bob = store.get_subscriber("bob@example.org")
    assert bob is not None
    done = post(client, f"/admin/subscribers/{bob.id}/resend", day=DAY.isoformat())
    assert done.status_code == 303
    (day, delivery), *_ = store.deliveries_of(bob.id)
    assert (day, delivery.status, delivery.resends) == (DAY, "queued", 1)
    again = client.get(f"/admin/subscribers/{bob.id}").get_data(as_text=True)
    assert "queued again (resend 1)" in again
    before = len(list((tmp_path / "outbox").glob("*.eml")))
    sent = post(client, "/admin/test-send", address="me@example.org", **{"as": "bob@example.org"})
    assert sent.status_code == 200 and "Sent me@example.org a test" in sent.get_data(as_text=True)
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == before + 1
    unsubscribe(store, "ada@example.org", now=NOW, channel="web")
    refused = post(client, "/admin/test-send", address="ada@example.org")
    assert refused.status_code == 400 and "unsubscribed" in refused.get_data(as_text=True)
    bad = post(
        client,
        "/admin/test-send",
        address="me@example.org",
        day="yesterday",
        **{"as": "nobody@example.org"},
    )
    assert bad.status_code == 400 and "not a subscriber" in bad.get_data(as_text=True)
    # Another spelling of a reader who left is that reader; text that is no address is a
    # form error, never a 500.
    for spelling in (
        "ada@\uff45xample.org",
        "ADA@Example.ORG",
        "not-an-address",
        "jos\u00e9@x.org",
        "ada@exam\u00adple.org",
    ):
        refused = post(client, "/admin/test-send", address=spelling)
        assert refused.status_code == 400, spelling
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == before + 1


def test_subscribers_are_searched_filtered_and_paged(client: FlaskClient, store: Store) -> None:
    sign_in(client)
    for n in range(60):
        add_subscriber(store, check_input(f"reader{n:02}@example.net", themes=THEMES), now=NOW)
    unsubscribe(store, "bob@example.org", now=NOW, channel="web")

    def emails(**query: str) -> list[str]:
        page = client.get("/admin/subscribers", query_string=query).get_data(as_text=True)
        return re.findall(r'/admin/subscribers/\d+">([^<]+)</a>', page)

    assert emails(q="BOB") == ["bob@example.org"]
    assert emails(q="ada") == ["ada@example.org"]  # by name too: "<b>Ada</b>"
    assert emails(state="unsubscribed") == ["bob@example.org"]
    assert (
        len(emails()) == 50 and len(emails(page="2")) == 12 and emails(page="x")[0] == emails()[0]
    )
    assert emails(q="%") == [] and emails(q="reader5_") == []
    assert client.get("/admin/subscribers?state=nonsense").status_code == 400
    assert client.get("/admin/editions/2001-01-01").status_code == 404
    assert client.get("/admin/editions/garbage").status_code == 404


def test_passwords_are_hashed_with_scrypt_and_checked() -> None:
    stored = hash_password(PASSWORD)
    assert stored.startswith("scrypt$") and PASSWORD not in stored
    assert verify_password(PASSWORD, stored) and not verify_password(PASSWORD + "!", stored)
    assert hash_password(PASSWORD) != stored  # salted
    assert not verify_password(PASSWORD, "not a hash") and not verify_password("", "")


def test_the_chart_stacks_each_edition_s_states_to_scale() -> None:
    from datetime import date

    from digest.web.chart import AXIS, HEIGHT, deliveries_chart

    assert deliveries_chart([]).bars == ()
    chart = deliveries_chart(
        [
            (date(2026, 11, 2), {"sent": 30, "failed": 10, "skipped": 0, "queued": 0}),
            (date(2026, 11, 1), {"sent": 10}),
        ]
    )
    assert chart.largest == 40
    first, *rest = chart.bars
    assert first.title == "2026-11-01: 10 sent"  # oldest on the left
    sent, failed = rest
    assert (sent.state, failed.state) == ("sent", "failed") and first.x < sent.x
    assert sent.height == 3 * failed.height and failed.y + failed.height == sent.y
    assert sent.y + sent.height == HEIGHT - AXIS and failed.y == 0


@given(wanted=st.one_of(st.text(max_size=60), st.from_regex(r"\A[/\\]{1,3}[\w.:@%\\/-]{0,40}\Z")))
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_after_sign_in_any_next_stays_on_this_dashboard(app: Flask, wanted: str) -> None:
    from urllib.parse import urlsplit

    with app.test_request_context("/admin/login", method="POST", data={"next": wanted}):
        from digest.web.admin import _safe_next

        found = _safe_next()
    if found is not None:
        parts = urlsplit(found)
        assert found.startswith("/admin") and not parts.scheme and not parts.netloc
        assert "\\" not in found and found.isprintable() and not found.startswith("//")


def test_numbers_and_text_in_paths_and_queries_are_bounded(client: FlaskClient) -> None:
    sign_in(client)
    for path in (
        "/admin/subscribers/99999999999999999999",
        "/admin/subscribers/2147483648",
        "/admin/subscribers/0",
        "/admin/subscribers/-1",
    ):
        assert client.get(path).status_code == 404, path
    assert client.get("/admin/subscribers?q=a%00b").status_code == 400
    assert client.get("/admin/subscribers?q=a%1b%5d0").status_code == 400
