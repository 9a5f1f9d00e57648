"""Several newsletters in one installation: each its own sources, sender and consent."""

from __future__ import annotations

import email
import json
import os
import re
import signal
import subprocess
import sys
from datetime import datetime
from email.message import Message
from email.utils import parseaddr
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient

from digest.cli import cli
from digest.config import load_settings
from digest.errors import ConfigError
from digest.store import Store
from digest.subscribers import check_input
from digest.tokens import tagged_address
from digest.web import create_app
from digest.worker import Worker
from tests.conftest import (
    DAY,
    NOW,
    SAMPLE_DUMP,
    THEMES,
    Clock,
    dkim_key,
    empty_postgres,
    fill,
    import_subscribers,
    message_text,
    wait_until,
)
from tests.dns_server import Zone, dns_server
from tests.smtp_server import smtp_server

DATA = Path(__file__).parent / "data"
INBOUND = DATA / "inbound"
SECRET = "test-secret-key-for-digest-tests-0123456789"

TWO = f"""
[digest]
title = "Papers"

[sender]
name = "Lab digest"
address = "digest@lab.example.org"

[delivery]
send_empty = true

[inbound]
bounce_address = "bounces@lab.example.org"

[[sources]]
name = "hf"
location = "{SAMPLE_DUMP}"

[[sources]]
name = "arxiv"
location = "{DATA / "arxiv-api-atom.xml"}"

[[newsletters]]
slug = "trending"
name = "Trending papers"
sources = ["hf"]

[[newsletters]]
slug = "theory"
name = "Theory reading group"
sources = ["arxiv"]
sender_name = "Theory group"
sender_address = "theory@maths.example.org"
theme = "compact"
"""


