"""What a reader's models say of an edition's papers: the ``Affinity`` selection ranks by.

Pure numbers in, an ``Affinity`` out (no database, no clock).  Loaded only
where a reader has a model, as ``learned`` is: numpy is slow to import.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from digest.models import StoredEntry, Topic
from digest.select.explore import exploration_picks, interleaved
from digest.select.index import Affinity
from digest.select.learned import FeatureSpace, PaperVectors, ReaderModels


class Learning(Protocol):
    """What ``affinity_of`` reads of the settings (``LearningSettings`` declares them)."""

    @property
    def recommend_papers(self) -> int: ...
    @property
    def recommend_above(self) -> float: ...
    @property
    def blend(self) -> float: ...
    @property
    def explore_cards(self) -> int: ...


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

    @functools.cached_property
    def ids(self) -> list[int]:
        """Each row's entry id."""
        return [s.id for s in self.entries]

    @functools.cached_property
    def rows(self) -> dict[int, int]:
        """Each paper's row by its entry id."""
        return {entry_id: row for row, entry_id in enumerate(self.ids)}


def affinity_of(
    models: ReaderModels,
    edition: EditionVectors,
    *,
    topics: Sequence[Topic] = (),
    learning: Learning,
    explore: int | None = None,
) -> Affinity:
    """The reader's affinity for the edition's papers: the overall model's scores, each
    topic's own, what they recommend (each interest in turn, never a paper the reader
    has already) and what exploration would ask about (``explore`` cards: the
    settings' by default, 0 for a reader who turned it off)."""
    cards = learning.explore_cards if explore is None else explore
    space, papers, ids = edition.space, edition.papers, edition.ids
    scores = models.overall.scores(papers)
    own = {t.query: models.interests[t.query] for t in topics if t.query in models.interests}
    by_topic = {query: model.scores(papers) for query, model in own.items()}
    # The model's probability above recommend_above, as its score (a logit).
    above = float(np.log(learning.recommend_above / max(1e-9, 1 - learning.recommend_above)))
    has = {edition.row_of[paper] for paper in models.owned if paper in edition.row_of}
    wanted = [
        [
            int(row)
            for row in np.argsort(-values)[: 2 * learning.recommend_papers]
            if values[row] >= above and row not in has
        ]
        for values in (*by_topic.values(), scores)
    ]
    # Twice as many as shown: some will be in the reader's topics already.
    recommended = interleaved(wanted)[: 2 * learning.recommend_papers]
    picks = exploration_picks(
        scores, papers, models.voted, count=2 * cards, excluded=[*recommended, *has]
    )

    def why(entry_id: int) -> str:  # asked only of the few papers shown
        return ", ".join(models.overall.reasons(papers, edition.rows[entry_id], space))

    return Affinity(
        scores=scores.tolist(),
        rows=edition.rows,
        recommended=tuple(ids[row] for row in recommended),
        why=why,
        blend=learning.blend,
        recommend=learning.recommend_papers,
        by_topic={query: values.tolist() for query, values in by_topic.items()},
        explore=tuple(ids[row] for row in picks),
        explore_cards=cards,
    )
