"""Benchmark: deliver one edition to N subscribers at the speed of the mail server.

Starts a counting SMTP sink in its own process, imports N subscribers through
the normal CSV import path, runs the real `digest run` (a subprocess) into the
sink, and compares its throughput with the ceiling: the same number of
pre-built messages of the same sizes sent with plain smtplib.  With --peer it
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

from digest import pipeline
from digest.config import SourceSpec
from digest.render import available_themes
from digest.resources import resource_path
from digest.sources import SourceLimits
from digest.store import Store
from digest.subscribers import read_csv

DAY = "2026-11-28"


def prepare(database: str, subscribers: int) -> None:
    """Ingest the sample and import N subscribers, as an operator would."""
    store = Store.open(database)
    sample = resource_path("examples", "daily-papers-mar21.txt")
    from zoneinfo import ZoneInfo

    pipeline.ingest(store, [SourceSpec("sample", str(sample))], now=datetime.now(UTC),
                    zone=ZoneInfo("UTC"), limits=SourceLimits())  # fmt: skip
    themes = available_themes(resource_path("templates"))
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["email", "name", "topics", "theme"])
    for n, topics in enumerate(topic_queries(subscribers)):
        writer.writerow([f"reader{n}@lab{n % 97}.example.org", f"Reader {n}", topics,
                         themes[n % len(themes)]])  # fmt: skip
    rows, problems = read_csv(buffer.getvalue(), themes=themes)
    assert not problems, problems[:3]
    store.import_subscribers([item for _, item in rows], now=datetime.now(UTC))
    store.close()


def run_digest(folder: Path, database: str, port: int, connections: int) -> dict:
    env = os.environ | {
        "DIGEST_CONFIG": str(folder / "bench.toml"),
        "DIGEST_DATABASE_URL": database,
        "SECRET_KEY": "bench",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(port),
        "SMTP_SECURITY": "none",
        "SMTP_CONNECTIONS": str(connections),
    }
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "digest", "run", "--json", "--no-ingest", "--date", DAY],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    out, err = process.communicate()
    seconds = time.perf_counter() - started
    if process.returncode not in (0, 1):
        raise SystemExit(f"digest run failed: {err}")
    report = json.loads(out)
    report["wall_seconds"] = seconds
    return report


def prebuilt(sizes: list[int]) -> list[bytes]:
    """Messages of the given sizes: headers and a body of 76-character lines."""
    line = b"x" * 74 + b"\r\n"
    messages = []
    for n, size in enumerate(sizes):
        head = (f"From: bench@example.org\r\nTo: r{n}@example.org\r\nSubject: ceiling {n}\r\n"
                f"Message-ID: <c{n}@example.org>\r\n\r\n").encode()  # fmt: skip
        body_size = max(0, size - len(head))
        body = line * (body_size // len(line)) + b"y" * (body_size % len(line))
        messages.append(head + body)
    return messages


def ceiling(port: int, messages: list[bytes], connections: int) -> float:
    """Messages per second that plain smtplib reaches on ``connections`` connections."""
    shares = [messages[k::connections] for k in range(connections)]

    def send(share: list[bytes]) -> None:
        with smtplib.SMTP("127.0.0.1", port) as smtp:
            for n, message in enumerate(share):
                smtp.sendmail("bench@example.org", [f"c{n}@example.org"], message)

    threads = [threading.Thread(target=send, args=(share,)) for share in shares]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(messages) / (time.perf_counter() - started)


def naive_peer(database: str, port: int, count: int) -> float:
    """Messages per second of a straightforward loop: full render + premailer + send each."""
    from email.message import EmailMessage

    import premailer
    from jinja2 import Environment, FileSystemLoader, select_autoescape
    from markupsafe import Markup

    from digest.render import paper_view
    from digest.selection import EditionIndex

    store = Store.open(database)
    edition = store.get_edition(date.fromisoformat(DAY))
    assert edition is not None
    entries = store.edition_entries(edition.id)
    subscribers = list(store.iter_subscribers(status="active"))[:count]
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
                for section in selection.sections for m in section.matches
            )  # fmt: skip
            values = {
                "subject": "Daily papers", "preheader": "", "count": "", "more": "",
                "sections": Markup(cards), "preferences_url": "#", "unsubscribe_url": "#",
            }  # fmt: skip
            html = env.get_template("layout.html").render(
                lang="en", dir="ltr", color_scheme="light dark", css=Markup(css),
                newsletter="Daily papers", date_label=DAY, edition_url="#",
                slot=lambda name, v=values: v[name],
            )  # fmt: skip
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--connections", default="1", help="comma-separated, e.g. 1,2,4")
    parser.add_argument("--peer", action="store_true", help="also time the naive loop")
    parser.add_argument("--peer-count", type=int, default=500)
    args = parser.parse_args()
    curve = [int(k) for k in args.connections.split(",")]
    results = []
    with tempfile.TemporaryDirectory() as tmp, Sink() as sink:
        folder = Path(tmp)
        (folder / "bench.toml").write_text('[sender]\naddress = "digest@example.org"\n')
        for connections in curve:
            database = f"sqlite:///{folder}/bench-{connections}.sqlite3"
            started = time.perf_counter()
            prepare(database, args.subscribers)
            prepared = time.perf_counter() - started
            sink.reset()
            report = run_digest(folder, database, sink.port, connections)
            stats = sink.stats()
            counts = stats["recipients"]
            exactly_once = len(counts) == report["sent"] and set(counts.values()) <= {1}
            digest_rate = report["sent"] / report["wall_seconds"]
            sink.reset()
            top = ceiling(sink.port, prebuilt(stats["sizes"]), connections)
            results.append((connections, report, stats, digest_rate, top, exactly_once, prepared))
        peer_rate = None
        if args.peer:
            sink.reset()
            peer_rate = naive_peer(f"sqlite:///{folder}/bench-{curve[0]}.sqlite3", sink.port,
                                   args.peer_count)  # fmt: skip
    for connections, report, stats, digest_rate, top, exactly_once, prepared in results:
        sizes = stats["sizes"] or [0]
        stages = ", ".join(f"{k} {v:.2f}s" for k, v in sorted(report["stage_seconds"].items()))
        megabytes = sum(sizes) / report["wall_seconds"] / 1e6
        print(
            f"connections={connections}: {report['sent']:,} sent, {report['skipped']:,} skipped "
            f"in {report['wall_seconds']:.1f}s = {digest_rate:.0f} msg/s, {megabytes:.1f} MB/s "
            f"(messages {sum(sizes) / len(sizes) / 1000:.0f} KB on average); ceiling "
            f"{top:.0f} msg/s; ratio {digest_rate / top:.2f}; exactly once: {exactly_once}"
        )
        print(
            f"  stages (summed over threads): {stages}; peak RSS {report['peak_rss_mb']} MB; "
            f"import + ingest {prepared:.1f}s"
        )
    first = results[0]
    summary = (
        f"bench delivery subscribers={args.subscribers} connections={first[0]} "
        f"digest_mps={first[3]:.1f} ceiling_mps={first[4]:.1f} ratio={first[3] / first[4]:.3f} "
        f"peak_rss_mb={first[1]['peak_rss_mb']} plan_s={first[1]['stage_seconds'].get('plan', 0)} "
        f"exactly_once={'yes' if all(r[5] for r in results) else 'no'}"
    )
    if peer_rate:
        print(
            f"naive loop (render + premailer + send per subscriber): {peer_rate:.1f} msg/s; "
            f"digest is {first[3] / peer_rate:.1f}x faster"
        )
        summary += f" peer_mps={peer_rate:.1f} vs_peer={first[3] / peer_rate:.1f}"
    for connections, _, _, rate, top, _, _ in results[1:]:
        summary += f" mps_k{connections}={rate:.1f} ceiling_k{connections}={top:.1f}"
    print(summary)


if __name__ == "__main__":
    main()
