"""The claim stream: an edition's queued deliveries, claimed in batches and decided once.

Each claimed delivery comes with its reader as read at the claim; the
decider (``digest.plan.decide``) is asked about it exactly once, here, and
its answer travels on as the intent the rest of the send acts on.  What the
decider folds into a reader's later email, leaves waiting for local time,
or skips is recorded here and goes no further.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Set
from datetime import date, datetime
from typing import TypeVar

from digest import plan
from digest.deliver.report import Clock, DeliveryReport
from digest.models import Claim, Delivery, Edition, Subscriber
from digest.store import Store

T = TypeVar("T")

#: How many folded deliveries are recorded in one transaction (one not recorded yet
#: when a run stops stays queued, and is folded again by the next).
FOLD_BATCH = 5000

#: The delivery id of a trial message, which is composed and never sent.
TRIAL_ID = 0

#: A delivery and what the decider said to do with it.
Decided = tuple[Delivery, plan.Send]


def claimed(
    store: Store, edition_id: int, claim: Claim, clock: Clock, *, besides: Set[int] = frozenset()
) -> Iterator[list[tuple[Delivery, Subscriber]]]:
    """The edition's queued deliveries with their readers, claimed a batch at a time,
    ``besides`` those (sent this run with no answer: they may have arrived)."""
    after = 0
    while batch := store.claim_deliveries(edition_id, claim, now=clock(), after_id=after):
        yield [(delivery, reader) for delivery, reader in batch if delivery.id not in besides]
        after = batch[-1][0].id


def decided(
    claims: Iterator[list[tuple[Delivery, Subscriber]]],
    edition: Edition,
    *,
    policy: plan.Policy,
    store: Store,
    clock: Clock,
    report: DeliveryReport,
) -> Iterator[Decided]:
    """The deliveries the decider says to send, each asked about once; the others are
    recorded as folded, skipped, or (waiting for local time) left queued."""
    folded: list[tuple[int, str]] = []
    for batch in claims:
        periods = _periods(store, batch)
        for delivery, reader in batch:
            decision = plan.decide(edition, reader, clock(), policy, periods.get(delivery.id))
            if isinstance(decision, plan.Send):
                yield delivery, decision
            elif isinstance(decision, plan.Skip):
                store.mark_skipped(delivery.id, reason=decision.reason, now=clock())
                report.count("skipped")
            elif decision.gathered:
                folded.append((delivery.id, plan.gathered_note(decision)))
            else:
                report.count("waiting")
        if len(folded) >= FOLD_BATCH:
            _fold(store, folded, clock(), report)
    _fold(store, folded, clock(), report)


def _fold(
    store: Store, folded: list[tuple[int, str]], now: datetime, report: DeliveryReport
) -> None:
    store.mark_folded(folded, now=now)
    report.count("folded", len(folded))
    folded.clear()


def _periods(store: Store, batch: list[tuple[Delivery, Subscriber]]) -> dict[int, date]:
    """Where each gathering reader's period begins, by delivery id (one query); a
    resend is the edition alone."""
    wanted = {s.id: s for d, s in batch if d.resends == 0 and s.cadence.gathers}
    if not wanted:
        return {}
    since = store.periods_of(list(wanted.values()))
    return {d.id: since[s.id] for d, s in batch if s.id in wanted}


def with_trials(
    items: Iterator[Decided], theme_of: Callable[[Subscriber], str], address: str
) -> Iterator[Decided]:
    """A trial message ahead of the first real one of each theme, composed and never sent.

    A failure to compose a trial is the run's (a template, a setting), so it
    stops the run before anyone of that theme is marked; after it, a failure
    to compose is that delivery's own.  Each trial warms its theme up just
    when it is first needed, so the first message waits for one theme only.
    """
    tried: set[str] = set()
    for delivery, intent in items:
        theme = theme_of(intent.reader)
        if theme not in tried:
            tried.add(theme)
            trial = Subscriber(id=TRIAL_ID, email=address, status="active", theme=theme)
            yield Delivery(TRIAL_ID, delivery.edition_id, TRIAL_ID, "queued"), plan.Send(trial)
        yield delivery, intent


def batches(items: Iterator[T], largest: int, *, first: int | None = None) -> Iterator[list[T]]:
    """Batches of ``first`` items, then twice as many each time, up to ``largest``."""
    size = first or largest
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
            size = min(2 * size, largest)
    if batch:
        yield batch
