"""Select, for each subscriber, the edition's entries that match their topics.

The edition's entries are indexed once in an in-memory SQLite FTS5 table
(porter stemming, accent-insensitive) whatever the storage backend, and each
subscriber's compiled queries run against it, ranked by bm25.  No files, no
network, no clock: the in-memory index is a private detail of this stage.
"""

from __future__ import annotations

import itertools
import math
import sqlite3
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from digest.identity import author_key
from digest.models import Follow, StoredEntry, Topic
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
    #: A line the card carries when it is not there for its topic: an exploration
    #: card's question, a followed author's name.
    note: str = ""

    @property
    def why_line(self) -> str:
        """The line above the card that says why it is there (empty: for its topic)."""
        return f"Because: {self.reason}" if self.reason else self.note


#: The label of the section of papers a reader's model recommends.
RECOMMENDED = "Recommended for you"
#: The label of the section of papers by authors the reader follows.
FOLLOWED = "By authors you follow"
#: What an exploration card asks (its More/Less buttons answer it).
EXPLORE_NOTE = "Help digest learn: is this for you?"
#: Cards of an email before its exploration cards: they come within the first ten.
EXPLORE_AFTER = 8


@dataclass(frozen=True)
class Affinity:
    """What a reader's model says of the edition's papers: a score per paper (higher is
    more wanted), the papers it would recommend (best first), and why it wants one."""

    #: The model's score of each paper (a logit), by the paper's row in ``rows``.
    scores: Sequence[float]
    #: Each paper's row, by entry id (one mapping per edition, shared by its readers).
    rows: Mapping[int, int]
    recommended: tuple[int, ...] = ()
    #: Why the model wants a paper ("score distillation, 3d"), asked only of those shown.
    why: Callable[[int], str] = lambda _: ""
    #: How much the model orders a topic's papers (0: bm25 alone, 1: the model alone).
    blend: float = 0.5
    #: Recommended papers at most (those of ``recommended`` that no topic took).
    recommend: int = 5
    #: Each topic's own scores (keyed by its query, by row), from the votes on its papers.
    by_topic: Mapping[str, Sequence[float]] = field(default_factory=dict)
    #: Papers to ask the reader about, most informative first (some may be taken).
    explore: tuple[int, ...] = ()
    #: Exploration cards at most.
    explore_cards: int = 0

    def score(self, entry_id: int) -> float:
        """The model's score of a paper (0 for one it has not seen)."""
        row = self.rows.get(entry_id)
        return self.scores[row] if row is not None else 0.0

    def wanted(self, entry_id: int) -> float:
        """How sure the model is that the reader wants the paper, 0 to 1 (its score is
        a logit)."""
        return 1 / (1 + math.exp(-self.score(entry_id)))


#: How far down the two orders reach before a rank counts little (reciprocal rank
#: fusion's k, small: the top of each order is what matters in an email).
FUSION_DEPTH = 3


