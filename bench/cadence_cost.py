"""Benchmark: what readers' cadences cost the planning of an edition.

Planning as the sender does it, for N readers: build the edition, read the outbox
a page at a time with each reader and where gathering readers' periods begin, ask
the decider, and fold what is not due; then, in a pass of its own, select for the
rest, weekly and threshold readers from an index of their period's papers.  The
same day is planned on copies of one database, with a week of editions behind
it: every reader daily, and a third daily, a third weekly (a day each) and a
third threshold:10; each way three times, the fastest counting.

Not a test: run with `make bench`.  The last line is a summary a script can parse.
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import shutil
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from delivery import prepare
from learning_cost import variants
from sqlalchemy import select, update

from digest.cadence import WEEKDAYS
from digest.config import load_settings
from digest.deliver.claims import FOLD_BATCH
from digest.deliver.compose import Composer, ComposeSettings
from digest.deliver.composing import PeriodIndexes
from digest.ingest.dedupe import dedupe
from digest.logs import peak_rss_kb
from digest.plan import Send, Wait, decide, gathered_note, on_selection
from digest.resources import resource_path
from digest.select.index import EditionIndex
from digest.store import Store
from digest.store.schema import deliveries, subscribers

FIRST = date(2026, 11, 16)  # a Monday; the week of editions before the timed days
PAGE = 64
#: Each way is timed this many times, alternating; the fastest counts (the machine is
#: shared, and the first planning of a process also warms its caches up).
ROUNDS = 3


def plan(store: Store, composer: Composer, day: date, now: datetime) -> dict[str, float]:
    """Plan the edition of ``day`` for every reader as the sender does; return the seconds
    of planning (the edition, the outbox read a page at a time with each reader, where
    gathering readers' periods begin, the decider's who-is-due, folds) and then, in a
    pass of its own so that neither is charged for the other's garbage, of selecting
    (topics over the edition's or the period's papers); with how many were folded."""
    seconds = {"plan": 0.0, "select": 0.0, "folded": 0.0, "selected": 0.0}
    started = time.perf_counter()
    edition = store.create_edition(day, now=now)
    assert edition is not None
    after, folded, due = 0, [], []
    while page := store.queued_deliveries(edition.id, after_id=after, limit=PAGE):
        after = page[-1][0].id
        wanted = [s for _, s in page if s.cadence.gathers]
        periods = store.periods_of(wanted) if wanted else {}
        for delivery, reader in page:
            since = periods.get(reader.id)
            decision = decide(edition, reader, now, composer.policy, since)
            if isinstance(decision, Wait) and decision.gathered:
                folded.append((delivery.id, gathered_note(decision)))
            elif isinstance(decision, Send):
                due.append(decision)
        if len(folded) >= FOLD_BATCH:  # recorded as the sender records them
            seconds["folded"] += len(folded)
            store.mark_folded(folded, now=now)
            folded = []
    seconds["folded"] += len(folded)
    store.mark_folded(folded, now=now)
    seconds["plan"] = time.perf_counter() - started
    started = time.perf_counter()
    entries = store.edition_entries(edition.id)
    with EditionIndex(entries) as index, PeriodIndexes(store, day) as period_index:
        for intent in due:
            chosen = period_index(intent.since) if intent.since is not None else index
            selection = composer.select(intent.reader, chosen)
            on_selection(intent, selection, edition, composer.policy)
    seconds["selected"] = len(due)
    seconds["select"] = time.perf_counter() - started
    return seconds


def _set_cadences(store: Store, *, mixed: bool) -> None:
    """All daily; or by id, a third daily, a third weekly (each day alike), a third
    threshold:10."""
    with store.engine.begin() as conn:
        conn.execute(update(subscribers).values(cadence="daily"))
        if mixed:
            for day, name in enumerate(WEEKDAYS):
                conn.execute(
                    update(subscribers)
                    .where(subscribers.c.id % 21 == day)
                    .values(cadence=f"weekly:{name}")
                )
            conn.execute(
                update(subscribers)
                .where(subscribers.c.id % 21 >= 14)
                .values(cadence="threshold:10")
            )


def _history(store: Store) -> None:
    """A week of editions, mailed as each reader's cadence had it: daily readers every
    day, weekly readers on their day, threshold readers every third day."""
    _set_cadences(store, mixed=True)
    sample = [s.entry for s in store.list_entries()[:73]]
    for n in range(7):
        day = FIRST + timedelta(days=n)
        now = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=7)
        if n:
            store.add_entries(
                variants(sample, 100, random.Random(n), start=1_000 * n),
                decide=dedupe,
                source="bench",
                now=now,
            )
        edition = store.create_edition(day, now=now)
        assert edition is not None
        kind = subscribers.c.id % 21
        daily = (kind >= 7) & (kind < 14)
        mailed = daily | (kind == day.weekday()) | ((kind >= 14) & (n % 3 == 0))
        with store.engine.begin() as conn:
            conn.execute(
                update(deliveries)
                .where(deliveries.c.edition_id == edition.id)
                .values(status="folded")
            )
            mailed_ids = select(subscribers.c.id).where(mailed)
            conn.execute(
                update(deliveries)
                .where(
                    deliveries.c.edition_id == edition.id,
                    deliveries.c.subscriber_id.in_(mailed_ids),
                )
                .values(status="sent")
            )
            # As the sender records it for a reader whose cadence gathers editions.
            conn.execute(update(subscribers).where(mailed & ~daily).values(period_start=day))


def _timed(copies: list[str]) -> tuple[dict[str, float], dict[str, float], float]:
    """Plan the same day on copies of one database, all daily and mixed in turn; the
    fastest of each counts."""
    secret = {"SECRET_KEY": "bench-secret-key-0123456789abcdef"}
    settings = load_settings(resource_path("config", "digest.toml"), environ=secret)
    composer = Composer(ComposeSettings.of(settings), "bench")
    best: dict[bool, dict[str, float]] = {}
    day = FIRST + timedelta(days=7)
    now = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=7)
    for n, database in enumerate(copies):
        mixed = n % 2 == 1
        store = Store.open(database)
        _set_cadences(store, mixed=mixed)
        with store.engine.connect() as conn:  # as a database is at 07:00: settled, no WAL
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        timed = plan(store, composer, day, now)
        store.close()
        if mixed not in best or timed["plan"] < best[mixed]["plan"]:
            best[mixed] = timed
    return best[False], best[True], peak_rss_kb() / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--readers", type=int, default=100_000)
    args = parser.parse_args()
    # On tmpfs where there is one: the copies are large, and the disk's page cache
    # would time the machine rather than the planning.
    memory = Path("/dev/shm")
    with tempfile.TemporaryDirectory(dir=memory if memory.is_dir() else None) as tmp:
        database = f"sqlite:///{Path(tmp)}/cadence.sqlite3"
        prepare(database, args.readers, 0.1)
        store = Store.open(database)
        _history(store)
        sample = [s.entry for s in store.list_entries()[:73]]
        now = datetime.combine(FIRST + timedelta(days=7), datetime.min.time(), tzinfo=UTC)
        store.add_entries(
            variants(sample, 100, random.Random(8), start=10_000),
            decide=dedupe,
            source="bench",
            now=now,
        )
        store.close()
        copies = []
        for n in range(2 * ROUNDS):
            copy = Path(tmp) / f"copy{n}.sqlite3"
            shutil.copyfile(Path(tmp) / "cadence.sqlite3", copy)
            copies.append(f"sqlite:///{copy}")
        context = multiprocessing.get_context("spawn")
        with context.Pool(1) as pool:
            daily, mixed, peak_mb = pool.apply(_timed, (copies,))
    ratio = mixed["plan"] / daily["plan"]
    both = (mixed["plan"] + mixed["select"]) / (daily["plan"] + daily["select"])
    print(
        f"planning, {args.readers:,} readers: {daily['plan']:.2f}s all daily, "
        f"{mixed['plan']:.2f}s with mixed cadences ({mixed['folded']:,.0f} folded): "
        f"{(ratio - 1) * 100:+.0f}%"
    )
    print(
        f"planning + selection: {daily['plan'] + daily['select']:.2f}s all daily "
        f"({daily['selected']:,.0f} selected), {mixed['plan'] + mixed['select']:.2f}s mixed "
        f"({mixed['selected']:,.0f} selected, weekly and threshold readers from their "
        f"period's papers): {(both - 1) * 100:+.0f}%; peak RSS {peak_mb:.0f} MB"
    )
    print(
        f"bench cadence readers={args.readers} plan_ratio={ratio:.3f} "
        f"plan_select_ratio={both:.3f} peak_rss_mb={peak_mb:.0f}"
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
