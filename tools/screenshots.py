"""Write PNG screenshots of each email theme and of the web pages, the dashboard included,
for a person to look at.

Run with `make screenshots`; the pictures go to screenshots/.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from digest.app import accounts
from digest.config import load_settings
from digest.deliver.compose import ComposeSettings, make_renderer
from digest.ingest import read_source
from digest.models import StoredEntry, Topic
from digest.render import PersonalLinks
from digest.resources import resource_path
from digest.select.index import EditionIndex
from tools.browser import browser

OUT = Path("screenshots")
SIZES = {"phone": (375, 812), "desktop": (800, 1000)}


def main() -> None:
    OUT.mkdir(exist_ok=True)
    now = datetime.now(UTC)
    # The featured papers (code, stars, upvotes, organisation) show the richest card.
    entries = [
        *read_source(
            str(resource_path("examples", "featured-papers.json")), today=now.date()
        ).entries,
        *read_source(
            str(resource_path("examples", "daily-papers-mar21.txt")), today=now.date()
        ).entries,
    ]
    stored = [StoredEntry(n, e, "sample", now) for n, e in enumerate(entries, 1)]
    settings = load_settings(resource_path("config", "digest.toml"), environ={})
    renderer = make_renderer(ComposeSettings.of(settings).email)
    links = PersonalLinks(
        "http://localhost:8000/unsubscribe/x",
        "http://localhost:8000/preferences/x",
        feedback_url=lambda entry_id: f"http://localhost:8000/feedback/{entry_id}",
    )
    # Ada's topics in `make demo`: 30 papers in two sections.
    topics = [Topic("rlhf OR dpo OR alignment", "Alignment"), Topic("title:fairness", "Fairness")]
    with EditionIndex(stored) as index, browser() as chromium, tempfile.TemporaryDirectory() as tmp:
        selection = index.select(topics, max_entries=30)
        for theme in renderer.themes:
            email = renderer.render(
                edition_date=date(2026, 3, 21), selection=selection, links=links, theme=theme
            )
            page_file = Path(tmp) / f"{theme}.html"
            page_file.write_text(email.html, encoding="utf-8")
            for size, (width, height) in SIZES.items():
                for scheme in ("light", "dark"):
                    page = chromium.new_page(
                        viewport={"width": width, "height": height}, color_scheme=scheme
                    )
                    page.goto(page_file.as_uri())
                    target = OUT / f"email-{theme}-{size}-{scheme}.png"
                    page.screenshot(path=str(target), full_page=True)
                    tall = page.evaluate("document.documentElement.scrollHeight")
                    page.close()
                    print(f"{target}  ({email.shown} papers, {tall:,} px tall)")


def pages() -> None:
    """Screenshots of the web pages, served from a throwaway database with the sample."""
    import threading

    from werkzeug.serving import make_server

    from digest.app import job
    from digest.config import with_secret_key
    from digest.deliver.transports import OutboxTransport
    from digest.passwords import hash_password
    from digest.store import Store
    from digest.subscribers import check_input
    from digest.tokens import preferences_url
    from digest.web import create_app

    with tempfile.TemporaryDirectory() as tmp, browser() as chromium:
        port = 8765
        settings = with_secret_key(
            load_settings(
                resource_path("config", "digest.toml"),
                environ={
                    "DIGEST_DATABASE_URL": f"sqlite:///{tmp}/pages.sqlite3",
                    "DIGEST_BASE_URL": f"http://127.0.0.1:{port}",
                    "DIGEST_OUTBOX_DIR": f"{tmp}/outbox",
                },
            ),
            Path(tmp) / "secret_key",
        )
        store = Store.open(settings.database_url)
        subscriber, _ = accounts.add(
            store,
            check_input("ada@example.org", topics=["Fairness: title:fairness"], themes=["light"]),
            now=datetime.now(UTC),
        )
        outbox = OutboxTransport(Path(tmp) / "outbox")
        job.run(store, settings, job.Runtime(now=lambda: datetime.now(UTC), transport=outbox))
        day = store.recent_editions(1)[0].day.isoformat()
        store.save_admin("admin@example.org", hash_password(ADMIN_PASSWORD), now=datetime.now(UTC))
        store.close()
        app = create_app({"DIGEST_SETTINGS": settings})
        server = make_server("127.0.0.1", port, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        paths = {
            "home": "/",
            "archive": "/archive",
            "edition": f"/archive/{day}",
            "preferences": preferences_url("", settings.secret_key, subscriber.id),
        }
        admin_paths = {
            "admin-overview": "/admin/",
            "admin-subscribers": "/admin/subscribers",
            "admin-subscriber": f"/admin/subscribers/{subscriber.id}",
            "admin-editions": "/admin/editions",
            "admin-sources": "/admin/sources",
            "admin-test-send": "/admin/test-send",
        }
        site = f"http://127.0.0.1:{port}"
        try:
            for size, (width, height) in SIZES.items():
                for scheme in ("light", "dark"):
                    context = chromium.new_context(
                        viewport={"width": width, "height": height}, color_scheme=scheme
                    )
                    page = context.new_page()
                    shoot = {**paths, "admin-login": "/admin/login"}
                    for name, path in shoot.items():
                        page.goto(site + path)
                        _picture(page, f"page-{name}-{size}-{scheme}.png")
                        if name == "edition":  # the whole page is tall: its first screen too
                            target = OUT / f"page-{name}-{size}-{scheme}-first-screen.png"
                            page.screenshot(path=str(target))
                    page.get_by_label("Email").fill("admin@example.org")
                    page.get_by_label("Password").fill(ADMIN_PASSWORD)
                    page.get_by_role("button", name="Sign in").click()
                    page.get_by_role("heading", name="Overview").wait_for()
                    for name, path in admin_paths.items():
                        page.goto(site + path)
                        _picture(page, f"page-{name}-{size}-{scheme}.png")
                    context.close()
        finally:
            server.shutdown()


#: The throwaway database's admin, to picture the dashboard.
ADMIN_PASSWORD = "screenshots-only-password"


def _picture(page: Any, name: str) -> None:
    target = OUT / name
    page.screenshot(path=str(target), full_page=True)
    print(target)


if __name__ == "__main__":
    main()
    pages()
