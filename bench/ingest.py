"""Benchmark: ingest a generated page dump of N entries into a fresh SQLite file.

Prints parse and store times, the re-ingest (everything already seen), and
one summary line a script can parse.  Not a test: run it with `make bench`.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from digest.app import job
from digest.config import SourceSpec
from digest.ingest import SourceLimits, read_source
from digest.store import Store

ABSTRACT = (
    "We propose a method for efficient training of large models. It reduces memory use. "
    "Experiments on several benchmarks show consistent gains over strong baselines. "
) * 8


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=5000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        page = Path(folder) / "dump.txt"
        body = "\n\n".join(
            f"Generated Paper {n}: A Study of Topic {n % 97}\n\n{ABSTRACT}{n}"
            for n in range(args.entries)
        )
        page.write_text("new\n\nSubscribe\n\nMar 21\n\n" + body, encoding="utf-8")
        now = datetime.now(UTC)
        started = time.perf_counter()
        read_source(str(page), today=now.date())
        parse_seconds = time.perf_counter() - started

        store = Store.open(f"sqlite:///{folder}/bench.sqlite3")
        spec = [SourceSpec(name="generated", location=str(page))]
        timings = []
        for _ in range(2):
            started = time.perf_counter()
            report = job.ingest(
                store, spec, job.Reading(now=now, zone=ZoneInfo("UTC"), limits=SourceLimits())
            )
            timings.append(time.perf_counter() - started)
            assert report.ok
        store.close()
    first, again = timings
    print(f"parse only:     {parse_seconds:.3f}s for {args.entries} entries")
    print(
        f"first ingest:   {first:.3f}s ({args.entries / first:,.0f} entries/s, "
        f"{first / parse_seconds:.1f}x parse time)"
    )
    print(f"second ingest:  {again:.3f}s (all {args.entries} already seen)")
    print(
        f"bench ingest entries={args.entries} first_s={first:.3f} again_s={again:.3f} "
        f"parse_s={parse_seconds:.3f}"
    )


if __name__ == "__main__":
    main()
