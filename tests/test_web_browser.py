"""End to end in real headless Chromium: subscribe, confirm, tune, receive, one-click leave."""

from __future__ import annotations

import re
import threading
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

from digest.app import job
from digest.deliver.transports import SmtpTransport
from digest.ingest.dedupe import dedupe
from digest.models import Entry
from digest.store import Store
from digest.web import create_app
from tools.browser import browser, chromium_available

from .conftest import NOW, Clock, Sleeps, fill, make_settings, message_text
from .smtp_server import free_port, smtp_server

pytestmark = pytest.mark.skipif(
    not chromium_available(),
    reason="headless Chromium not installed (apt-get install chromium; .ci/run does it)",
)


def decoded(data: bytes) -> str:
    return message_text(data)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[Any, Any, str, Store]]:
    web_port = free_port()
    base = f"http://127.0.0.1:{web_port}"
    with smtp_server() as (mail, smtp_port):
        settings = make_settings(
            tmp_path,
            smtp_port,
            DIGEST_BASE_URL=base,
            DIGEST_DATABASE_URL=f"sqlite:///{tmp_path / 'site.sqlite3'}",
        )
        app = create_app({"DIGEST_SETTINGS": settings})
        store: Store = app.extensions["digest"].store
        fill(store, 0)
        server = make_server("127.0.0.1", web_port, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield mail, settings, base, store
        finally:
            server.shutdown()
            store.close()


def test_a_reader_subscribes_confirms_tunes_receives_and_leaves(
    site: tuple[Any, Any, str, Store],
) -> None:
    mail, settings, base, store = site
    with browser() as chromium:
        page = chromium.new_page()
        page.goto(base + "/")
        page.get_by_label("Email address").fill("reader@example.org")
        page.get_by_label("Topics").fill("Fairness: title:fairness")
        page.get_by_label("Email theme").select_option("dark")
        page.get_by_role("button", name="Subscribe").click()
        page.get_by_role("heading", name="Check your inbox").wait_for()

        (confirmation,) = mail.received
        assert confirmation.recipients == ["reader@example.org"]
        link = re.search(rf"{re.escape(base)}/confirm/[\w.-]+", decoded(confirmation.data))
        assert link is not None
        # A mail scanner probes the link with HEAD first: that confirms nothing.
        assert page.request.fetch(link.group(0), method="HEAD").status == 200
        assert store.get_subscriber("reader@example.org").status == "pending"  # type: ignore[union-attr]
        page.goto(link.group(0))
        page.get_by_role("button", name="Confirm my subscription").click()
        page.get_by_role("heading", name="You are subscribed").wait_for()

        page.get_by_role("link", name="Choose topics, theme and timezone").click()
        page.get_by_role("heading", name="Your preferences").wait_for()
        assert "Distraction is All You Need for Fairness" in page.content()
        page.get_by_role("textbox", name="Topics").fill("Alignment: rlhf OR dpo")
        page.get_by_role("button", name="Save preferences").click()
        page.get_by_text("Saved.").wait_for()
        assert "Taming Overconfidence in LLMs" in page.content()

    report = job.run(
        store,
        settings,
        job.Runtime(now=Clock(NOW), transport=SmtpTransport(settings.smtp), sleep=Sleeps()),
        job.RunOptions(ingest_sources=False),
    )
    assert report.delivery.sent == 1
    digest = mail.received[-1]
    message = digest.message
    assert message["Subject"] == "Daily papers, Nov 28: 14 new papers on your topics"
    body = decoded(digest.data)
    assert "ALIGNMENT" in body.upper() and "Taming Overconfidence in LLMs" in body

    target = re.search(r"<(https?:[^>]+)>", message["List-Unsubscribe"])
    assert target is not None and target.group(1).startswith(base + "/unsubscribe/")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    probe = urllib.request.Request(target.group(1), method="HEAD")
    with urllib.request.urlopen(probe) as response:
        assert response.status == 200
    assert store.get_subscriber("reader@example.org").status == "active"  # type: ignore[union-attr]
    request = urllib.request.Request(
        target.group(1),
        data=b"List-Unsubscribe=One-Click",
        method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    with urllib.request.urlopen(request) as response:
        assert response.status == 200

    tomorrow = [Entry(title="RLHF for tomorrow", abstract="rlhf")]
    store.add_entries(tomorrow, decide=dedupe, source="x", now=NOW + timedelta(days=1))
    before = len(mail.received)
    tomorrow = job.run(
        store,
        settings,
        job.Runtime(
            now=Clock(NOW + timedelta(days=1)),
            transport=SmtpTransport(settings.smtp),
            sleep=Sleeps(),
        ),
        job.RunOptions(ingest_sources=False),
    )
    assert tomorrow.edition is not None and tomorrow.delivery.sent == 0
    assert len(mail.received) == before


def test_a_new_reader_rates_papers_to_start_follows_an_author_and_gets_their_paper(
    site: tuple[Any, Any, str, Store],
) -> None:
    from digest.subscribers import check_input
    from digest.tokens import feedback_url, preferences_url

    from .conftest import THEMES, subscribe

    mail, settings, base, store = site
    reader, _ = subscribe(
        store, check_input("new@example.org", themes=THEMES)
    )  # no topics, no library
    written = Entry(
        title="Sparse routing for tiny models",
        abstract="We route tokens.",
        authors=("Ada Lovelace", "Grace Hopper"),
        arxiv_id="2611.00777",
    )
    store.add_entries([written], decide=dedupe, source="feed", now=NOW)
    paper = next(s for s in store.list_entries() if s.entry.arxiv_id == "2611.00777")
    author = "Grace Hopper"
    with browser() as chromium:
        page = chromium.new_page()
        page.goto(base + preferences_url("", settings.secret_key, reader.id))
        page.get_by_role("link", name="Rate a few papers").click()
        page.get_by_role("heading", name="Rate a few papers to start").wait_for()
        assert store.feedback_of([reader.id])[reader.id] == []  # showing them records nothing
        page.get_by_label("More like this").first.check()
        page.get_by_label("Less like this").nth(1).check()
        page.get_by_role("button", name="Save my ratings").click()
        page.get_by_text("2 ratings saved").wait_for()
        assert sorted(m.vote for m in store.feedback_of([reader.id])[reader.id]) == [-1, 1]

        # The byline link of a card in the email: it shows the authors, one button each.
        page.goto(base + feedback_url("", settings.secret_key, reader.id, paper.id) + "?v=follow")
        assert store.follows_of([reader.id])[reader.id] == ()
        page.locator("li", has_text=author).get_by_role("button", name="Follow").click()
        page.get_by_text(f"You follow {author}").wait_for()
        assert [f.author for f in store.follows_of([reader.id])[reader.id]] == [author]

        # Both pages fit a phone and stay readable.
        from tools.browser import CONTRAST_SCRIPT

        phone = chromium.new_page(viewport={"width": 375, "height": 800})
        prefs = base + preferences_url("", settings.secret_key, reader.id)
        for path in (prefs + "/start", page.url, prefs):
            phone.goto(path)
            assert phone.evaluate("document.documentElement.scrollWidth") <= 375, path
            unreadable = [c for c in phone.evaluate(CONTRAST_SCRIPT) if c["ratio"] < c["needed"]]
            assert not unreadable, (path, unreadable[:3])

    report = job.run(
        store,
        settings,
        job.Runtime(now=Clock(NOW), transport=SmtpTransport(settings.smtp), sleep=Sleeps()),
        job.RunOptions(ingest_sources=False),
    )
    assert report.delivery.sent == 1
    body = decoded(mail.received[-1].data)
    followed = body.split("By authors you follow", 1)[1]
    assert paper.entry.title[:30] in followed and f"You follow {author}" in followed


def test_pages_fit_a_phone_and_work_with_the_keyboard(site: tuple[Any, Any, str, Store]) -> None:
    from tools.browser import CONTRAST_SCRIPT

    _, _, base, _ = site
    with browser() as chromium:
        for scheme in ("light", "dark"):
            page = chromium.new_page(viewport={"width": 375, "height": 800}, color_scheme=scheme)
            for path in ("/", "/archive"):
                page.goto(base + path)
                assert page.evaluate("document.documentElement.scrollWidth") <= 375
                unreadable = [c for c in page.evaluate(CONTRAST_SCRIPT) if c["ratio"] < c["needed"]]
                assert not unreadable, (scheme, path, unreadable[:3])
            page.goto(base + "/")
            page.keyboard.press("Tab")
            assert page.evaluate("document.activeElement.textContent") == "Skip to content"
            page.close()


#: The controls and tables a reader of the page cannot see without scrolling sideways.
HIDDEN_SIDEWAYS = """
[...document.querySelectorAll('.table-scroll')]
  .filter(e => e.scrollWidth > e.clientWidth + 1).map(e => 'table: ' + e.textContent.slice(0, 40))
  .concat([...document.querySelectorAll('main button, main a')]
    .filter(e => { const r = e.getBoundingClientRect();
                   return r.width > 0 && (r.left < 0 || r.right > window.innerWidth + 1); })
    .map(e => 'control: ' + e.textContent.trim().slice(0, 40)))
"""


def test_an_admin_signs_in_finds_a_reader_pauses_them_and_signs_out(
    site: tuple[Any, Any, str, Store], tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from digest.cli import cli
    from digest.passwords import hash_password
    from digest.subscribers import check_input

    from .conftest import THEMES, import_subscribers

    _, settings, base, store = site
    store.save_admin("root@example.org", hash_password("a long enough password"), now=NOW)
    import_subscribers(
        store,
        [
            check_input(f"reader{n}@example.org", name=f"Reader {n}", themes=THEMES)
            for n in range(30)
        ],
    )
    # One edition, with a sent delivery whose Message-ID and reply are long: on a phone
    # its Resend button must still be on screen.
    from digest.ingest import dedupe
    from digest.models import Entry

    store.add_entries([Entry(title="A paper")], decide=dedupe, source="feed", now=NOW)
    edition = store.create_edition(NOW.date(), now=NOW, allow_empty=True)
    assert edition is not None
    reader18 = store.get_subscriber("reader18@example.org")
    assert reader18 is not None
    ((_, delivery),) = store.deliveries_of(reader18.id)
    store.mark_sent(
        delivery.id,
        message_id="<20261128.18.abcdefabcdefabcdefabcdef@digest.example.org>",
        reply="250 2.0.0 Ok: queued as 4F3A2B1C0D9E8F7A6B5C4D3E2F1A0B9C8D7E6F5A4B3C2D1E0F",
        now=NOW,
    )
    with browser() as chromium:
        page = chromium.new_page(viewport={"width": 375, "height": 800})
        page.goto(base + "/admin/subscribers")  # no session: the sign-in page
        page.get_by_label("Email").fill("root@example.org")
        page.get_by_label("Password").fill("a long enough password")
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("heading", name="Subscribers").wait_for()  # back where it began
        page.get_by_label("Address or name").fill("Reader 17")
        page.get_by_role("button", name="Search").click()
        page.get_by_role("link", name="reader17@example.org").click()
        page.get_by_role("heading", name="reader17@example.org").wait_for()
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        page.get_by_role("button", name="Pause").click()
        page.get_by_text("reader17@example.org is paused.").wait_for()

        shown = CliRunner().invoke(
            cli,
            [
                "--config",
                str(settings.config_path),
                "subscribers",
                "show",
                "reader17@example.org",
                "--json",
            ],
            env={"DIGEST_DATABASE_URL": settings.database_url},
        )
        assert shown.exit_code == 0, shown.output
        assert '"state": "paused"' in shown.stdout and '"channel": "admin"' in shown.stdout

        from tools.browser import CONTRAST_SCRIPT

        for path in (
            "/admin/",
            "/admin/subscribers",
            page.url,
            f"/admin/subscribers/{reader18.id}",
            f"/admin/editions/{NOW.date().isoformat()}",
            "/admin/editions",
            "/admin/sources",
            "/admin/test-send",
        ):
            for scheme in ("light", "dark"):
                page.emulate_media(color_scheme=scheme)
                page.goto(path if path.startswith("http") else base + path)
                assert page.evaluate("document.documentElement.scrollWidth") <= 375, path
                # Nothing hides in a table that scrolls sideways: every control is on screen.
                assert page.evaluate(HIDDEN_SIDEWAYS) == [], path
                low = [c for c in page.evaluate(CONTRAST_SCRIPT) if c["ratio"] < c["needed"]]
                assert not low, (scheme, path, low[:3])

        page.goto(f"{base}/admin/subscribers/{reader18.id}")
        page.get_by_role("button", name="Resend").click()
        page.get_by_text("reader18@example.org's digest of 2026-11-28 is queued again").wait_for()
        page.get_by_role("button", name="Sign out").click()
        page.get_by_role("heading", name="Sign in").wait_for()
        page.goto(base + "/admin/")
        page.get_by_role("heading", name="Sign in").wait_for()  # the session is over
