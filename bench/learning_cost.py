"""Benchmark: what the learned ranking costs.

1. Scoring: planning plus selection for N readers (10% with a model: their
   models per topic and exploration included) against one 100-paper edition,
   with and without the models; the ratio is what learning adds.
2. Refitting: the learning stage after a day on which 1,000 readers voted.

Not a test: run with `make bench`.  The last line is a summary a script can parse.
"""

from __future__ import annotations

import argparse
import itertools
import math
import multiprocessing
import random
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

from delivery import prepare

from digest import learning
from digest.config import load_settings
from digest.deliver import tastes_of
from digest.deliver.compose import Composer, ComposeSettings
from digest.ingest.dedupe import dedupe
from digest.logs import peak_rss_kb
from digest.models import Entry
from digest.resources import resource_path
from digest.select.index import EditionIndex
from digest.store import Store

DAY = date(2026, 11, 28)


def variants(entries: list[Entry], count: int, rng: random.Random, start: int = 0) -> list[Entry]:
    """``count`` distinct papers made from the sample's sentences, for a corpus of size."""
    sentences = [s for e in entries for s in e.abstract.split(". ") if len(s) > 40]
    return [
        Entry(
            title=f"{entries[n % len(entries)].title} (variant {n})",
            abstract=". ".join(rng.sample(sentences, 6)),
            arxiv_id=f"2611.{start + n:05d}",
        )
        for n in range(count)
    ]


def scoring(folder: Path, readers: int, with_models: float) -> tuple[float, float, float]:
    """Seconds of planning plus selection for every reader, without and with models, and
    the peak memory of the process that did it (MB)."""
    database = f"sqlite:///{folder}/scoring.sqlite3"
    prepare(database, readers, 0.1)
    store = Store.open(database)
    now = datetime.now(UTC)
    extra = variants([s.entry for s in store.list_entries()], 27, random.Random(1))
    store.add_entries(extra, decide=dedupe, source="bench", now=now)
    # Models fitted for a few readers from real votes, copied to 10% of all readers
    # (fitting is the second benchmark; here only their use is timed).
    entries = store.list_entries()
    chosen = [
        s.id
        for s in itertools.islice(
            store.iter_subscribers(state="active"), int(readers * with_models)
        )
    ]
    for subscriber_id in chosen[:20]:
        for stored in random.Random(subscriber_id).sample(entries, 6):
            store.set_feedback(
                subscriber_id, stored.entry.fingerprint, vote=1, kind="vote", now=now
            )
    learning.refresh(store, now=now)
    space = learning.current_space(store)
    assert space is not None
    fitted = list(store.models_of(chosen[:20], space.version).values())
    store.save_models(
        [(s, space.version, now, fitted[n % len(fitted)]) for n, s in enumerate(chosen[20:])],
        now=now,
    )
    store.close()
    # Timed in a process of its own, so that its peak memory is the job's alone.
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        return pool.apply(_plan_and_select, (database,))


def _plan_and_select(database: str) -> tuple[float, float, float]:
    """Planning plus selection of every reader against one edition, without the models
    and with them (each twice, alternating, the faster kept), and the peak memory."""
    store = Store.open(database)
    now = datetime.now(UTC)
    space = learning.current_space(store)
    assert space is not None
    settings = load_settings(
        resource_path("config", "digest.toml"),
        environ={"SECRET_KEY": "bench-secret-key-0123456789abcdef"},
    )
    edition = store.create_edition(DAY, now=now)
    times: dict[bool, float] = {False: math.inf, True: math.inf}
    for learned in (False, True, False, True):
        started = time.perf_counter()
        # As the sender does: who has a model is read once, so most pages need no query.
        modelled = store.readers_with_models(space.version) if learned else frozenset()
        following = store.readers_following()
        composer = Composer(ComposeSettings.of(settings), "bench", space=space if learned else None)
        with EditionIndex(store.edition_entries(edition.id)) as index:
            subscribers = store.iter_subscribers(state="active")
            while page := list(itertools.islice(subscribers, 32)):
                wanted = [s.id for s in page if s.id in modelled] if learned else []
                tastes = tastes_of(store, wanted, space.version, following) if wanted else {}
                for subscriber in page:
                    composer.select(subscriber, index, tastes.get(subscriber.id))
        times[learned] = min(times[learned], time.perf_counter() - started)
    store.close()
    return times[False], times[True], peak_rss_kb() / 1024


def refitting(folder: Path, voters: int, papers: int) -> tuple[float, int]:
    """Seconds of the learning stage after ``voters`` readers voted, and models fitted."""
    database = f"sqlite:///{folder}/refit.sqlite3"
    prepare(database, voters, 0.0)
    store = Store.open(database)
    now = datetime.now(UTC)
    sample = [s.entry for s in store.list_entries()]
    store.add_entries(
        variants(sample, papers, random.Random(3)), decide=dedupe, source="bench", now=now
    )
    entries = store.list_entries()
    rng = random.Random(4)
    for subscriber in store.iter_subscribers(state="active"):
        for stored in rng.sample(entries, 10):
            store.set_feedback(
                subscriber.id,
                stored.entry.fingerprint,
                vote=rng.choice((1, 1, -1)),
                kind="vote",
                now=now,
            )
    started = time.perf_counter()
    report = learning.refresh(store, now=now)
    seconds = time.perf_counter() - started
    store.close()
    return seconds, report.fitted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--readers", type=int, default=100_000)
    parser.add_argument("--voters", type=int, default=1_000)
    parser.add_argument("--papers", type=int, default=5_000, help="the corpus when refitting")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        plain, learned, peak_mb = scoring(Path(tmp), args.readers, 0.1)
        print(
            f"planning + selection, {args.readers:,} readers: {plain:.1f}s without models, "
            f"{learned:.1f}s with 10% of readers ranked by their model "
            f"(+{(learned / plain - 1) * 100:.0f}%); peak RSS {peak_mb:.0f} MB"
        )
        refit, fitted = refitting(Path(tmp), args.voters, args.papers)
        print(
            f"refit after {args.voters:,} readers voted ({args.papers:,}-paper corpus): "
            f"{fitted:,} models in {refit:.1f}s"
        )
    print(
        f"bench learning readers={args.readers} added_ratio={learned / plain - 1:.3f} "
        f"refit_s={refit:.1f} fitted={fitted} peak_rss_mb={peak_mb:.0f}"
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
