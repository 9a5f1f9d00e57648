"""Where messages are composed: in this process, or in a child while this one sends.

Either way the decided deliveries go in, in order, and each comes out with
its ``Composed``; nothing here reads a reader again or asks the decider.  A
reader whose email gathers several editions is composed here, from an index
of their period's papers.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from datetime import date
from typing import Any

from digest.deliver.claims import Decided, batches
from digest.deliver.compose import (
    Composed,
    Composer,
    Job,
    Jobs,
    Taste,
    compose_message,
    serve,
)
from digest.deliver.report import Clock, DeliveryReport
from digest.errors import DigestError
from digest.models import Delivery, Edition, StoredEntry
from digest.plan import Send
from digest.select import EditionIndex
from digest.store import Store

#: From this many queued deliveries on, messages are composed in a child
#: process: composing then takes no time from the threads that talk to the
#: mail server (Python runs one thread at a time).
COMPOSE_IN_A_PROCESS_FROM = 1000

#: How many deliveries are composed together (their models read in one query).
COMPOSE_BATCH = 16

#: What ``composing`` yields: decided deliveries in, each with its outcome out.
Compose = Callable[[Iterator[Decided], Clock], Iterator[tuple[Delivery, Send, Composed]]]


class PeriodIndexes:
    """The index of each period's papers (the editions after ``since`` up to
    ``through``, and ``waiting``: the papers of an edition not built yet), made when a
    reader of that period is first composed, and closed together."""

    def __init__(self, store: Store, through: date, waiting: Sequence[StoredEntry] = ()) -> None:
        self.store, self.through, self.waiting = store, through, list(waiting)
        self._opened = ExitStack()
        self._by_since: dict[date, EditionIndex] = {}

    def __call__(self, since: date) -> EditionIndex:
        if since not in self._by_since:
            papers = self.store.entries_between(since, self.through) + self.waiting
            self._by_since[since] = self._opened.enter_context(EditionIndex(papers))
        return self._by_since[since]

    def __enter__(self) -> PeriodIndexes:
        return self

    def __exit__(self, *exc: object) -> None:
        self._opened.close()


def tastes_of(
    store: Store,
    reader_ids: Sequence[int],
    space_version: int | None,
    following: Collection[int] | None = None,
) -> dict[int, Taste]:
    """The readers' tastes, in up to two queries: their models (over the space of
    ``space_version``, none without one) and the authors they follow (asked only of
    those in ``following``, when the caller knows who follows anyone)."""
    ids = list(reader_ids)
    models = store.models_of(ids, space_version) if space_version is not None else {}
    asked = ids if following is None else [i for i in ids if i in following]
    follows = dict.fromkeys(ids, ()) | (store.follows_of(asked) if asked else {})
    return {
        reader: Taste(models.get(reader), follows[reader])
        for reader in ids
        if reader in models or follows[reader]
    }


class _Models:
    """Readers' models and follows, a batch at a time; who has either is read once, so
    a batch without any of them costs no query."""

    def __init__(self, store: Store, composer: Composer) -> None:
        self.store, self.space = store, composer.space
        modelled = store.readers_with_models(self.space.version) if self.space else frozenset()
        self.following = store.readers_following()
        self.wanted = modelled | self.following

    def of(self, batch: list[Decided]) -> dict[int, Taste]:
        wanted = [i.reader.id for _, i in batch if i.reader.id in self.wanted]
        if not wanted:
            return {}
        version = self.space.version if self.space else None
        return tastes_of(self.store, wanted, version, self.following)


@contextmanager
def composing(
    store: Store,
    composer: Composer,
    edition: Edition,
    report: DeliveryReport,
    *,
    in_child: bool,
    waiting: Sequence[StoredEntry] = (),
) -> Iterator[Compose]:
    """Yield the function that composes decided deliveries in order, here or in a child.

    ``waiting``: the papers of an edition not built yet (a dry run before the
    day's edition), which every period's email carries too.
    """
    entries = store.edition_entries(edition.id) if edition.id else list(waiting)
    models = _Models(store, composer)
    with (
        PeriodIndexes(store, edition.day, waiting) as periods,
        EditionIndex(entries) as index,
    ):

        def here(batch: list[Decided], clock: Clock) -> Iterator[tuple[Delivery, Send, Composed]]:
            found = models.of(batch)
            for delivery, intent in batch:
                chosen = periods(intent.since) if intent.since is not None else index
                taste = found.get(intent.reader.id)
                job = Job(delivery, intent, clock(), taste)
                outcome = compose_message(composer, edition, chosen, job)
                yield delivery, intent, outcome

        if not in_child:
            composer.renderer.prepare(entries)

            def composed_here(
                items: Iterator[Decided], clock: Clock
            ) -> Iterator[tuple[Delivery, Send, Composed]]:
                for batch in batches(items, COMPOSE_BATCH):
                    yield from here(batch, clock)

            yield composed_here
            return
        child = _ComposingProcess(composer, edition, entries)
        try:
            yield _in_child(child, models, here)
            report.composer_peak_rss_kb = child.finish()
        finally:
            child.close()


def _in_child(
    child: _ComposingProcess,
    models: _Models,
    here: Callable[[list[Decided], Clock], Iterator[tuple[Delivery, Send, Composed]]],
) -> Compose:
    def composed_elsewhere(
        items: Iterator[Decided], clock: Clock
    ) -> Iterator[tuple[Delivery, Send, Composed]]:
        # Three batches out at a time: the child composes the next ones
        # while this process hands the first to the senders.
        out: deque[list[Decided]] = deque()
        for batch in batches(items, 32, first=1):
            gathering = [item for item in batch if item[1].since is not None]
            if gathering:  # a period of several editions is composed here
                yield from here(gathering, clock)
                batch = [item for item in batch if item[1].since is None]
                if not batch:
                    continue
            found = models.of(batch)
            child.send([Job(d, i, clock(), found.get(i.reader.id)) for d, i in batch])
            out.append(batch)
            if len(out) == 3:
                yield from _settled(out.popleft(), child.receive())
        while out:
            yield from _settled(out.popleft(), child.receive())

    return composed_elsewhere


def _settled(
    batch: list[Decided], outcomes: list[Composed]
) -> Iterator[tuple[Delivery, Send, Composed]]:
    for (delivery, intent), outcome in zip(batch, outcomes, strict=True):
        yield delivery, intent, outcome


class _ComposingProcess:
    """A child process (``compose.serve``) that composes batches of deliveries, in order."""

    def __init__(self, composer: Composer, edition: Edition, entries: list[StoredEntry]) -> None:
        context = multiprocessing.get_context("spawn")
        self.connection, theirs = context.Pipe()
        space = (composer.space.version, composer.space.dump()) if composer.space else None
        self.process = context.Process(
            target=serve,
            args=(theirs, composer.settings, composer.installation, edition, entries, space),
            name="digest-compose",
        )
        self.process.daemon = True
        self.process.start()
        theirs.close()

    def send(self, jobs: Jobs | None) -> None:
        try:
            self.connection.send(jobs)
        except OSError as e:
            raise self._gone() from e

    def receive(self) -> Any:
        """The child's next answer; its error, or its end, raised here."""
        try:
            answer = self.connection.recv()
        except (EOFError, OSError) as e:
            raise self._gone() from e
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def _gone(self) -> DigestError:
        self.process.join(1)
        return DigestError(
            f"the composing process ended unexpectedly (exit code {self.process.exitcode})",
            hint="what was not sent stays queued: run again to send it",
        )

    def finish(self) -> int:
        """Let the child finish; return its peak memory in KiB."""
        self.send(None)
        while isinstance(answer := self.receive(), list):
            pass  # outcomes composed ahead of a stop: they stay queued
        return int(answer)

    def close(self) -> None:
        self.connection.close()
        self.process.join(10)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join()