def blended(matches: Sequence[Match], affinity: Affinity, topic: str = "") -> list[Match]:
    """A topic's matches in the order of their bm25 rank and model rank fused (weighted
    reciprocal rank fusion: a paper near the top of both comes first), with the topic's
    own model when it has one."""
    if len(matches) < 2 or not affinity.blend:
        return list(matches)
    scores, rows = affinity.by_topic.get(topic, affinity.scores), affinity.rows
    values = [scores[rows[m.entry.id]] for m in matches]
    by_model = sorted(range(len(matches)), key=lambda i: -values[i])
    model_rank = {i: rank for rank, i in enumerate(by_model)}
    weight = affinity.blend

    def fused(i: int) -> float:
        return (1 - weight) / (FUSION_DEPTH + i) + weight / (FUSION_DEPTH + model_rank[i])

    return [matches[i] for i in sorted(range(len(matches)), key=lambda i: (-fused(i), i))]


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
    #: Exploration cards among the sections (asked about, not chosen for the reader).
    asked: int = 0

    @property
    def count(self) -> int:
        return sum(len(s.matches) for s in self.sections)

    @property
    def matched(self) -> int:
        """The cards chosen for the reader: all but the exploration cards."""
        return self.count - self.asked

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
        self._by_id = {s.id: s for s in self.entries}
        #: Each author's papers here, by ``author_key``, made when a follow asks.
        self._by_author: dict[str, list[StoredEntry]] | None = None
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
        self,
        topics: Sequence[Topic],
        *,
        max_entries: int,
        affinity: Affinity | None = None,
        follows: Sequence[Follow] = (),
    ) -> Selection:
        """Return a subscriber's sections: an entry appears once, under its first topic.

        The papers of authors the reader ``follows`` come first, whatever the
        room.  With a reader's ``affinity`` each topic's papers are ordered by
        bm25 and the model together (the topic's own model when it has one),
        the papers it recommends that no topic took follow in a section of
        their own, and its exploration cards come after the first
        ``EXPLORE_AFTER`` cards.
        """
        by_id = self._by_id
        followed = self._followed(follows)
        by_followed = {m.entry.id for m in followed}
        asked = tuple(
            m for m in self._exploration(affinity, by_id) if m.entry.id not in by_followed
        )
        taken = {m.entry.id for m in (*followed, *asked)}
        room = max(0, max_entries - len(asked) - len(followed))
        first = (Section(FOLLOWED, followed),) if followed else ()
        if not topics:
            # No topics and a model: the learned ranking alone chooses.
            ordered = (
                blended(self._everything, replace(affinity, blend=1.0))
                if affinity
                else self._everything
            )
            kept = (m for m in ordered if m.entry.id not in taken) if taken else ordered
            everything = tuple(itertools.islice(kept, room))
            body = [Section("", everything)] if everything else []
            cut = len(self._everything) - len(everything) - len(taken)
        else:
            body, cut = self._topic_sections(topics, affinity, taken, room)
            body += self._recommended(affinity, taken)
        if asked and not (first or body):  # never an email only to ask
            assert affinity is not None
            quiet = replace(affinity, explore_cards=0)
            return self.select(topics, max_entries=max_entries, affinity=quiet, follows=follows)
        return Selection(_with_exploration((*first, *body), asked), cut=cut, asked=len(asked))

    def _recommended(self, affinity: Affinity | None, taken: set[int]) -> list[Section]:
        """The papers the reader's models recommend that nothing else took, if any."""
        if not affinity or not affinity.recommended:
            return []
        chosen = [i for i in affinity.recommended if i not in taken and i in self._by_id]
        recommended = tuple(
            Match(self._by_id[i], affinity.score(i), affinity.why(i))
            for i in chosen[: affinity.recommend]
        )
        return [Section(RECOMMENDED, recommended)] if recommended else []

    def _topic_sections(
        self, topics: Sequence[Topic], affinity: Affinity | None, taken: set[int], room: int
    ) -> tuple[list[Section], int]:
        """Each topic's papers that no earlier one took (adding them to ``taken``), as
        many as there is room for, and how many were cut."""
        sections: list[Section] = []
        cut = 0
        for topic in topics:
            fresh = [m for m in self.search(topic.query) if m.entry.id not in taken]
            if affinity:
                fresh = blended(fresh, affinity, topic.query)
            taken.update(m.entry.id for m in fresh)
            shown, rest = fresh[:room], fresh[room:]
            room -= len(shown)
            cut += len(rest)
            if shown:
                sections.append(Section(topic.label or topic.query, tuple(shown)))
        return sections, cut

    def _followed(self, follows: Sequence[Follow]) -> tuple[Match, ...]:
        """The papers by authors the reader follows, each naming whom it is by."""
        if not follows:
            return ()
        if self._by_author is None:
            self._by_author = {}
            for stored in self.entries:
                for name in stored.entry.authors:
                    self._by_author.setdefault(author_key(name), []).append(stored)
        found: dict[int, Match] = {}
        for follow in follows:
            for stored in self._by_author.get(follow.key, ()):
                found.setdefault(stored.id, Match(stored, 0.0, note=f"You follow {follow.author}"))
        return tuple(found.values())

    @staticmethod
    def _exploration(
        affinity: Affinity | None, by_id: Mapping[int, StoredEntry]
    ) -> tuple[Match, ...]:
        if affinity is None or not affinity.explore_cards:
            return ()
        chosen = [i for i in affinity.explore if i in by_id][: affinity.explore_cards]
        return tuple(Match(by_id[i], affinity.score(i), note=EXPLORE_NOTE) for i in chosen)


def _with_exploration(
    sections: tuple[Section, ...], asked: tuple[Match, ...]
) -> tuple[Section, ...]:
    """The sections with the exploration cards inside the one that holds the email's
    ``EXPLORE_AFTER``-th card (at its end when the email is shorter)."""
    if not asked:
        return sections
    before = 0
    for number, section in enumerate(sections):
        if before + len(section.matches) >= EXPLORE_AFTER or number == len(sections) - 1:
            at = max(0, EXPLORE_AFTER - before)
            matches = section.matches[:at] + asked + section.matches[at:]
            return (*sections[:number], replace(section, matches=matches), *sections[number + 1 :])
        before += len(section.matches)
    return sections
