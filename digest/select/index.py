"""Select, for each subscriber, the edition's entries that match their topics.

The edition's entries are indexed once in an in-memory SQLite FTS5 table
(porter stemming, accent-insensitive) whatever the storage backend, and each
subscriber's compiled queries run against it, ranked by bm25.  No files, no
network, no clock: the in-memory index is a private detail of this stage.
"""

from __future__ import annotations

import math
import sqlite3
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from digest.models import StoredEntry, Topic
from digest.select.topics import compile_fts5, parse_query

#: Between two authors, so that a phrase never runs from one name into the next.
_AUTHOR_BREAK = " authorbreak "
#: Distinct queries whose results are kept; beyond it the cache starts over,
#: so memory stays flat however many subscribers there are.
_CACHE_SIZE = 2_000
#: bm25 weights of the indexed columns: a word in the title counts most.
_WEIGHTS = (4.0, 1.0, 2.0)


@dataclass(frozen=True)
class Match:
    """An entry a query selected, with its relevance (higher is better)."""

    entry: StoredEntry
    score: float
    #: Why a recommended paper is there ("score distillation, 3d"); empty otherwise.
    reason: str = ""
    #: How sure the reader's model is that they want it (0 to 1); None without a model.
    wanted: float | None = None


#: The label of the section of papers a reader's model recommends.
RECOMMENDED = "Recommended for you"


@dataclass(frozen=True)
class Affinity:
    """What a reader's model says of the edition's papers: a score per entry id (higher
    is more wanted), the papers it would recommend (best first), and why it wants one."""

    scores: Mapping[int, float]
    recommended: tuple[int, ...] = ()
    #: Why the model wants a paper ("score distillation, 3d"), asked only of those shown.
    why: Callable[[int], str] = lambda _: ""
    #: How much the model orders a topic's papers (0: bm25 alone, 1: the model alone).
    blend: float = 0.5
    #: Recommended papers at most (those of ``recommended`` that no topic took).
    recommend: int = 5

    def wanted(self, entry_id: int) -> float:
        """How sure the model is that the reader wants the paper, 0 to 1 (its score is
        a logit)."""
        return 1 / (1 + math.exp(-self.scores.get(entry_id, 0.0)))


def blended(matches: Sequence[Match], affinity: Affinity) -> list[Match]:
    """A topic's matches in the order of their bm25 rank and model rank, blended."""
    if len(matches) < 2 or not affinity.blend:
        return list(matches)
    by_model = sorted(
        range(len(matches)), key=lambda i: -affinity.scores.get(matches[i].entry.id, 0.0)
    )
    model_rank = {i: rank for rank, i in enumerate(by_model)}
    weight = affinity.blend
    order = sorted(
        range(len(matches)), key=lambda i: ((1 - weight) * i + weight * model_rank[i], i)
    )
    return [matches[i] for i in order]


@dataclass(frozen=True)
class Section:
    """The entries one topic selected; ``label`` is empty for "every new paper"."""

    label: str
    matches: tuple[Match, ...]


@dataclass(frozen=True)
class Selection:
    """What one subscriber gets: sections in topic order, and how many were cut."""

    sections: tuple[Section, ...]
    cut: int = 0

    @property
    def count(self) -> int:
        return sum(len(s.matches) for s in self.sections)

    @property
    def is_empty(self) -> bool:
        return self.count == 0


class EditionIndex:
    """A full-text index of one edition's entries; build once, query per subscriber."""

    def __init__(self, entries: Sequence[StoredEntry]) -> None:
        self.entries = tuple(entries)
        self._db = sqlite3.connect(":memory:")
        rows = [
            (index, s.entry.title, s.entry.abstract, _AUTHOR_BREAK.join(s.entry.authors))
            for index, s in enumerate(self.entries)
        ]
        for table, tokenizer in (("papers", "porter unicode61"), ("words", "unicode61")):
            self._db.execute(
                f"CREATE VIRTUAL TABLE {table} USING fts5(title, abstract, authors, "
                f"tokenize = '{tokenizer} remove_diacritics 2')"
            )
            self._db.executemany(
                f"INSERT INTO {table} (rowid, title, abstract, authors) VALUES (?, ?, ?, ?)", rows
            )
        # The unstemmed vocabulary, to turn a prefix into the whole words it stands for.
        self._db.execute("CREATE VIRTUAL TABLE vocabulary USING fts5vocab(words, 'row')")
        self._cache: dict[str, tuple[Match, ...]] = {}
        self._everything = tuple(
            Match(entry, 0.0)
            for entry in sorted(self.entries, key=lambda s: -(s.entry.upvotes or 0))
        )

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> EditionIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def search(self, query: str) -> tuple[Match, ...]:
        """Return the entries a query selects, best first (results cached per query)."""
        cached = self._cache.get(query)
        if cached is None:
            expression = compile_fts5(parse_query(query), self._words_starting_with)
            rows = self._db.execute(
                "SELECT rowid, bm25(papers, ?, ?, ?) AS rank FROM papers "
                "WHERE papers MATCH ? ORDER BY rank, rowid",
                (*_WEIGHTS, expression),
            ).fetchall()
            cached = tuple(Match(self.entries[rowid], -rank) for rowid, rank in rows)
            if len(self._cache) >= _CACHE_SIZE:
                self._cache.clear()
            self._cache[query] = cached
        return cached

    def _words_starting_with(self, prefix: str) -> list[str]:
        folded = "".join(
            c
            for c in unicodedata.normalize("NFKD", prefix.casefold())
            if not unicodedata.combining(c)
        )
        rows = self._db.execute(
            "SELECT term FROM vocabulary WHERE term >= ? AND term < ? ORDER BY term LIMIT 200",
            (folded, folded + "\U0010ffff"),
        )
        return [term for (term,) in rows]

    def select(
        self, topics: Sequence[Topic], *, max_entries: int, affinity: Affinity | None = None
    ) -> Selection:
        """Return a subscriber's sections: an entry appears once, under its first topic.

        With a reader's ``affinity`` each topic's papers are ordered by bm25 and
        the model together, and the papers it recommends that no topic took
        follow in a section of their own.
        """
        if not topics:
            # No topics and a model: the learned ranking alone chooses.
            ordered = (
                blended(self._everything, replace(affinity, blend=1.0))
                if affinity
                else self._everything
            )
            everything = tuple(ordered[:max_entries])
            whole = (Section("", everything),) if everything else ()
            return Selection(whole, cut=len(self._everything) - len(everything))
        taken: set[int] = set()
        sections: list[Section] = []
        room = max_entries
        cut = 0
        for topic in topics:
            fresh = [m for m in self.search(topic.query) if m.entry.id not in taken]
            if affinity:
                fresh = blended(fresh, affinity)
            taken.update(m.entry.id for m in fresh)
            shown, rest = fresh[:room], fresh[room:]
            room -= len(shown)
            cut += len(rest)
            if shown:
                sections.append(Section(topic.label or topic.query, tuple(shown)))
        if affinity and affinity.recommended:
            by_id = {s.id: s for s in self.entries}
            chosen = [i for i in affinity.recommended if i not in taken and i in by_id]
            recommended = tuple(
                Match(by_id[i], affinity.scores.get(i, 0.0), affinity.why(i))
                for i in chosen[: affinity.recommend]
            )
            if recommended:
                sections.append(Section(RECOMMENDED, recommended))
        return Selection(tuple(sections), cut=cut)
