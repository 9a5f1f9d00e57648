"""Benchmark: import N subscribers from CSV through the normal import path.

Not a test: run with `make bench`.  Prints one summary line a script can parse.
"""

from __future__ import annotations

import argparse
import csv
import io
import tempfile
import time
from datetime import UTC, datetime

from vocabulary import topic_queries

from digest.app import accounts
from digest.render import shipped_themes
from digest.store import Store
from digest.subscribers import SubscriberInput, read_csv
from digest.subscriptions import ImportResult


def import_rows(store: Store, items: list[SubscriberInput]) -> ImportResult:
    """What ``digest subscribers import`` does with the rows it read."""
    rows = list(enumerate(items, start=2))
    return accounts.import_rows(store, rows, [], now=datetime.now(UTC)).result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subscribers", type=int, default=100_000)
    args = parser.parse_args()
    themes = shipped_themes()
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["email", "name", "topics", "theme", "timezone"])
    for n, topics in enumerate(topic_queries(args.subscribers)):
        writer.writerow(
            [
                f"reader{n}@lab{n % 50}.example.org",
                f"Reader {n}",
                topics,
                themes[n % len(themes)],
                "Europe/Paris" if n % 3 else "",
            ]
        )
    text = buffer.getvalue()
    with tempfile.TemporaryDirectory() as folder:
        store = Store.open(f"sqlite:///{folder}/bench.sqlite3")
        started = time.perf_counter()
        rows, problems = read_csv(text, themes=themes)
        checked = time.perf_counter() - started
        result = import_rows(store, [item for _, item in rows])
        seconds = time.perf_counter() - started
        again_started = time.perf_counter()
        import_rows(store, [item for _, item in rows])
        again = time.perf_counter() - again_started
        store.close()
    assert not problems and result.created == args.subscribers, (problems[:3], result)
    print(
        f"import: {args.subscribers:,} rows in {seconds:.2f}s "
        f"(checking {checked:.2f}s, storing {seconds - checked:.2f}s); "
        f"{args.subscribers / seconds:,.0f} rows/s"
    )
    print(f"re-import (all updates, storing only): {again:.2f}s")
    print(f"bench import rows={args.subscribers} seconds={seconds:.3f} again_s={again:.3f}")


if __name__ == "__main__":
    main()
