"""The learning stage, before planning: keep the feature space fresh and refit the models
of readers whose feedback changed.

I/O at the edge of ``digest.select.learned`` (the numbers): this module reads
papers and votes from the store, asks the pure fitting functions, and stores
the results, versioned, so that every sender of an installation (several on
PostgreSQL) ranks with the same models.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

from digest.errors import DigestError
from digest.models import Feedback, StoredEntry, Topic
from digest.store import Store

if TYPE_CHECKING:  # numpy is imported only once someone has given feedback
    from digest.select.learned import FeatureSpace, ReaderModel, ReaderModels

#: The papers a feature space is fitted over: the most recent ones.
CORPUS_PAPERS = 20_000
#: A new feature space is fitted when the seen-list has grown by this much since.
REFRESH_GROWTH = 0.25
#: Papers sampled as every reader's weak negatives.
BACKGROUND_PAPERS = 200
#: Readers fitted per batch (their feedback read in one query).
BATCH = 100
#: Recent papers a guided start chooses from.
STARTER_POOL = 500


@dataclass(frozen=True)
class LearnReport:
    """What the learning stage did; ``missing`` says why it could not (an extra)."""

    space_version: int | None = None
    new_space: bool = False
    fitted: int = 0
    missing: str | None = None


def missing_extra(error: ImportError) -> str:
    """What to tell an operator whose installation lacks the ``learning`` extra."""
    return (
        f"learning from readers' votes needs the 'learning' extra ({error.name} is not "
        "installed): pip install -e '.[learning]'; until then readers get their topics "
        "in keyword order"
    )


def current_space(store: Store) -> FeatureSpace | None:
    """The feature space readers' models are fitted over (None before any feedback, or
    without the ``learning`` extra: then every order is the keywords')."""
    latest = store.latest_feature_space()
    if latest is None:
        return None
    try:
        from digest.select.learned import FeatureSpace
    except ImportError:
        return None
    return FeatureSpace.load(latest[0], latest[2])


def refresh(store: Store, *, now: datetime) -> LearnReport:
    """Refit what changed: the feature space when the corpus grew, then each reader whose
    feedback changed since their model (all of them over a new space)."""
    latest = store.latest_feature_space()
    if not store.readers_to_fit(latest[0] if latest else -1):
        return LearnReport(space_version=latest[0] if latest else None)
    try:  # the 'learning' extra: numpy, scipy, scikit-learn
        import scipy.sparse
        import sklearn  # noqa: F401

        from digest.select.learned import FeatureSpace, fit_space
    except ImportError as e:
        return LearnReport(missing=missing_extra(e))

    papers = store.count_entries()
    new_space = latest is None or papers >= latest[1] * (1 + REFRESH_GROWTH)
    if new_space:
        corpus = [s.entry for s in store.recent_entries(CORPUS_PAPERS)]
        space = fit_space(corpus, version=0)
        space = replace(
            space, version=store.add_feature_space(space.dump(), papers=papers, now=now)
        )
    else:
        assert latest is not None
        space = FeatureSpace.load(latest[0], latest[2])
    readers = store.readers_to_fit(space.version)
    background = scipy.sparse.csr_matrix(
        space.vectors([s.entry for s in store.sample_entries(BACKGROUND_PAPERS)])
    )
    for start in range(0, len(readers), BATCH):
        batch = readers[start : start + BATCH]
        feedback = store.feedback_of([reader for reader, _ in batch])
        topics = store.topics_of([reader for reader, _ in batch])
        models = []
        for reader, feedback_at in batch:
            model = fit_from(store, space, feedback[reader], background, topics.get(reader, ()))
            models.append((reader, space.version, feedback_at, model.dump() if model else None))
        store.save_models(models, now=now)
    return LearnReport(space_version=space.version, new_space=new_space, fitted=len(readers))


def fit_from(
    store: Store,
    space: FeatureSpace,
    feedback: Sequence[Feedback],
    background: object,
    topics: Sequence[Topic] = (),
) -> ReaderModels | None:
    """A reader's models from their feedback on the papers that are stored (a like of a
    paper not seen yet waits for it): one over all of it, one per topic whose papers
    have a positive of their own, and the profile of what they voted on."""
    from digest.select import EditionIndex
    from digest.select.learned import KEEP_TOPIC_COEFFICIENTS, Profile, ReaderModels

    named = store.entries_named([f.paper for f in feedback])
    known = [f for f in feedback if f.paper in named]
    overall = _fit_one(space, known, named, background)
    if overall is None:
        return None
    interests = {}
    if len(topics) > 1:
        with EditionIndex([named[f.paper] for f in known]) as index:
            for topic in topics:
                try:
                    matched = {m.entry.entry.fingerprint for m in index.search(topic.query)}
                except (DigestError, sqlite3.Error):  # a query the index refuses: no model
                    continue
                own = [f for f in known if f.paper in matched]
                model = _fit_one(space, own, named, background, keep=KEEP_TOPIC_COEFFICIENTS)
                if model is not None:
                    interests[topic.query] = model
    voted = Profile.of(space.vectors([named[f.paper].entry for f in known]))
    owned = frozenset(f.paper for f in feedback if f.vote > 0)
    return ReaderModels(overall, interests, voted, owned)


def _fit_one(
    space: FeatureSpace,
    feedback: Sequence[Feedback],
    named: Mapping[str, StoredEntry],
    background: object,
    *,
    keep: int | None = None,
) -> ReaderModel | None:
    import numpy as np

    from digest.select.learned import KEEP_COEFFICIENTS, fit_reader

    liked = [f for f in feedback if f.vote > 0]
    disliked = [f for f in feedback if f.vote < 0]
    if not liked:
        return None
    return fit_reader(
        space,
        space.vectors([named[f.paper].entry for f in liked]),
        space.vectors([named[f.paper].entry for f in disliked]),
        background,
        positive_weights=np.array([f.weight for f in liked], dtype=np.float32),
        keep=keep or KEEP_COEFFICIENTS,
    )


def starter_papers(
    store: Store,
    topics: Sequence[Topic],
    model: bytes | None,
    *,
    count: int,
    rated: Collection[str] = frozenset(),
) -> list[StoredEntry]:
    """Recent papers a reader learns the most from rating first: spread over their
    topics, the ones their model is least sure of, unlike each other (never one they
    have ``rated``).  Without the ``learning`` extra: the topics' best matches in turn."""
    from digest.select import EditionIndex

    pool = [s for s in store.recent_entries(STARTER_POOL) if s.entry.fingerprint not in rated]
    row_of = {s.id: row for row, s in enumerate(pool)}
    with EditionIndex(pool) as index:
        groups = [[row_of[m.entry.id] for m in index.search(t.query)] for t in topics]
    try:
        from digest.select.explore import starter_picks
        from digest.select.learned import PaperVectors, ReaderModels, fit_space
    except ImportError:
        firsts = [
            row for rank in range(count) for group in groups for row in group[rank : rank + 1]
        ]
        rows = list(dict.fromkeys([*firsts, *range(len(pool))]))[:count]
        return [pool[row] for row in rows]
    space = current_space(store) if model is not None else None
    if space is None:  # no model to be unsure with: a space of these papers, for variety
        space, model = fit_space([s.entry for s in pool], version=0), None
    papers = PaperVectors.of(space.vectors([s.entry for s in pool]))
    scores = ReaderModels.load(space.version, model).overall.scores(papers) if model else None
    return [pool[row] for row in starter_picks(papers, groups, scores, count)]
