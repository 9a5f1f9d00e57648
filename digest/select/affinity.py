"""What a reader's models say of an edition's papers: the ``Affinity`` selection ranks by.

Pure numbers in, an ``Affinity`` out (no database, no clock).  Loaded only
where a reader has a model, as ``learned`` is: numpy is slow to import.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from digest.models import StoredEntry, Topic
from digest.select.explore import exploration_picks, interleaved
from digest.select.index import Affinity
from digest.select.learned import FeatureSpace, PaperVectors, ReaderModels


@dataclass(frozen=True)
class Tuning:
    """How the models are used (``[learning]`` in the settings)."""

    recommend: int = 5
    #: How sure a model must be (0 to 1) before it recommends a paper.
    above: float = 0.6
    blend: float = 0.5
    #: Exploration cards at most (0: none).
    explore: int = 2


@dataclass(frozen=True)
class EditionVectors:
    """An edition's papers in a feature space: made once, scored for every reader."""

    space: FeatureSpace
    entries: Sequence[StoredEntry]
    papers: PaperVectors

    @classmethod
    def of(cls, space: FeatureSpace, entries: Sequence[StoredEntry]) -> EditionVectors:
        return cls(space, entries, PaperVectors.of(space.vectors([s.entry for s in entries])))

    @functools.cached_property
    def row_of(self) -> dict[str, int]:
        """Each paper's row by its fingerprint (what a reader's papers are named by)."""
        return {s.entry.fingerprint: row for row, s in enumerate(self.entries)}


def affinity_of(
    models: ReaderModels,
    edition: EditionVectors,
    *,
    topics: Sequence[Topic] = (),
    tuning: Tuning = Tuning(),
) -> Affinity:
    """The reader's affinity for the edition's papers: the overall model's scores, each
    topic's own, what they recommend (each interest in turn, never a paper the reader
    has already) and what exploration would ask about."""
    space, entries, papers = edition.space, edition.entries, edition.papers
    ids = [s.id for s in entries]
    scores = models.overall.scores(papers)
    own = {t.query: models.interests[t.query] for t in topics if t.query in models.interests}
    by_topic = {query: model.scores(papers) for query, model in own.items()}
    # The model's probability above tuning.above, as its score (a logit).
    above = float(np.log(tuning.above / max(1e-9, 1 - tuning.above)))
    has = {edition.row_of[paper] for paper in models.owned if paper in edition.row_of}
    wanted = [
        [
            int(row)
            for row in np.argsort(-values)[: 2 * tuning.recommend]
            if values[row] >= above and row not in has
        ]
        for values in (*by_topic.values(), scores)
    ]
    # Twice as many as shown: some will be in the reader's topics already.
    recommended = interleaved(wanted)[: 2 * tuning.recommend]
    picks = exploration_picks(
        scores, papers, models.voted, count=2 * tuning.explore, excluded=[*recommended, *has]
    )

    def why(entry_id: int) -> str:  # asked only of the few papers shown
        return ", ".join(models.overall.reasons(papers, ids.index(entry_id), space))

    return Affinity(
        scores=dict(zip(ids, scores.tolist(), strict=True)),
        recommended=tuple(ids[row] for row in recommended),
        why=why,
        blend=tuning.blend,
        recommend=tuning.recommend,
        by_topic={
            query: dict(zip(ids, values.tolist(), strict=True))
            for query, values in by_topic.items()
        },
        explore=tuple(ids[row] for row in picks),
        explore_cards=tuning.explore,
    )
