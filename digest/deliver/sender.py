"""Send an edition's queued deliveries: claim → decide → compose → send → record.

``send_edition`` reads as that recipe.  The claim stream asks the decider
once per delivery (``claims``); composing only selects, renders and builds
(``composing``, here or in a child process while this one talks to the mail
server); the sender threads give each message its last look and record its
outcome before their next (``senders``).  A crash or kill at any moment
followed by a rerun delivers every remaining reader exactly once; the only
possible repeat is the message in flight, and it carries the same Message-ID.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import timedelta

from digest.address import domain_of
from digest.deliver.claims import TRIAL_ID, claimed, decided, with_trials
from digest.deliver.compose import Composed, Composer
from digest.deliver.composing import COMPOSE_IN_A_PROCESS_FROM, composing
from digest.deliver.context import SendContext
from digest.deliver.senders import Outgoing, Senders
from digest.deliver.transports import TemporaryFailure, Transport
from digest.errors import DigestError
from digest.locking import Keeper
from digest.models import Claim, Delivery, Edition
from digest.plan import NOTHING_NEW, Send, Skip, gathered_note


def send_edition(context: SendContext, edition: Edition) -> None:
    """Send every queued delivery of an edition, recording each outcome as it happens.

    Deliveries are claimed in batches under the context's holder (several
    processes may share the queue unless ``exclusive``); what is claimed but
    not sent is released at the end.  Stops early (``report.stopped``) after
    too many temporary failures in a row, and between two deliveries when
    ``should_stop`` says so; what was not sent stays queued for the next run.
    The claims (and the run lock) are renewed from a thread of their own; a
    message goes out only while all are surely held, else ``LostOwnership``.
    """
    store, clock, report = context.store, context.clock, context.report
    claim = Claim(
        context.holder, timedelta(seconds=context.delivery.lease_seconds), context.exclusive
    )
    claims = Keeper(
        lambda: store.renew_claims(claim.holder, now=clock(), lease=claim.lease),
        lease=claim.lease,
        what="claim on its deliveries",
    )
    keepers = [claims, *context.keepers]

    def guard() -> None:
        for keeper in keepers:
            keeper.check()

    senders = Senders(context, guard=guard)
    stopped_early = True
    with claims:
        try:
            _send_all(context, edition, claim, senders)
            stopped_early = report.interrupted or report.stopped is not None
        finally:
            try:
                senders.finish(drop_queued=stopped_early)
            finally:
                store.release_claims(claim.holder)


def _send_all(context: SendContext, edition: Edition, claim: Claim, senders: Senders) -> None:
    """The recipe: each delivery is claimed, decided, composed, sent and recorded."""
    store, clock, report = context.store, context.clock, context.report
    items = itertools.chain(
        claimed(store, edition.id, claim, clock, besides=report.unknown),
        senders.recomposed(),  # readers who changed what their message says
    )
    due = decided(
        items, edition, policy=context.composer.policy, store=store, clock=clock, report=report
    )
    first = next(due, None)
    if first is None:
        return
    composer = context.composer
    # A signed message goes 7-bit: a relay that converts 8-bit parts for a next hop
    # without 8BITMIME would break its signature (RFC 6376 5.3).
    if composer.factory.signer is None and _relay_takes_8bit(context.transports):
        composer = composer.sending_8bit()
    due = with_trials(itertools.chain([first], due), composer.theme_for, _trial_address(composer))
    in_child = store.count_queued([edition.id]) >= COMPOSE_IN_A_PROCESS_FROM
    with composing(store, composer, edition, report, in_child=in_child) as compose:
        for delivery, intent, outcome in compose(due, clock):
            if senders.halt.is_set():
                return
            if context.should_stop():
                report.interrupted = True
                return
            item = _recorded(context, edition, delivery, intent, outcome)
            if item is not None and not senders.put(item):
                return


def _recorded(
    context: SendContext, edition: Edition, delivery: Delivery, intent: Send, outcome: Composed
) -> Outgoing | None:
    """The message to hand to the senders, or None once what composing said is recorded."""
    store, clock, report = context.store, context.clock, context.report
    report.add_time("render", outcome.rendering)
    report.add_time("build", outcome.building)
    if delivery.id == TRIAL_ID:
        if outcome.failure is not None:
            raise DigestError(
                f"composing failed before anyone was mailed: {outcome.failure}",
                hint="nothing was sent or marked: fix the cause and run again",
            )
        return None
    period_day = edition.day if intent.since is not None else None
    if outcome.failure is not None:
        store.mark_failed(delivery.id, reason=outcome.failure, now=clock())
        report.fail(intent.reader.email, outcome.failure)
        return None
    not_mailed = outcome.not_mailed
    if isinstance(not_mailed, Skip):
        # A period that found nothing closes all the same: a weekly reader waits a week.
        closed = period_day if not_mailed.reason == NOTHING_NEW else None
        store.mark_skipped(delivery.id, reason=not_mailed.reason, now=clock(), period_day=closed)
        report.count("skipped")
        return None
    if not_mailed is not None:
        store.mark_folded([(delivery.id, gathered_note(not_mailed))], now=clock())
        report.count("folded")
        return None
    assert outcome.message is not None and outcome.envelope is not None
    return Outgoing(delivery, intent, outcome.envelope, outcome.message, period_day)


def _trial_address(composer: Composer) -> str:
    return f"trial@{domain_of(composer.settings.sender_address)}"


def _relay_takes_8bit(transports: Sequence[Transport]) -> bool:
    """Whether the relay takes 8-bit parts, asked on the pool's first connection (the
    others are the same relay's, opened as the pool grows); a relay out of reach just
    now is sent 7-bit messages (its sender retries it as usual)."""
    try:
        return transports[0].takes_8bit()
    except TemporaryFailure:
        return False
