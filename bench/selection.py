"""Benchmark: select entries for N subscribers against an edition of E entries.

Not a test: run with `make bench`.  Prints one summary line a script can parse.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from pathlib import Path

from vocabulary import topic_queries

from digest.ingest import read_source
from digest.models import StoredEntry
from digest.select.index import EditionIndex
from digest.subscribers import parse_topics

ROOT = Path(__file__).parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--entries", type=int, default=100)
    args = parser.parse_args()
    now = datetime.now(UTC)
    sample = read_source(str(ROOT / "examples" / "daily-papers-mar21.txt"), today=now.date())
    entries = [
        StoredEntry(n, sample.entries[n % len(sample.entries)], "bench", now)
        for n in range(args.entries)
    ]
    topics = [parse_topics(cell) for cell in topic_queries(args.subscribers)]
    distinct = len({t.query for ts in topics for t in ts})
    started = time.perf_counter()
    with EditionIndex(entries) as index:
        built = time.perf_counter() - started
        selected = sum(index.select(ts, max_entries=30).count for ts in topics)
    seconds = time.perf_counter() - started
    print(f"index built in {built * 1000:.1f} ms for {args.entries} entries")
    print(
        f"selection: {args.subscribers} subscribers ({distinct} distinct queries) in "
        f"{seconds:.3f}s, {args.subscribers / seconds:,.0f} subscribers/s, "
        f"{selected / args.subscribers:.1f} papers each on average"
    )
    print(
        f"bench select subscribers={args.subscribers} entries={args.entries} "
        f"distinct_queries={distinct} seconds={seconds:.3f}"
    )


if __name__ == "__main__":
    main()
