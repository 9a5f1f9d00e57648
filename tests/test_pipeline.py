"""The job's recipes: preview and status read what run would do and did, on a real
SQLite file and the outbox."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from digest.app import job, queries, tryouts
from digest.deliver.transports import transport_for
from digest.plan import Skip, Wait
from digest.store import Store
from digest.subscribers import check_input
from digest.subscriptions import PAUSED

from .conftest import DAY, NOW, THEMES, fill, make_settings, run, set_paused, subscribe


def test_a_preview_asks_the_decider_and_selects_as_a_run_would(
    store: Store, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, None)
    fill(store, 0)
    ada, _ = subscribe(
        store, check_input("ada@example.org", topics=["title:fairness"], themes=THEMES)
    )
    before = tryouts.preview(store, settings, ada, day=DAY, now=NOW)
    assert not before.published and before.personal and before.decision is not None
    paused = set_paused(store, "ada@example.org", paused=True)
    assert paused is not None
    said = tryouts.preview(store, settings, paused, day=None, now=NOW)
    assert said.decision == Skip(PAUSED)
    set_paused(store, "ada@example.org", paused=False)
    assert run(store, settings).delivery.sent == 1
    latest = tryouts.preview(
        store, settings, tryouts.tried_out(ada.topics, None), day=None, now=NOW
    )
    assert latest.published and latest.day == DAY
    assert latest.selection == before.selection  # the edition carries what was waiting
    rendered = tryouts.render_preview(settings, latest, theme="dark", subscriber=ada)
    assert rendered.shown == latest.selection.count > 0 and "/unsubscribe/" in rendered.html


def test_a_preview_in_local_mode_says_when_the_reader_gets_it(store: Store, tmp_path: Path) -> None:
    config = tmp_path / "local.toml"
    config.write_text('[schedule]\ndelivery = "local"\ncron = "0 7 * * *"\n')
    from digest.config import load_settings

    settings = load_settings(config, environ={"DIGEST_OUTBOX_DIR": str(tmp_path / "o")})
    fill(store, 0)
    tokyo, _ = subscribe(store, check_input("t@example.org", timezone="Asia/Tokyo", themes=THEMES))
    early = NOW.replace(hour=0) - timedelta(hours=12)  # 21:00 the day before in Tokyo
    said = tryouts.preview(store, settings, tokyo, day=DAY, now=early)
    assert isinstance(said.decision, Wait) and said.decision.until.hour == 7


def test_status_reads_subscribers_runs_and_editions(store: Store, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, None)
    fill(store, 3)
    report = run(store, settings, transport=transport_for(settings))
    found = queries.status(store, settings, editions=7, now=NOW)
    assert found.subscribers["active"] == 3 and found.running is None
    assert found.last_run is not None and found.last_run.outcome == report.outcome
    assert [e.edition.day for e in found.editions] == [DAY]
    assert found.editions[0].deliveries["sent"] == report.delivery.sent == 3
    assert found.next_run is not None and found.next_run > NOW


def test_a_dry_run_words_its_summary_as_what_would_happen(store: Store, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, None)
    fill(store, 2)
    report = job.dry_run(store, settings, now=lambda: NOW, day=DAY)
    assert report.summary() == "would send 2, fail 0, skip 0"
    assert not list((tmp_path / "outbox").glob("*.eml"))


def test_a_titles_only_theme_previews_as_many_papers_as_run_sends(
    store: Store, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, None)
    fill(store, 0)
    cards = tryouts.preview(store, settings, tryouts.tried_out((), "light"), day=DAY, now=NOW)
    titles = tryouts.preview(store, settings, tryouts.tried_out((), "compact"), day=DAY, now=NOW)
    assert cards.selection.count == settings.max_entries < titles.selection.count
