"""Benchmark: deliver one edition to N subscribers at the speed of the mail server.

Starts a counting SMTP sink in its own process, imports N subscribers through
the normal CSV import path, runs the real `digest run` (a subprocess) into the
sink, and compares its throughput with the ceiling: the same number of
pre-built messages of the same sizes and line counts sent with plain smtplib.  With --peer it
also measures a naive per-subscriber render + premailer + send loop.  Not a
test: run with `make bench`.  The last line is a summary a script can parse.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, date, datetime
from pathlib import Path

from sink import Sink
from vocabulary import topic_queries

from digest.app import accounts, job
from digest.config import SourceSpec
from digest.ingest import SourceLimits
from digest.render import shipped_themes
from digest.resources import resource_path
from digest.store import Store
from digest.subscribers import read_csv

DAY = "2026-11-28"


def prepare(database: str, subscribers: int, without_topics: float, newsletters: int = 1) -> None:
    """Ingest the sample and import N subscribers, as an operator would (spread over
    ``newsletters`` newsletters, n1, n2, ..., when there are several)."""
    store = Store.open(database)
    sample = resource_path("examples", "daily-papers-mar21.txt")
    from zoneinfo import ZoneInfo

    job.ingest(
        store,
        [SourceSpec("sample", str(sample))],
        job.Reading(now=datetime.now(UTC), zone=ZoneInfo("UTC"), limits=SourceLimits()),
    )
    themes = shipped_themes()
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["email", "name", "topics", "theme", "newsletter"])
    slugs = newsletter_slugs(newsletters)
    for n, topics in enumerate(topic_queries(subscribers, without_topics=without_topics)):
        address, theme = f"reader{n}@lab{n % 97}.example.org", themes[n % len(themes)]
        writer.writerow([address, f"Reader {n}", topics, theme, slugs[n % len(slugs)]])
    rows, problems = read_csv(buffer.getvalue(), themes=themes, newsletters=slugs)
    assert not problems, problems[:3]
    accounts.import_rows(store, rows, [], now=datetime.now(UTC))
    store.close()


def newsletter_slugs(count: int) -> list[str]:
    """The newsletters of a bench with ``count`` of them (one: the main newsletter)."""
    return ["main"] if count == 1 else [f"n{k}" for k in range(1, count + 1)]


def bench_config(newsletters: int) -> str:
    """The bench's config/digest.toml: one sender, or ``newsletters`` newsletters."""
    text = '[sender]\naddress = "digest@example.org"\n'
    if newsletters > 1:
        for slug in newsletter_slugs(newsletters):
            text += (
                f'[[newsletters]]\nslug = "{slug}"\nname = "Papers {slug}"\n'
                f'sender_address = "{slug}@example.org"\n'
            )
    return text


def run_digest(
    folder: Path, database: str, port: int, connections: int, workers: int, newsletters: int = 1
) -> dict:
    """Run the real digest: one `digest run`, or plan then `workers` parallel `digest send`."""
    env = os.environ | {
        "DIGEST_CONFIG": str(folder / "bench.toml"),
        "DIGEST_DATABASE_URL": database,
        "SECRET_KEY": "bench-secret-key-for-the-delivery-benchmark",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(port),
        "SMTP_SECURITY": "none",
        "SMTP_CONNECTIONS": str(connections),
    }
    base = [sys.executable, "-m", "digest"]
    started_at = time.time()
    started = time.perf_counter()
    if workers > 1:
        store = Store.open(database)
        for slug in newsletter_slugs(newsletters):
            store.scoped(slug).create_edition(date.fromisoformat(DAY), now=datetime.now(UTC))
        store.close()
        commands = [base + ["send", "--json"]] * workers
    else:
        commands = [base + ["run", "--json", "--no-ingest", "--date", DAY]]
    processes = [
        subprocess.Popen(c, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for c in commands
    ]
    outputs = [p.communicate() for p in processes]
    seconds = time.perf_counter() - started
    reports = []
    for process, (out, err) in zip(processes, outputs, strict=True):
        if process.returncode not in (0, 1):
            raise SystemExit(f"digest failed: {err}")
        reports.append(json.loads(out))
    report = {
        "sent": sum(r["sent"] for r in reports),
        "skipped": sum(r["skipped"] for r in reports),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in reports),
        "stage_seconds": {
            stage: sum(r["stage_seconds"].get(stage, 0.0) for r in reports)
            for stage in reports[0]["stage_seconds"]
        },
        "wall_seconds": seconds,
        "started_at": started_at,
    }
    return report


