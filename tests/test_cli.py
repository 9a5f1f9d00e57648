"""The digest command as a user runs it: output, exit codes, one-line errors."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from digest.cli import cli

from .conftest import ARXIV_RSS, HF_JSON, SAMPLE_DUMP, all_commands

ROOT = Path(__file__).parents[1]


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.mark.parametrize("command", all_commands(cli), ids=" ".join)
def test_every_command_has_help(command: tuple[str, ...]) -> None:
    result = run(*command, "--help")
    assert result.exit_code == 0
    assert "Usage: " in result.stdout


def test_ingest_the_sample_twice(project: Path) -> None:
    first = run("ingest")
    assert first.exit_code == 0
    assert "sample: dump, read 73, new 73, already seen 0" in first.stdout
    second = run("ingest", "--json")
    report = json.loads(second.stdout)
    assert second.exit_code == 0
    assert report["totals"]["new"] == 0 and report["totals"]["seen"] == 73
    assert report["sources"][0]["format"] == "dump"


def test_one_broken_source_never_stops_the_others(project: Path) -> None:
    broken = project / "broken.json"
    broken.write_text("[{oops")
    result = run("ingest", str(broken), str(HF_JSON), str(ARXIV_RSS), "/no/such/feed.xml")
    assert result.exit_code == 1
    assert "hf-daily-papers.json: hf-json, read 20, new 20" in result.stdout
    # The RSS feed's second new paper is the JSON's warm-start paper: seen already.
    assert "read 2, new 1, already seen 1, skipped 3 re-announcements" in result.stdout
    assert result.stderr.splitlines() == [
        f"digest: error: {broken}: invalid JSON at line 1 column 3: "
        "Expecting property name enclosed in double quotes",
        "digest: error: /no/such/feed.xml: no such file",
    ]
    assert str(broken) not in result.stdout  # each error told once, on stderr


def test_a_header_only_day_exits_zero_with_a_warning(project: Path) -> None:
    page = project / "empty-day.txt"
    page.write_text("new\n\nSubscribe\n\nMar 21\n")
    result = run("ingest", str(page))
    assert result.exit_code == 0
    assert "empty day" in result.stdout


def test_bad_settings_fail_every_command_with_one_line_each(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "config" / "digest.toml").write_text('[digest]\ntimezone = "Nowhere"\n')
    monkeypatch.setenv("SMTP_SECURITY", "maybe")
    for command in (["config", "check"], ["ingest"]):
        result = run(*command)
        assert result.exit_code == 2
        lines = result.stderr.splitlines()
        assert lines[0].startswith("digest: config error: config/digest.toml: [digest] timezone")
        assert lines[1] == (
            "digest: config error: SMTP_SECURITY: expected starttls, ssl or none, got 'maybe'"
        )
        assert lines[2].startswith("hint: ")
        assert "Traceback" not in result.stderr


def test_config_check_says_ok_and_warns_about_development_defaults(project: Path) -> None:
    result = run("config", "check")
    assert result.exit_code == 0
    assert result.stdout.startswith("ok: config/digest.toml (1 sources")
    assert "SECRET_KEY is not set" in result.stderr


def test_commands_that_sign_links_refuse_to_start_without_a_key_on_a_public_site(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGEST_BASE_URL", "https://digest.example.org")
    for command in (
        ("run",),
        ("send",),
        ("worker",),
        ("serve",),
        ("preview",),
        ("config", "check"),
    ):
        result = run(*command)
        assert result.exit_code == 2, command
        assert result.stderr.startswith("digest: config error: SECRET_KEY is not set"), command
        assert "secrets.token_urlsafe(32)" in result.stderr
    assert run("ingest").exit_code == 0  # reading feeds signs nothing
    assert not (project / "var" / "secret_key").exists()
    from digest.web import create_app

    with pytest.raises(SystemExit) as raised:
        create_app()
    assert raised.value.code == 2


def test_config_check_names_sources_that_cannot_work(project: Path) -> None:
    config = project / "config" / "digest.toml"
    config.write_text(
        '[[sources]]\nname = "gone"\nlocation = "/no/such/feed.xml"\n', encoding="utf-8"
    )
    result = run("config", "check")
    assert result.exit_code == 2
    assert "[[sources]] 'gone': no such file: /no/such/feed.xml" in result.stderr
    ingest = run("ingest")  # one missing source fails itself only, naming its path
    assert ingest.exit_code == 1 and "gone: no such file: /no/such/feed.xml" in ingest.stderr
    assert "gone" not in ingest.stdout.split("ingest:")[0]  # told once, on stderr
    config.write_text('[[sources]]\nlocation = "ftp://example.org/feed"\n', encoding="utf-8")
    result = run("config", "check")
    assert result.exit_code == 2 and "only http(s) URLs are fetched" in result.stderr
    config.write_text('[[sources]]\nlocation = "x.txt"\nformat = "pdf"\n', encoding="utf-8")
    assert "format: expected one of dump, feed, hf-json, json-feed" in run("config", "check").stderr


def test_a_storage_error_is_one_line_and_exit_2(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGEST_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:9/x")
    result = run("ingest")
    assert result.exit_code == 2
    assert result.stderr.startswith("digest: error: database postgresql+psycopg://nobody@")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("DIGEST_DATABASE_URL", "mysql://x", "SQLite or PostgreSQL, not 'mysql'"),
        ("DIGEST_DATABASE_URL", "postgresql+nosuchdriver://x", "postgresql+nosuchdriver"),
        ("DIGEST_DATABASE_URL", "sqlite:////nonexistent/dir/x.db", "does not exist: /nonexistent"),
        ("SMTP_TIMEOUT", "nan", "SMTP_TIMEOUT: expected seconds above 0"),
        ("SMTP_TIMEOUT", "1e308", "SMTP_TIMEOUT: expected seconds above 0"),
    ],
)
def test_config_check_and_every_command_refuse_bad_environment_values(
    project: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str, problem: str
) -> None:
    monkeypatch.setenv(name, value)
    for command in (("config", "check"), ("ingest",), ("run",), ("status",)):
        result = run(*command)
        assert result.exit_code == 2, (command, result.stdout)
        assert problem in result.stderr and "Traceback" not in result.stderr
    assert not Path("/nonexistent").exists()


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("[limits]\nfetch_timeout_seconds = 1e308", "fetch_timeout_seconds: expected a number"),
        ("[limits]\nfetch_timeout_seconds = nan", "fetch_timeout_seconds: expected a number"),
        ("[delivery]\nexpire_hours = inf", "expire_hours: expected a number"),
        ("[delivery]\nretries = 100000000000", "retries: expected a whole number from 1 to 100"),
        ("[email]\nmax_html_bytes = 5", "max_html_bytes: expected a whole number from 10,000"),
    ],
)
def test_non_finite_or_absurd_numbers_are_refused(project: Path, line: str, problem: str) -> None:
    config = project / "config" / "digest.toml"
    config.write_text(config.read_text(encoding="utf-8") + line + "\n", encoding="utf-8")
    for command in (("config", "check"), ("ingest",)):
        result = run(*command)
        assert result.exit_code == 2
        assert problem in result.stderr and "Traceback" not in result.stderr


def test_python_dash_m_runs_the_same_command(project: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "digest", "ingest", "--json", str(SAMPLE_DUMP)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["totals"]["new"] == 73


def test_ingest_of_a_generated_5000_entry_dump(project: Path) -> None:
    abstract = "We propose a method. It works well on benchmarks. Results follow."
    body = "\n\n".join(f"Generated Paper Number {n}\n\n{abstract} {n}" for n in range(5000))
    page = project / "big.txt"
    page.write_text("Mar 21\n\n" + body)
    result = run("ingest", "--json", str(page))
    assert json.loads(result.stdout)["totals"]["new"] == 5000


@pytest.mark.slow
def test_a_built_wheel_carries_templates_config_and_examples(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("digest-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(tmp_path / "site")
    # Run from an empty folder, so only the packaged resources can be found.
    work = tmp_path / "elsewhere"
    work.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "digest", "ingest", "--json"],
        cwd=work,
        env={"PYTHONPATH": str(tmp_path / "site"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["totals"]["new"] == 73 + 3  # the sample and the featured
    assert (tmp_path / "site" / "digest" / "_resources" / "templates").is_dir()


def test_subscribe_list_unsubscribe(project: Path) -> None:
    result = run(
        "subscribe",
        "Ada@Example.ORG",
        "--name",
        "Ada",
        "--topic",
        "RL: rlhf OR dpo",
        "--theme",
        "dark",
        "--timezone",
        "Europe/Paris",
    )
    assert result.exit_code == 0
    assert result.stdout == "subscribed Ada@example.org (active; topics: RL: rlhf OR dpo)\n"
    listed = json.loads(run("subscribers", "list", "--json").stdout)
    assert listed["counts"] == {
        "pending": 0,
        "active": 1,
        "paused": 0,
        "unsubscribed": 0,
        "bounced": 0,
        "complained": 0,
    }
    assert listed["subscribers"][0]["topics"] == [{"query": "rlhf OR dpo", "label": "RL"}]
    assert run("pause", "ada@example.org").stdout == "Ada@example.org is paused\n"
    table = run("subscribers", "list").stdout.splitlines()
    assert table[0].split() == [
        "email",
        "name",
        "state",
        "theme",
        "cadence",
        "joined",
        "last",
        "sent",
        "topics",
    ]
    assert table[1].startswith("Ada@example.org  Ada   paused  dark   ")
    assert table[1].endswith("  RL: rlhf OR dpo")
    rows = list(csv.reader(io.StringIO(run("subscribers", "list", "--csv").stdout)))
    assert rows[1][:4] == ["Ada@example.org", "Ada", "paused", "dark"]
    assert rows[1][4] == "daily" and rows[1][6:] == ["", "RL: rlhf OR dpo"]  # never mailed
    assert "1 paused" in run("status").stdout + run("subscribers", "list").stderr
    assert run("resume", "ada@example.org").stdout == "Ada@example.org is active\n"
    assert run("unsubscribe", "ada@example.org").stdout == "unsubscribed Ada@example.org\n"
    assert run("unsubscribe", "nobody@example.org").exit_code == 1
    assert run("pause", "ada@example.org").exit_code == 1  # nothing to pause: they left


def test_nobody_but_the_reader_brings_back_someone_who_left(project: Path) -> None:
    assert run("subscribe", "ada@example.org", "--topic", "rlhf").exit_code == 0
    assert run("unsubscribe", "ada@example.org").exit_code == 0
    before = json.loads(run("subscribers", "list", "--json").stdout)["subscribers"]
    again = run("subscribe", "ada@example.org", "--topic", "other", "--name", "New")
    assert again.exit_code == 1
    assert again.stderr.startswith("digest: ada@example.org unsubscribed; left unchanged\n")
    assert "--invite" in again.stderr
    source = project / "list.csv"
    source.write_text("email,name\nbob@example.org,Bob\nada@example.org,Ada\n")
    imported = run("subscribers", "import", str(source))
    assert imported.exit_code == 1
    assert imported.stderr.startswith(f"{source}:3: ada@example.org unsubscribed; left unchanged")
    assert json.loads(run("subscribers", "list", "--json").stdout)["subscribers"][:1] == before
    invited = run("subscribe", "ada@example.org", "--invite")
    assert invited.exit_code == 0
    assert invited.stdout == "invited ada@example.org: they stay unsubscribed until they confirm\n"
    (message,) = (project / "var" / "outbox").glob("*.eml")
    assert "confirm your subscription" in message.read_text()
    history = run("subscribers", "show", "ada@example.org").stdout.splitlines()
    assert history[0] == "ada@example.org\tunsubscribed\trlhf"
    assert [line.split()[2:] for line in history[1:3]] == [
        ["active", "by", "cli"],
        ["unsubscribed", "by", "cli"],
    ]
    assert history[3].strip().startswith("theme:")


def test_bad_input_to_subscribe_is_one_line(project: Path) -> None:
    result = run("subscribe", "ada@example.org", "--topic", 'deep "learning')
    assert result.exit_code == 2
    assert result.stderr == (
        "digest: error: invalid query 'deep \"learning': unbalanced quote at column 6\n"
    )
    result = run("subscribe", "not-an-address")
    assert result.stderr.startswith("digest: error: 'not-an-address': An email address must")


def test_an_address_no_message_can_carry_is_refused_by_subscribe_and_import(
    project: Path,
) -> None:
    result = run("subscribe", "josé@example.org")
    assert result.exit_code == 2
    assert "Internationalized characters before the @-sign" in result.stderr
    source = project / "list.csv"
    source.write_text("email\njosé@example.org\nok@bücher.example\n", encoding="utf-8")
    imported = run("subscribers", "import", str(source))
    assert imported.exit_code == 1
    assert imported.stderr.startswith(f"{source}:2: ")
    assert "1 created" in imported.stdout


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"email,name\nada@example.org,Ada\n\x00\x01\x02binary", ":3: binary data"),
        (b"email,name\nada@example.org,Caf\xe9\n", ":2: not UTF-8 (byte 0xe9)"),
        (b"email,name\nada@example.org," + b"x" * 5_000_000 + b"\n", ":2: a line longer"),
        (b'email,name\nada@example.org,"' + b"x\n" * 70_000 + b'"\n', "field larger than"),
    ],
)
def test_an_unreadable_csv_is_one_line_naming_the_file_and_line(
    project: Path, content: bytes, problem: str
) -> None:
    source = project / "list.csv"
    source.write_bytes(content)
    result = run("subscribers", "import", str(source))
    assert result.exit_code == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"digest: error: {source}:") and problem in line
    assert line.endswith("nothing was imported")
    assert run("subscribers", "list", "--csv").stdout.splitlines()[1:] == []


def test_an_unexpected_error_is_one_line_without_v(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from digest.app import job

    def broken(*args: object, **kwargs: object) -> None:
        raise KeyError("surprise")

    monkeypatch.setattr(job, "ingest", broken)
    result = run("ingest")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "digest: error: unexpected KeyError: 'surprise'",
        "hint: run again with -v to see the traceback, and please report it",
    ]
    assert "Traceback" in run("-v", "ingest").stderr


def test_import_reports_bad_rows_by_line_and_export_round_trips(project: Path) -> None:
    source = project / "list.csv"
    source.write_text(
        "email,name,topics\nada@example.org,Ada,rlhf\nbroken,Bob,\nbo@example.org,Bo,\n"
    )
    result = run("subscribers", "import", str(source))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"{source}:3: ")
    assert "2 created, 0 updated, 0 kept unsubscribed, 1 row skipped" in result.stdout
    out = project / "out.csv"
    assert run("subscribers", "export", str(out)).exit_code == 0
    again = run("subscribers", "import", "--json", str(out))
    assert again.exit_code == 0
    assert json.loads(again.stdout)["updated"] == 2


def test_match_shows_what_a_query_selects(project: Path) -> None:
    run("ingest")
    result = run("match", "title:distill*")
    assert result.exit_code == 0
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["rank", "bm25", "title"] and len(rows) == 3
    assert "match: 3 of 73 entries match 'title:distill*', best bm25 first" in result.stderr
    as_json = json.loads(run("match", "--json", "title:fairness", "--source", "sample").stdout)
    assert as_json["matched"] == 7
    assert run("match", "auther:x").exit_code == 2


def test_preview_writes_html_and_text_and_prints_their_paths(project: Path) -> None:
    run("ingest")
    run("subscribe", "ada@example.org", "--topic", "Fairness: title:fairness", "--theme", "dark")
    result = run("preview", "--email", "ada@example.org", "-o", "out/ada.html")
    assert result.exit_code == 0, result.stderr
    assert (
        "subject: Daily papers, " in result.stdout
        and ": 7 new papers on your topics" in result.stdout
    )
    html = (project / "out" / "ada.html").read_text()
    assert 'content="dark"' in html and "Distraction is All You Need for Fairness" in html
    assert "/unsubscribe/" in html
    assert "== Fairness ==" in (project / "out" / "ada.txt").read_text()
    default = run("preview", "--theme", "compact")
    assert "html: var/preview/" in default.stdout and "-compact.html" in default.stdout
    assert run("preview", "--email", "nobody@example.org").exit_code == 1  # not a subscriber
    assert run("preview", "--theme", "neon").exit_code == 2
    assert "note:" not in result.stderr
    # The preview asks the decider, as run does.
    run("pause", "ada@example.org")
    paused = run("preview", "--email", "ada@example.org", "-o", "out/ada.html")
    assert "note: 'digest run' would not send it to ada@example.org: paused" in paused.stderr


def test_run_delivers_to_the_outbox_and_status_shows_it(project: Path) -> None:
    run("subscribe", "ada@example.org", "--topic", "title:fairness")
    run("subscribe", "bob@example.org", "--topic", "quantum chromodynamics")
    dry = run("run", "--dry-run", "--json")
    assert json.loads(dry.stdout)["sent"] == 1
    assert not (project / "var" / "outbox").exists()
    result = run("run")
    assert result.exit_code == 0, result.stderr
    assert "run: sent 1, failed 0, skipped 1, still queued 0" in result.stdout
    assert len(list((project / "var" / "outbox").glob("*.eml"))) == 1
    again = json.loads(run("run", "--json").stdout)
    assert (again["sent"], again["still_queued"], again["ok"]) == (0, 0, True)
    status = json.loads(run("status", "--json").stdout)
    assert status["editions"][0]["deliveries"] == {
        "queued": 0,
        "sent": 1,
        "failed": 0,
        "skipped": 1,
        "folded": 0,
    }
    assert "1 sent, 0 failed, 1 skipped" in run("status").stdout


def test_run_exits_1_when_some_deliveries_stay_queued(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from .smtp_server import free_port

    run("subscribe", "ada@example.org")
    monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("SMTP_PORT", str(free_port()))
    monkeypatch.setenv("SMTP_SECURITY", "none")
    (project / "config" / "digest.toml").write_text(
        f'[delivery]\nretry_delay_seconds = 0\n[[sources]]\nlocation = "{SAMPLE_DUMP}"\n'
    )
    result = run("run")
    assert result.exit_code == 1
    assert "still queued 1" in result.stdout
    assert "digest: error: stopped after" not in result.stderr  # one message: no early stop


def test_status_shows_the_schedule_and_the_last_run(project: Path) -> None:
    run("subscribe", "ada@example.org")
    run("run")
    status = json.loads(run("status", "--json").stdout)
    assert status["next_run"] and status["running"] is None
    assert status["last_run"]["outcome"] == "ok"
    text = run("status").stdout
    assert "schedule: '0 7 * * *' in UTC; next run " in text
    assert "last run: ok at " in text and "sent 1" in text


def test_a_second_run_while_one_holds_the_lock_exits_1_without_sending(project: Path) -> None:
    from digest.store import Store

    run("subscribe", "ada@example.org")
    store = Store.open("sqlite:///var/digest.sqlite3")
    from datetime import UTC, datetime, timedelta

    store.acquire_lock("run", "host-b:4242:x", now=datetime.now(UTC), ttl=timedelta(minutes=5))
    store.close()
    result = run("run")
    assert result.exit_code == 1
    assert "another digest run is in progress (process 4242 on host-b); nothing sent" in (
        result.stderr
    )
    assert not (project / "var" / "outbox").exists()


def test_what_a_new_user_tripped_on(project: Path) -> None:
    ingested = run("ingest")
    assert "ingest: 1 source," in ingested.stdout and "1 sources" not in ingested.stdout
    # A query starting with "-" goes after "--", as the help says.
    assert 'digest match -- "-survey' in " ".join(run("match", "--help").stdout.split())
    assert run("match", "--", "-survey alignment").exit_code == 0
    # A date after today is refused unless asked for.
    later = (datetime.now(UTC) + timedelta(days=30)).date().isoformat()
    refused = run("run", "--date", later, "--dry-run")
    assert refused.exit_code == 2 and "add --force" in refused.stderr
    assert "--far-ahead" in run("run", "--date", later, "--dry-run", "--force").stderr
    assert run("run", "--date", later, "--dry-run", "--force", "--far-ahead").exit_code in (0, 1)
    soon = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
    assert run("run", "--date", soon, "--dry-run", "--force").exit_code in (0, 1)
    # --editions 0 does not pretend there are none.
    run("run", "--no-ingest")
    quiet = run("status", "--editions", "0")
    assert "no editions yet" not in quiet.stdout and "1 in all" in quiet.stdout


def test_log_lines_carry_colour_codes_only_to_a_terminal() -> None:
    import logging

    from digest.logs import JsonFormatter, KeyValueFormatter

    record = logging.LogRecord(
        "werkzeug", logging.INFO, __file__, 1, "\x1b[33mPress CTRL+C to quit\x1b[0m", None, None
    )
    assert "\x1b" not in KeyValueFormatter().format(record)
    assert "\x1b" not in JsonFormatter().format(record)
    assert "\x1b[33m" in KeyValueFormatter(colour=True).format(record)


def test_editions_are_listed_and_shown(project: Path) -> None:
    run("ingest")
    run("subscribe", "ada@example.org")
    run("run", "--no-ingest")
    listed = run("editions", "list")
    assert listed.exit_code == 0 and "date" in listed.stdout.splitlines()[0]
    day = listed.stdout.splitlines()[1].split()[0]
    assert listed.stdout.splitlines()[1].split()[1:3] == ["73", "1"]  # papers, sent
    shown = run("editions", "show", day)
    assert shown.exit_code == 0 and "73 papers" in shown.stdout and "1 sent" in shown.stdout
    as_json = json.loads(run("editions", "show", day, "--json").stdout)
    assert len(as_json["entries"]) == 73 and as_json["deliveries"]["sent"] == 1
    who = run("subscribers", "show", "ada@example.org").stdout
    assert f"  {day}  sent     attempts 1  <" in who and "theme: (the default)" in who
    missing = run("editions", "show", "2001-01-01")
    assert missing.exit_code == 1 and "no edition for 2001-01-01" in missing.stderr
    csv_rows = list(csv.reader(io.StringIO(run("editions", "list", "--csv").stdout)))
    assert csv_rows[0][:3] == ["date", "papers", "sent"] and csv_rows[1][:3] == [day, "73", "1"]
    ada = json.loads(run("subscribers", "show", "ada@example.org", "--json").stdout)
    assert [e["state"] for e in ada["events"]] == ["active"]
    assert ada["deliveries"][0]["status"] == "sent" and ada["deliveries"][0]["day"] == day


def test_a_run_tells_its_edition_before_sending_and_counts_in_its_table(project: Path) -> None:
    run("subscribe", "ada@example.org")
    lines = run("run").stdout.splitlines()
    assert lines[0].startswith("ingest: 73 new of 73 read from 1 source")
    assert lines[1].endswith(": 73 papers") and lines[2].startswith("run: sent 1,")


def test_sources_list_tells_each_source_s_health(project: Path) -> None:
    config = project / "config" / "digest.toml"
    config.write_text(
        config.read_text() + '[[sources]]\nname = "gone"\nlocation = "missing.txt"\n'
        '[[sources]]\nname = "later"\nlocation = "later.txt"\n'
    )
    never = json.loads(run("sources", "list", "--json").stdout)
    assert [s["last_check"] for s in never["sources"]] == [None, None, None]
    run("subscribe", "ada@example.org")
    assert run("run").exit_code == 1  # two sources failed
    found = {s["name"]: s for s in json.loads(run("sources", "list", "--json").stdout)["sources"]}
    assert found["sample"]["last_check"]["outcome"] == "ok"
    assert found["sample"]["last_check"]["new"] == 73 and found["sample"]["in_last_edition"] == 73
    assert found["gone"]["last_check"]["outcome"] == "failed"
    assert "missing.txt" in found["gone"]["last_check"]["detail"]
    table = run("sources", "list").stdout.splitlines()
    assert table[0].split()[:3] == ["name", "status", "last"]
    assert table[1].split()[:2] == ["sample", "ok"] and table[2].split()[:2] == ["gone", "failed"]
    rows = list(csv.reader(io.StringIO(run("sources", "list", "--csv").stdout)))
    assert rows[2][0:2] == ["gone", "failed"] and rows[2][5] == "0"


def test_resend_queues_one_reader_again_and_refuses_who_left(project: Path) -> None:
    run("subscribe", "ada@example.org")
    run("subscribe", "bob@example.org")
    run("run")
    outbox = project / "var" / "outbox"
    day = json.loads(run("editions", "list", "--json").stdout)["editions"][0]["day"]
    resent = run("resend", "ada@example.org", "--date", day, "--now")
    assert resent.exit_code == 0, resent.output
    assert resent.stdout.startswith(f"resend: queued ada@example.org's digest of {day} again")
    assert "run: sent 1," in resent.stdout
    assert len(list(outbox.glob("*.eml"))) == 3
    assert "resent 1x" in run("subscribers", "show", "ada@example.org").stdout
    again = json.loads(run("resend", "ada@example.org", "--date", day, "--json").stdout)
    assert again["resends"] == 2 and again["status"] == "queued"
    run("send")
    assert len(list(outbox.glob("*.eml"))) == 4
    run("unsubscribe", "bob@example.org")
    refused = run("resend", "bob@example.org", "--date", day)
    assert refused.exit_code == 1 and refused.stderr.count("\n") == 1
    assert "bob@example.org is unsubscribed" in refused.stderr
    assert "run: sent 0," in run("send").stdout
    assert len(list(outbox.glob("*.eml"))) == 4


def test_admin_add_hashes_the_password_and_refuses_a_short_one(project: Path) -> None:
    runner = CliRunner()
    added = runner.invoke(
        cli,
        ["admin", "add", "Root@Example.org", "--password-stdin"],
        input="a long enough password\n",
    )
    assert added.exit_code == 0 and added.stdout == "admin Root@example.org: added\n"
    again = runner.invoke(
        cli,
        ["admin", "add", "root@example.org"],
        input="another long password\nanother long password\n",
    )
    assert again.exit_code == 0 and "new password; their sessions ended" in again.stdout
    short = runner.invoke(
        cli, ["admin", "add", "x@example.org", "--password-stdin"], input="short\n"
    )
    assert short.exit_code == 1 and "at least 12 characters" in short.stderr
    bad = runner.invoke(cli, ["admin", "add", "not an address", "--password-stdin"], input="x\n")
    assert bad.exit_code == 2
    listed = run("admin", "list").stdout.splitlines()
    assert listed[0].split() == ["email", "added", "last", "sign-in"]
    assert listed[1].startswith("Root@example.org") and listed[1].endswith("never")
    assert len(listed) == 2
    assert run("admin", "remove", "ROOT@example.org").exit_code == 0
    assert run("admin", "list").stdout.splitlines()[1:] == []
    gone = run("admin", "remove", "root@example.org")
    assert gone.exit_code == 1 and "is not an admin" in gone.stderr


def test_cadence_is_set_exported_imported_and_told(project: Path) -> None:
    added = run("subscribe", "ada@example.org", "--cadence", "Weekly:Mon")
    assert added.exit_code == 0 and "; weekly:monday)" in added.stdout
    bad = run("subscribe", "bob@example.org", "--cadence", "hourly")
    assert bad.exit_code == 2 and "a cadence is daily, weekly:<day>" in bad.stderr
    run("subscribe", "cy@example.org", "--cadence", "threshold:10")
    shown = run("subscribers", "show", "ada@example.org").stdout
    assert "cadence: weekly, on Mondays; next email: " in shown
    day = json.loads(run("subscribers", "show", "ada@example.org", "--json").stdout)["next_email"]
    due, now = datetime.fromisoformat(day), datetime.now(UTC)
    # On her Monday after the 07:00 run, the next edition (Tuesday's) carries her week.
    late_on_monday = now.weekday() == 0 and now.hour >= 7
    assert due.weekday() == 0 or (late_on_monday and due.date() == now.date() + timedelta(days=1))
    assert "readers by cadence: 1 threshold:10, 1 weekly:monday (next Mon " in run("status").stdout
    dry = run("run", "--dry-run").stdout
    if datetime.now(UTC).weekday() != 0:  # Ada's Monday is never today's run
        assert "1 gathered into later emails" in dry
    exported = run("subscribers", "export").stdout
    assert exported.splitlines()[0].endswith(",cadence,newsletter")
    assert "weekly:monday" in exported and "threshold:10" in exported
    (project / "list.csv").write_text(exported.replace("weekly:monday", "daily"))
    assert run("subscribers", "import", str(project / "list.csv")).exit_code == 0
    assert "cadence: daily" in run("subscribers", "show", "ada@example.org").stdout


def test_a_relay_that_is_down_is_one_line_with_a_hint_and_v_works_anywhere(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from .smtp_server import free_port

    run("ingest")
    monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("SMTP_PORT", str(free_port()))  # nothing listens there
    monkeypatch.setenv("SMTP_SECURITY", "none")
    result = run("send-test", "ops@example.org")
    assert result.exit_code == 2
    first, hint = result.stderr.splitlines()[-2:]
    assert first.startswith("digest: error: the mail server: cannot connect to 127.0.0.1:")
    assert hint.startswith("hint: check SMTP_HOST") and "please report" not in result.stderr
    assert "Traceback" in run("send-test", "ops@example.org", "-v").stderr  # -v after it


def test_sources_list_exits_1_when_a_source_failed(project: Path) -> None:
    (project / "config" / "digest.toml").write_text(
        '[[sources]]\nname = "gone"\nlocation = "/nonexistent/feed.xml"\n', encoding="utf-8"
    )
    run("ingest")
    listed = run("sources", "list")
    assert listed.exit_code == 1 and "failed" in listed.stdout


def test_config_check_connects_to_the_database_and_says_what_is_wrong_plainly(
    project: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = postgres_url.rsplit("/", 1)[0] + "/digest_no_such_database"
    monkeypatch.setenv("DIGEST_DATABASE_URL", missing)
    said = run("config", "check")
    assert (
        said.exit_code == 2 and 'database "digest_no_such_database" does not exist' in said.stderr
    )
    monkeypatch.setenv("DIGEST_DATABASE_URL", "sqlite:////no/such/folder/digest.sqlite3")
    said = run("config", "check")
    assert said.exit_code == 2
    assert "DIGEST_DATABASE_URL: the folder of the SQLite database does not exist" in said.stderr
    assert "expected the folder" not in said.stderr


def test_db_upgrade_says_what_it_did(project: Path) -> None:
    first = run("db", "upgrade")
    assert first.exit_code == 0 and ": created the schema (revision " in first.stdout
    again = run("db", "upgrade")
    assert again.exit_code == 0 and again.stdout.rstrip().endswith(": nothing to do")


def test_the_job_runs_without_the_optional_extras(project: Path, tmp_path: Path) -> None:
    """A `make demo` install has neither numpy, scikit-learn, scipy, psycopg nor gunicorn:
    the job still mails every reader, a reader's likes wait for the 'learning' extra with
    one line saying so, and a PostgreSQL URL names the 'postgres' extra."""
    blocked = tmp_path / "without-extras"
    blocked.mkdir()
    for module in ("numpy", "scipy", "sklearn", "psycopg", "gunicorn"):
        (blocked / f"{module}.py").write_text(
            f'raise ModuleNotFoundError("No module named {module!r}", name={module!r})\n'
        )
    (project / "config" / "digest.toml").write_text(
        f'[[sources]]\nname = "hf"\nlocation = "{HF_JSON}"\n', encoding="utf-8"
    )
    env = {**os.environ, "PYTHONPATH": f"{blocked}{os.pathsep}{ROOT}"}

    def digest(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "digest", *args],
            cwd=project,
            env=env | extra,
            capture_output=True,
            text=True,
        )

    assert digest("subscribe", "ada@example.org", "--like", "2611.20101").returncode == 0
    assert digest("subscribe", "bob@example.org", "--topic", "model").returncode == 0
    ran = digest("run")
    assert ran.returncode == 0, ran.stderr
    assert "sent 2" in ran.stdout
    assert ran.stderr.count("needs the 'learning' extra (") == 1, ran.stderr
    assert digest("preview", "--email", "ada@example.org").returncode == 0
    postgres = digest("config", "check", DIGEST_DATABASE_URL="postgresql+psycopg://x@h/db")
    assert postgres.returncode == 2
    assert "pip install -e '.[postgres]' installs psycopg" in postgres.stderr


def test_a_run_whose_every_source_failed_says_so(project: Path) -> None:
    (project / "config" / "digest.toml").write_text(
        '[[sources]]\nname = "gone"\nlocation = "http://127.0.0.1:9/feed"\n', encoding="utf-8"
    )
    result = run("run")
    assert result.exit_code == 1
    assert "none built: no source could be read" in result.stdout
    assert "nothing new since the last edition" not in result.stdout
    assert "digest: error: gone: cannot connect to 127.0.0.1" in result.stderr