@pytest.fixture
def lab(project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (project / "config" / "digest.toml").write_text(TWO, encoding="utf-8")
    monkeypatch.setenv("SECRET_KEY", SECRET)
    monkeypatch.setenv("DIGEST_BASE_URL", "https://digest.example.org")
    return project


def theory_also(lab: Path, line: str) -> None:
    """Add a line to the theory group's [[newsletters]] table."""
    config = lab / "config" / "digest.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace('theme = "compact"', f'theme = "compact"\n{line}'), "utf-8")


def digest(*args: str, code: int = 0, input_text: str | None = None) -> str:
    result = CliRunner().invoke(cli, list(args), input=input_text, catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


def mails(project: Path) -> dict[str, list[Message]]:
    """The outbox's messages, by their To, oldest first."""
    found: dict[str, list[Message]] = {}
    for path in sorted((project / "var" / "outbox").glob("*.eml"), key=lambda p: p.stat().st_mtime):
        message = email.message_from_bytes(path.read_bytes())
        found.setdefault(parseaddr(str(message["To"]))[1], []).append(message)
    return found


def text_of(message: Message) -> str:
    return "".join(
        part.get_payload(decode=True).decode()
        for part in message.walk()
        if part.get_content_type() == "text/plain"
    )


def test_each_newsletter_mails_its_own_papers_from_its_own_sender(lab: Path) -> None:
    digest("subscribe", "ada@example.net", "--newsletter", "trending")
    digest("subscribe", "ada@example.net", "--newsletter", "theory")
    digest("subscribe", "bob@example.net", "--newsletter", "theory")
    ran = digest("run", "--date", "2026-11-28")
    assert "trending: sent 1" in ran and "theory: sent 2" in ran, ran
    ada = mails(lab)["ada@example.net"]
    by_list = {str(m["List-Id"]): m for m in ada}
    assert len(ada) == 2 and len(by_list) == 2
    trending = next(m for m in ada if "Trending papers" in str(m["List-Id"]))
    theory = next(m for m in ada if "Theory reading group" in str(m["List-Id"]))
    assert str(trending["From"]) == "Lab digest <digest@lab.example.org>"
    assert str(theory["From"]) == "Theory group <theory@maths.example.org>"
    assert trending["Message-ID"] != theory["Message-ID"]
    # The seed dump's papers in one, the arXiv feed's in the other, never mixed.
    atom = (DATA / "arxiv-api-atom.xml").read_text(encoding="utf-8")
    arxiv_titles = [" ".join(t.split()) for t in re.findall(r"<title>(.*?)</title>", atom, re.S)]
    arxiv_titles = [t for t in arxiv_titles if "arXiv Query" not in t and "ArXiv" not in t]
    assert arxiv_titles
    assert any(t in " ".join(text_of(theory).split()) for t in arxiv_titles)
    assert not any(t in " ".join(text_of(trending).split()) for t in arxiv_titles)
    listed = json.loads(digest("newsletters", "list", "--json"))["newsletters"]
    assert [(n["slug"], n["readers"]["active"]) for n in listed] == [("trending", 1), ("theory", 2)]
    assert listed[1]["from"] == "Theory group <theory@maths.example.org>"


def test_leaving_one_newsletter_by_one_click_keeps_the_other(lab: Path) -> None:
    for newsletter in ("trending", "theory"):
        digest("subscribe", "ada@example.net", "--newsletter", newsletter)
    digest("run", "--date", "2026-11-28")
    [trending] = [m for m in mails(lab)["ada@example.net"] if "Trending" in str(m["List-Id"])]
    one_click = re.search(r"<(https://[^>]+)>", str(trending["List-Unsubscribe"]))
    assert one_click is not None and trending["List-Unsubscribe-Post"]
    app = create_app({"TESTING": True, "WTF_CSRF_ENABLED": False})
    path = one_click.group(1).removeprefix("https://digest.example.org")
    response = app.test_client().post(path, data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    shown = digest("subscribers", "show", "ada@example.net", "--newsletter", "trending")
    assert "unsubscribed" in shown
    assert "active" in digest("subscribers", "show", "ada@example.net", "--newsletter", "theory")
    before = len(mails(lab)["ada@example.net"])
    ran = digest("run", "--date", "2026-11-29")
    assert "trending: sent 0" in ran and "theory: sent 1" in ran, ran
    after = mails(lab)["ada@example.net"][before:]
    assert [("Theory" in str(m["List-Id"])) for m in after] == [True]


def test_a_complaint_about_one_newsletter_stops_them_all(lab: Path) -> None:
    for newsletter in ("trending", "theory"):
        digest("subscribe", "ada@example.net", "--newsletter", newsletter)
    digest("subscribe", "bob@example.net", "--newsletter", "theory")
    digest("run", "--date", "2026-11-28")
    store = Store.open("sqlite:///var/digest.sqlite3").scoped("theory")
    reader = store.get_subscriber("ada@example.net")
    assert reader is not None
    [(_, delivery)] = store.deliveries_of(reader.id)
    store.close()
    # The envelope sender the theory digest went out with (VERP), as the report quotes it.
    sender = tagged_address("bounces@lab.example.org", SECRET, "bounce", delivery.id)
    complaint = (
        (INBOUND / "arf-complaint.eml")
        .read_bytes()
        .replace(b"bounces+42.abcdefghijklmnopqrst@example.org", sender.encode())
    )
    result = CliRunner().invoke(cli, ["inbound"], input=complaint)
    assert "now complained" in result.output, result.output
    for newsletter in ("trending", "theory"):
        shown = digest("subscribers", "show", "ada@example.net", "--newsletter", newsletter)
        assert "complained" in shown, (newsletter, shown)
    ran = digest("run", "--date", "2026-11-29")
    assert "trending: sent 0" in ran and "theory: sent 1" in ran, ran


def test_newsletters_are_checked_with_one_line_each(tmp_path: Path) -> None:
    config = tmp_path / "digest.toml"
    config.write_text(
        '[[sources]]\nname = "hf"\nlocation = "x.txt"\n'
        '[[newsletters]]\nslug = "Bad Slug"\n'
        '[[newsletters]]\nslug = "a"\nsources = ["nope"]\nsender_address = "not an address"\n'
        '[[newsletters]]\nslug = "a"\ncolour = "red"\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as raised:
        load_settings(config, environ={})
    said = "\n".join(raised.value.problems)
    assert "[[newsletters]] #1: slug: expected" in said
    assert "[[newsletters]] #2: sources: no [[sources]] is named 'nope'" in said
    assert "[[newsletters]] #2: sender_address: expected an email address" in said
    assert "[[newsletters]] #3: unknown key 'colour'" in said
    assert "the slug 'a' is used twice" in said


def test_an_unknown_newsletter_is_one_line_naming_the_ones_there_are(lab: Path) -> None:
    result = CliRunner().invoke(cli, ["subscribe", "ada@example.net", "--newsletter", "vision"])
    assert result.exit_code == 2
    assert "no newsletter 'vision' (this installation has: trending, theory)" in result.output


def test_without_newsletters_everything_is_the_main_one(project: Path) -> None:
    digest("subscribe", "ada@example.net")
    listed = json.loads(digest("newsletters", "list", "--json"))["newsletters"]
    assert [(n["slug"], n["readers"]["active"]) for n in listed] == [("main", 1)]
    store = Store.open("sqlite:///var/digest.sqlite3")
    try:
        [row] = store.subscriptions_of("ADA@example.net")
        assert row.newsletter == "main"
    finally:
        store.close()


@pytest.mark.slow
def test_four_senders_and_a_kill_on_postgres_mail_each_newsletter_once(
    postgres_url: str, tmp_path: Path
) -> None:
    empty_postgres(postgres_url)
    config = tmp_path / "digest.toml"
    config.write_text(
        '[sender]\naddress = "digest@example.org"\n[delivery]\nlease_seconds = 4\n'
        f'[[sources]]\nname = "hf"\nlocation = "{SAMPLE_DUMP}"\n'
        '[[newsletters]]\nslug = "main"\nname = "Trending"\n'
        '[[newsletters]]\nslug = "second"\nname = "Second"\nsender_address = "two@example.org"\n',
        encoding="utf-8",
    )
    store = Store.open(postgres_url)
    fill(store, 400, topics=["title:fairness"])  # readers of main; small messages
    second = store.scoped("second")
    import_subscribers(
        second,
        [check_input(f"reader{n}@example.org", themes=THEMES) for n in range(0, 800, 2)],
    )
    store.close()
    with smtp_server() as (server, port):
        env = os.environ | {
            "DIGEST_CONFIG": str(config),
            "DIGEST_DATABASE_URL": postgres_url,
            "SECRET_KEY": SECRET,
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(port),
            "SMTP_SECURITY": "none",
        }
        command_line = [sys.executable, "-m", "digest", "run", "--no-ingest", "--date", str(DAY)]
        senders = [
            subprocess.Popen(command_line, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for _ in range(4)
        ]
        wait_until(lambda: len(server.received) >= 100)
        senders[0].send_signal(signal.SIGKILL)
        for process in senders:
            process.communicate(timeout=600)
        connections = server.sessions_seen
        # The survivors take over the killed sender's claims (its process is gone);
        # a last run finds nothing left, or sends what was.
        finisher = subprocess.run(command_line, env=env, capture_output=True, text=True)
        assert finisher.returncode == 0, finisher.stderr
    arrived: dict[tuple[str, str], list[str]] = {}
    for item in server.received:
        message = item.message
        key = (str(message["List-Id"]), parseaddr(str(message["To"]))[1])
        arrived.setdefault(key, []).append(str(message["Message-ID"]))
    assert len(arrived) == 800  # 400 readers of each, 200 of them in both
    repeats = [ids for ids in arrived.values() if len(ids) > 1]
    assert len(repeats) <= connections
    assert all(len(set(ids)) == 1 for ids in repeats)  # a repeat has the same Message-ID


def _site() -> FlaskClient:
    return create_app({"TESTING": True, "WTF_CSRF_ENABLED": False}).test_client()


def _link(message: Message, kind: str) -> str:
    found = re.search(
        rf"https://digest\.example\.org(/{kind}/[^\s\"<>]+)", message_text(message.as_bytes())
    )
    assert found is not None, kind
    return found.group(1)


def test_the_site_signs_up_for_each_newsletter_ticked_and_serves_each(lab: Path) -> None:
    site = _site()
    home = site.get("/").get_data(as_text=True)
    assert 'value="trending" checked' in home and 'value="theory">' in home
    one = site.get("/n/theory").get_data(as_text=True)
    assert 'value="theory" checked' in one and 'value="trending">' in one
    assert site.get("/n/vision").status_code == 404
    none = site.post("/subscribe", data={"email": "eve@example.net", "newsletters_shown": "1"})
    assert none.status_code == 400 and "Choose at least one newsletter." in none.get_data(
        as_text=True
    )
    form = {
        "email": "eve@example.net",
        "newsletters_shown": "1",
        "newsletter": ["trending", "theory"],
    }
    assert "Check your inbox" in site.post("/subscribe", data=form).get_data(as_text=True)
    asked = mails(lab)["eve@example.net"]
    assert sorted(parseaddr(str(m["From"]))[1] for m in asked) == [
        "digest@lab.example.org",
        "theory@maths.example.org",
    ]
    # Confirming the theory group's link: a welcome from the theory group, and she is in it.
    [theory] = [m for m in asked if "maths" in str(m["From"])]
    confirm = _link(theory, "confirm")
    assert site.post(confirm).status_code == 200
    welcome = mails(lab)["eve@example.net"][-1]
    assert parseaddr(str(welcome["From"]))[1] == "theory@maths.example.org"
    assert "active" in digest("subscribers", "show", "eve@example.net", "--newsletter", "theory")
    assert "pending" in digest("subscribers", "show", "eve@example.net", "--newsletter", "trending")
    # Her preferences page is the theory group's, and names her other newsletter.
    page = site.get(_link(welcome, "preferences")).get_data(as_text=True)
    assert "Theory reading group" in page and "Your newsletters:" in page
    assert re.search(r'<a href="/preferences/[^"]+">Trending papers</a> \(pending\)', page)


def test_each_newsletter_has_its_own_archive_and_view_in_browser_link(lab: Path) -> None:
    digest("subscribe", "ada@example.net", "--newsletter", "theory")
    digest("run", "--date", "2026-11-28")
    [theory] = mails(lab)["ada@example.net"]
    assert "https://digest.example.org/n/theory/archive/2026-11-28" in message_text(
        theory.as_bytes()
    )
    site = _site()
    arxiv = site.get("/n/theory/archive/2026-11-28").get_data(as_text=True)
    trending = site.get("/archive/2026-11-28").get_data(as_text=True)
    assert "Theory reading group" in arxiv and "Trending papers" in trending
    assert site.get("/n/theory/archive").status_code == 200
    feed = site.get("/n/theory/archive.atom").get_data(as_text=True)
    assert "https://digest.example.org/n/theory/archive" in feed
    assert site.get("/n/vision/archive").status_code == 404


def test_the_dashboard_switches_between_newsletters(lab: Path) -> None:
    digest("subscribe", "ada@example.net", "--newsletter", "trending")
    digest("subscribe", "bob@example.net", "--newsletter", "theory")
    digest(
        "admin",
        "add",
        "root@example.org",
        "--password-stdin",
        input_text="a long enough password 1\n",
    )
    site = _site()
    signed = site.post(
        "/admin/login", data={"email": "root@example.org", "password": "a long enough password 1"}
    )
    assert signed.status_code in (302, 303)
    first = site.get("/admin/subscribers").get_data(as_text=True)
    assert "ada@example.net" in first and "bob@example.net" not in first
    assert "Newsletter:" in first and "?newsletter=theory" in first
    theory = site.get("/admin/subscribers?newsletter=theory").get_data(as_text=True)
    assert "bob@example.net" in theory and "ada@example.net" not in theory
    assert 'name="newsletter" value="theory"' in theory  # the search stays in it
    assert site.get("/admin/subscribers?newsletter=vision").status_code == 404


def test_a_csv_row_names_its_newsletter_and_the_export_keeps_it(lab: Path) -> None:
    (lab / "list.csv").write_text(
        "email,newsletter\nada@example.net,theory\nada@example.net,\nbob@example.net,vision\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(cli, ["subscribers", "import", "list.csv"])
    assert result.exit_code == 1  # one row skipped
    assert "list.csv:4: newsletter: no newsletter 'vision'" in result.output
    assert "active" in digest("subscribers", "show", "ada@example.net", "--newsletter", "theory")
    assert "active" in digest("subscribers", "show", "ada@example.net", "--newsletter", "trending")
    exported = digest("subscribers", "export", "--newsletter", "theory")
    assert exported.splitlines()[1].endswith(",theory")


def test_each_sender_signs_for_its_own_domain_and_doctor_checks_each(
    lab: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_file, record = dkim_key(lab)
    monkeypatch.setenv("DKIM_PRIVATE_KEY_FILE", str(key_file))
    monkeypatch.setenv("DKIM_SELECTOR", "mail")
    for newsletter in ("trending", "theory"):
        digest("subscribe", "ada@example.net", "--newsletter", newsletter)
    digest("run", "--date", "2026-11-28")
    signed = {
        parseaddr(str(m["From"]))[1]: re.search(r"\bd=([^;\s]+)", str(m["DKIM-Signature"]))
        for m in mails(lab)["ada@example.net"]
    }
    assert {sender: found.group(1) for sender, found in signed.items() if found} == {
        "digest@lab.example.org": "lab.example.org",
        "theory@maths.example.org": "maths.example.org",  # aligned with its From (DMARC)
    }
    zone: Zone = {
        ("lab.example.org", "TXT"): ["v=spf1 -all"],
        ("mail._domainkey.lab.example.org", "TXT"): [record],
        ("_dmarc.lab.example.org", "TXT"): ["v=DMARC1; p=none"],
        ("maths.example.org", "TXT"): ["v=spf1 -all"],
    }
    with dns_server(zone) as server:
        result = CliRunner().invoke(cli, ["doctor", "--dns-server", server])
    lines = [" ".join(line.split()) for line in result.output.splitlines()]
    assert "ok dns DKIM: mail._domainkey.lab.example.org matches the key" in lines
    assert "fail dns no DKIM record at mail._domainkey.maths.example.org" in lines
    assert "fail dns no DMARC record for maths.example.org" in lines
    assert sum("takes no mail" in line for line in lines) == 1  # bounces: checked once


def test_each_newsletter_runs_on_its_own_schedule(lab: Path) -> None:
    theory_also(lab, 'schedule = "0 18 * * 5"')
    digest("subscribe", "ada@example.net", "--newsletter", "trending")
    digest("subscribe", "bob@example.net", "--newsletter", "theory")
    settings = load_settings()
    worker = Worker(settings, lambda: Store.open(settings.database_url), clock=Clock(NOW))
    [(daily, every_day), (weekly, on_fridays)] = worker.schedules()
    assert (daily, every_day.schedule) == ("edition trending", "0 7 * * *")
    assert (weekly, on_fridays.schedule) == ("edition theory", "0 18 * * 5")
    # Saturday 08:00 UTC: the daily run is due, Friday evening's is past its grace.
    assert worker.due_now(NOW, every_day) is not None and worker.due_now(NOW, on_fridays) is None
    report = worker.run_job(settings=every_day)
    assert report is not None and report.delivery.sent == 1
    assert set(mails(lab)) == {"ada@example.net"}
    listed = json.loads(digest("newsletters", "list", "--json"))["newsletters"]
    assert datetime.fromisoformat(listed[1]["next_run"]).weekday() == 4  # a Friday


def test_a_paper_two_sources_bring_goes_to_each_newsletter_of_either(store: Store) -> None:
    from digest.ingest import read_source
    from digest.ingest.dedupe import dedupe

    json_feed = read_source(str(DATA / "hf-daily-papers.json"), today=DAY).entries
    dump = read_source(str(DATA / "daily-papers-nov27.txt"), today=DAY).entries
    store.add_entries(json_feed, decide=dedupe, source="json", now=NOW)
    again = store.add_entries(dump, decide=dedupe, source="dump", now=NOW)
    assert again.seen == 2  # two of the dump's three papers came first from the JSON
    only_dump = store.scoped("b", ["dump"]).create_edition(DAY, now=NOW)
    only_json = store.scoped("a", ["json"]).create_edition(DAY, now=NOW)
    assert only_dump is not None and only_dump.entry_count == 3
    assert only_json is not None and only_json.entry_count == len(json_feed)
    assert store.create_edition(DAY, now=NOW).entry_count == len(json_feed) + 1  # main: all


def test_a_newsletter_with_its_own_relay_sends_through_it(
    lab: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    theory_also(lab, 'relay_env = "THEORY_SMTP_URLS"')
    assert "THEORY_SMTP_URLS: not set" in CliRunner().invoke(cli, ["config", "check"]).output
    with smtp_server() as (lab_relay, lab_port), smtp_server() as (maths_relay, maths_port):
        monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("SMTP_PORT", str(lab_port))
        monkeypatch.setenv("SMTP_SECURITY", "none")
        monkeypatch.setenv("THEORY_SMTP_URLS", f"smtp://127.0.0.1:{maths_port}?security=none")
        for newsletter in ("trending", "theory"):
            digest("subscribe", "ada@example.net", "--newsletter", newsletter)
        ran = digest("run", "--date", "2026-11-28")
        assert "trending: sent 1" in ran and "theory: sent 1" in ran, ran
        # The dry run goes through no relay at all.
        digest("run", "--date", "2026-11-29", "--dry-run")
    assert [parseaddr(str(m.message["From"]))[1] for m in lab_relay.received] == [
        "digest@lab.example.org"
    ]
    assert [parseaddr(str(m.message["From"]))[1] for m in maths_relay.received] == [
        "theory@maths.example.org"
    ]


def test_a_reader_without_topics_gets_the_newsletters_default_topics(lab: Path) -> None:
    theory_also(lab, 'topics = ["Robots: title:manipulation"]')
    digest("subscribe", "ada@example.net", "--newsletter", "theory")
    digest("subscribe", "bob@example.net", "--newsletter", "theory", "--topic", "negotiating")
    digest("run", "--date", "2026-11-28")
    ada = " ".join(text_of(mails(lab)["ada@example.net"][0]).split())
    bob = " ".join(text_of(mails(lab)["bob@example.net"][0]).split())
    assert "Contact-Rich Manipulation Benchmarks" in ada and "Negotiating Agents" not in ada
    assert "Negotiating Agents" in bob and "Contact-Rich Manipulation" not in bob
    (lab / "config" / "digest.toml").write_text(
        TWO.replace('theme = "compact"', 'theme = "compact"\ntopics = ["title:("]'),
        encoding="utf-8",
    )
    checked = CliRunner().invoke(cli, ["config", "check"]).output
    assert "[[newsletters]] #2: topics:" in checked


def test_a_library_is_the_persons_and_a_vote_the_newsletters(lab: Path) -> None:
    for newsletter in ("trending", "theory"):
        digest("subscribe", "ada@example.net", "--newsletter", newsletter)
    (lab / "mine.bib").write_text(
        "@article{a, title={Hinge: Dexterous Manipulation}, eprint={2611.30001}}\n",
        encoding="utf-8",
    )
    said = digest("likes", "import", "ada@example.net", "mine.bib")
    assert "1 papers liked" in said
    store = Store.open("sqlite:///var/digest.sqlite3")
    try:
        rows = store.subscriptions_of("ada@example.net")
        liked = store.feedback_of([r.id for r in rows])
        assert [len(liked[r.id]) for r in rows] == [1, 1]
        store.set_feedback(rows[0].id, "arxiv:2611.30002", vote=-1, kind="vote", now=NOW)
        votes = store.feedback_of([r.id for r in rows])
        assert [len(votes[r.id]) for r in rows] == [2, 1]
    finally:
        store.close()