def fresh_database(folder: Path, database: str | None, name: str) -> str:
    """A new empty database: a SQLite file, or the given PostgreSQL one emptied."""
    if database is None:
        return f"sqlite:///{folder}/bench-{name}.sqlite3"
    from sqlalchemy import create_engine, text

    engine = create_engine(database, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return database


def message_of_shape(size: int, lines: int | None, n: int) -> bytes:
    """A pre-built message of ``size`` bytes in ``lines`` lines (76-byte lines when None).

    The server's work goes by lines as much as by bytes (aiosmtpd reads
    DATA a line at a time), so the fair ceiling sends messages of digest's
    own shape: for the same three digests, plain smtplib manages about 17%
    fewer messages a second than with 76-byte lines of the same total size.
    """
    head = (
        f"From: bench@example.org\r\nTo: c{n}@example.org\r\nSubject: ceiling {n}\r\n"
        f"Message-ID: <c{n}@example.org>\r\n\r\n"
    ).encode()
    body_size = max(0, size - len(head))
    if lines is None:
        line = b"x" * 74 + b"\r\n"
        return head + line * (body_size // len(line)) + b"y" * (body_size % len(line))
    count = max(1, min(lines - head.count(b"\n"), body_size // 2))
    width, longer = divmod(body_size - 2 * count, count)
    return head + b"".join(b"x" * (width + (i < longer)) + b"\r\n" for i in range(count))


def ceiling(port: int, shapes: list[tuple[int, int | None]], connections: int) -> float:
    """Messages per second that plain smtplib reaches on ``connections`` connections.

    Messages are built before the clock starts, a share per connection, in
    slices so that memory stays small even for 100,000 messages.
    """
    shares = [shapes[k::connections] for k in range(connections)]
    elapsed = 0.0
    for start in range(0, max(len(s) for s in shares), 2000):
        batches = [
            [
                message_of_shape(size, lines, start + n)
                for n, (size, lines) in enumerate(share[start : start + 2000])
            ]
            for share in shares
        ]

        def send(batch: list[bytes]) -> None:
            with smtplib.SMTP("127.0.0.1", port) as smtp:
                for n, message in enumerate(batch):
                    smtp.sendmail("bench@example.org", [f"c{n}@example.org"], message)

        threads = [threading.Thread(target=send, args=(batch,)) for batch in batches]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed += time.perf_counter() - started
    return len(shapes) / elapsed


def naive_peer(database: str, port: int, count: int) -> float:
    """Messages per second of a straightforward loop: full render + premailer + send each."""
    from email.message import EmailMessage

    import premailer
    from jinja2 import Environment, FileSystemLoader, select_autoescape
    from markupsafe import Markup

    from digest.render import paper_view
    from digest.select.index import EditionIndex

    store = Store.open(database)
    edition = store.get_edition(date.fromisoformat(DAY))
    assert edition is not None
    entries = store.edition_entries(edition.id)
    subscribers = list(store.iter_subscribers(state="active"))[:count]
    store.close()
    email_dir = resource_path("templates", "email")
    css = (email_dir / "themes" / "light.css").read_text()
    env = Environment(loader=FileSystemLoader(email_dir), autoescape=select_autoescape())
    started = time.perf_counter()
    with EditionIndex(entries) as index, smtplib.SMTP("127.0.0.1", port) as smtp:
        for subscriber in subscribers:
            selection = index.select(subscriber.topics, max_entries=30)
            cards = "".join(
                env.get_template("card.html").render(paper=paper_view(m.entry, 400))
                for section in selection.sections
                for m in section.matches
            )
            values = {
                "subject": "Daily papers",
                "preheader": "",
                "count": "",
                "more": "",
                "contents": "",
                "sections": Markup(cards),
                "preferences_url": "#",
                "unsubscribe_url": "#",
            }
            html = env.get_template("layout.html").render(
                lang="en",
                dir="ltr",
                color_scheme="light dark",
                css=Markup(css),
                newsletter="Daily papers",
                date_label=DAY,
                edition_url="#",
                slot=lambda name, v=values: v[name],
            )
            html = premailer.Premailer(
                html, allow_network=False, disable_validation=True
            ).transform()
            message = EmailMessage()
            message["From"], message["To"] = "bench@example.org", subscriber.email
            message["Subject"] = "Daily papers"
            message.set_content("text")
            message.add_alternative(html, subtype="html")
            smtp.send_message(message)
    return len(subscribers) / (time.perf_counter() - started)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--connections", default="1", help="comma-separated, e.g. 1,2,4")
    parser.add_argument("--peer", action="store_true", help="also time the naive loop")
    parser.add_argument("--peer-count", type=int, default=500)
    parser.add_argument(
        "--without-topics",
        type=float,
        default=0.1,
        help="share of subscribers with no topics, who get the whole edition (default 0.1)",
    )
    parser.add_argument(
        "--workers", default="1", help="comma-separated numbers of `digest send` processes"
    )
    parser.add_argument(
        "--database", help="a PostgreSQL URL to use (it is emptied!) instead of SQLite files"
    )
    parser.add_argument(
        "--newsletters", type=int, default=1, help="spread the readers over this many newsletters"
    )
    return parser.parse_args()


def main() -> None:
    args = _arguments()
    curve = [(int(k), int(w)) for k in args.connections.split(",") for w in args.workers.split(",")]
    results = []
    with tempfile.TemporaryDirectory() as tmp, Sink() as sink:
        folder = Path(tmp)
        (folder / "bench.toml").write_text(bench_config(args.newsletters))
        for connections, workers in curve:
            database = fresh_database(folder, args.database, f"{connections}-{workers}")
            started = time.perf_counter()
            prepare(database, args.subscribers, args.without_topics, args.newsletters)
            prepared = time.perf_counter() - started
            sink.reset()
            report = run_digest(folder, database, sink.port, connections, workers, args.newsletters)
            report["workers"] = workers
            stats = sink.stats()
            counts = stats["recipients"]
            exactly_once = len(counts) == report["sent"] and set(counts.values()) <= {1}
            digest_rate = report["sent"] / report["wall_seconds"]
            sink.reset()
            senders = connections * workers
            shapes = list(zip(stats["sizes"], stats["lines"], strict=True))
            top = ceiling(sink.port, shapes, senders)
            sink.reset()
            full_lines = ceiling(sink.port, [(size, None) for size in stats["sizes"]], senders)
            report["ceiling_full_lines"] = full_lines
            results.append((connections, report, stats, digest_rate, top, exactly_once, prepared))
        peer_rate = None
        if args.peer:
            sink.reset()
            peer_rate = naive_peer(database, sink.port, args.peer_count)
    for connections, report, stats, digest_rate, top, exactly_once, prepared in results:
        sizes = stats["sizes"] or [0]
        stages = ", ".join(f"{k} {v:.2f}s" for k, v in sorted(report["stage_seconds"].items()))
        megabytes = sum(sizes) / report["wall_seconds"] / 1e6
        print(
            f"connections={connections} workers={report['workers']}: {report['sent']:,} sent, "
            f"{report['skipped']:,} skipped "
            f"in {report['wall_seconds']:.1f}s = {digest_rate:.0f} msg/s, {megabytes:.1f} MB/s "
            f"(messages {sum(sizes) / len(sizes) / 1000:.0f} KB on average); ceiling "
            f"{top:.0f} msg/s; ratio {digest_rate / top:.2f}; exactly once: {exactly_once}"
        )
        full_lines = report["ceiling_full_lines"]
        print(
            f"  ceiling with 76-byte lines (same sizes, fewer lines: less work for the server): "
            f"{full_lines:.0f} msg/s; ratio {digest_rate / full_lines:.2f}"
        )
        print(
            f"  stages (summed over threads): {stages}; peak RSS {report['peak_rss_mb']} MB; "
            f"first message after {stats['first'] - report['started_at']:.2f}s, last "
            f"{report['started_at'] + report['wall_seconds'] - stats['last']:.2f}s before exit; "
            f"import + ingest {prepared:.1f}s"
        )
    first = results[0]
    summary = (
        f"bench delivery subscribers={args.subscribers} newsletters={args.newsletters} "
        f"connections={first[0]} "
        f"digest_mps={first[3]:.1f} ceiling_mps={first[4]:.1f} ratio={first[3] / first[4]:.3f} "
        f"ratio_full_lines={first[3] / first[1]['ceiling_full_lines']:.3f} "
        f"peak_rss_mb={first[1]['peak_rss_mb']} plan_s={first[1]['stage_seconds'].get('plan', 0)} "
        f"exactly_once={'yes' if all(r[5] for r in results) else 'no'}"
    )
    if peer_rate:
        print(
            f"naive loop (render + premailer + send per subscriber): {peer_rate:.1f} msg/s; "
            f"digest is {first[3] / peer_rate:.1f}x faster"
        )
        summary += f" peer_mps={peer_rate:.1f} vs_peer={first[3] / peer_rate:.1f}"
    for connections, report, _, rate, top, _, _ in results[1:]:
        tag = f"k{connections}w{report['workers']}"
        summary += f" mps_{tag}={rate:.1f} ceiling_{tag}={top:.1f}"
    print(summary)


if __name__ == "__main__":
    main()
