"""What each reader wants, learned from their votes: TF-IDF features and a linear model.

Pure: papers and votes in, numbers out; no database and no clock.  The
feature space is TF-IDF over title and abstract (1-2-grams, sublinear tf,
the settings of arxiv-sanity-lite), plus the categories and authors as a
group of their own at a lower weight, so that the words carry most of the
signal.  A reader's model is a logistic regression (scikit-learn) on their
positives ("more like this", liked papers), their negatives ("less like
this", weighted high) and a sample of other papers as weak negatives.

Fitting imports scikit-learn; scoring needs only numpy, so a run that
sends never pays for the import unless it fits.
"""

from __future__ import annotations

import functools
import io
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from digest.models import Entry

#: Words too common to tell papers apart (with scikit-learn's list in mind, shortened).
STOP_WORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been
    before being below between both but by can could did do does doing down during each
    few for from further had has have having he her here hers him his how i if in into is
    it its itself just me more most my no nor not now of off on once only or other our ours
    out over own same she should so some such than that the their theirs them then there
    these they this those through to too under until up very was we were what when where
    which while who whom why will with would you your via using based show shows shown
    propose proposed paper approach method methods results new novel use used work study
    however while well also et al e g i e""".split()
)
_TOKEN = re.compile(r"\b[a-z][a-z0-9_]+\b")
#: How much the categories and authors weigh against the words.
META_WEIGHT = 0.4
#: Coefficients a reader's model keeps (the largest in size); the rest are ~0.
KEEP_COEFFICIENTS = 1_000
#: Terms the profile of what a reader voted on keeps: enough to tell papers apart.
PROFILE_TERMS = 200
#: Coefficients a topic's own model keeps: a narrower interest needs fewer.
KEEP_TOPIC_COEFFICIENTS = 300


def words_of(entry: Entry) -> list[str]:
    """The terms of a paper's title and abstract: words and two-word phrases."""
    tokens = [
        t for t in _TOKEN.findall(f"{entry.title} {entry.abstract}".lower()) if t not in STOP_WORDS
    ]
    return tokens + [f"{a} {b}" for a, b in zip(tokens, tokens[1:], strict=False)]


def meta_of(entry: Entry) -> list[str]:
    """A paper's categories and authors, as terms of their own."""
    return [f"cat:{c.lower()}" for c in entry.categories] + [
        f"by:{' '.join(a.lower().split())}" for a in entry.authors[:20]
    ]


@dataclass(frozen=True)
class FeatureSpace:
    """Terms and their inverse document frequencies, fitted over the stored papers."""

    version: int
    terms: tuple[str, ...]
    idf: np.ndarray  # float32, one per term
    #: Where the category and author terms start (the word terms come first).
    meta_from: int
    index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "index", {t: n for n, t in enumerate(self.terms)})

    @property
    def size(self) -> int:
        return len(self.terms)

    def vectors(self, entries: Sequence[Entry]) -> np.ndarray:
        """The papers as rows of unit-length TF-IDF vectors (dense, float32)."""
        matrix = np.zeros((len(entries), self.size), dtype=np.float32)
        index = self.index
        for row, entry in enumerate(entries):
            for group, weight in ((words_of(entry), 1.0), (meta_of(entry), META_WEIGHT)):
                counts = Counter(index[t] for t in group if t in index)
                if not counts:
                    continue
                columns = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
                tf = 1.0 + np.log(np.fromiter(counts.values(), dtype=np.float32))
                values = tf * self.idf[columns]
                norm = float(np.linalg.norm(values))
                matrix[row, columns] = weight * values / norm
        return matrix

    def dump(self) -> bytes:
        """The space as bytes for the database (no pickle: terms and numbers only)."""
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer,
            terms=np.array(self.terms, dtype=np.str_),
            idf=self.idf,
            meta_from=np.array([self.meta_from]),
        )
        return buffer.getvalue()

    @classmethod
    def load(cls, version: int, data: bytes) -> FeatureSpace:
        with np.load(io.BytesIO(data), allow_pickle=False) as saved:
            return cls(
                version=version,
                terms=tuple(str(t) for t in saved["terms"]),
                idf=saved["idf"].astype(np.float32),
                meta_from=int(saved["meta_from"][0]),
            )


def fit_space(entries: Sequence[Entry], *, version: int, max_terms: int = 20_000) -> FeatureSpace:
    """Choose the terms and their weights from the stored papers.

    As arxiv-sanity-lite: terms in at least 5 papers (fewer for a small
    corpus) and at most 10% of them (half, for a small corpus), the 20,000
    most frequent, smooth idf.
    """
    count = len(entries)
    min_df = max(1, min(5, count // 200))
    max_df = 0.1 if count >= 2_000 else 0.5
    words = _document_frequencies(words_of(e) for e in entries)
    metas = _document_frequencies(meta_of(e) for e in entries)
    kept = [t for t, df in words.most_common() if min_df <= df <= max(1, max_df * count)]
    kept = kept[:max_terms]
    kept_meta = [t for t, df in metas.most_common() if df >= min_df][: max_terms // 4]
    terms = tuple(kept + kept_meta)
    frequency = [words[t] for t in kept] + [metas[t] for t in kept_meta]
    idf = np.array([math.log((1 + count) / (1 + df)) + 1.0 for df in frequency], dtype=np.float32)
    return FeatureSpace(version=version, terms=terms, idf=idf, meta_from=len(kept))


def _document_frequencies(documents: Iterable[list[str]]) -> Counter[str]:
    frequencies: Counter[str] = Counter()
    for terms in documents:
        frequencies.update(set(terms))
    return frequencies


@dataclass(frozen=True)
class PaperVectors:
    """Some papers' vectors, kept for scoring many readers against them: one row per term
    that any of the papers has (a model's other terms add nothing), one column per paper."""

    rows: np.ndarray  # float32, C order
    #: The row of each term of the space, -1 when none of the papers has it.
    position: np.ndarray  # int32

    @functools.cached_property
    def likeness(self) -> np.ndarray:
        """The cosine of each pair of papers (made once, for keeping picks apart)."""
        norms = np.linalg.norm(self.rows, axis=0) + 1e-9
        result: np.ndarray = (self.rows.T @ self.rows) / np.outer(norms, norms)
        return result

    @classmethod
    def of(cls, vectors: np.ndarray) -> PaperVectors:
        """From ``FeatureSpace.vectors`` (one row per paper)."""
        present = np.flatnonzero(vectors.any(axis=0))
        position = np.full(vectors.shape[1], -1, dtype=np.int32)
        position[present] = np.arange(len(present), dtype=np.int32)
        return cls(np.ascontiguousarray(vectors[:, present].T), position)


@dataclass(frozen=True)
class ReaderModel:
    """One reader's linear model over a feature space: the largest coefficients only."""

    space_version: int
    columns: np.ndarray  # int32, the terms kept
    weights: np.ndarray  # float32, one per term kept
    intercept: float

    def scores(self, papers: PaperVectors) -> np.ndarray:
        """How much the reader would want each paper (higher is more)."""
        rows = papers.position[self.columns]
        kept = rows >= 0  # terms of the model that no paper here has add nothing
        scores: np.ndarray = self.weights[kept] @ papers.rows[rows[kept]] + self.intercept
        return scores

    def reasons(
        self, papers: PaperVectors, paper: int, space: FeatureSpace, *, count: int = 3
    ) -> list[str]:
        """The terms that raise one paper's score the most, for "because: ..."."""
        rows = papers.position[self.columns]
        kept = rows >= 0
        columns, contributions = (
            self.columns[kept],
            papers.rows[rows[kept], paper] * self.weights[kept],
        )
        if len(contributions) > count:  # the few largest, without sorting them all
            top = np.argpartition(-contributions, count)[:count]
        else:
            top = np.arange(len(contributions))
        found = []
        for position in top[np.argsort(-contributions[top])]:
            if contributions[position] <= 0:
                break
            term = space.terms[int(columns[position])]
            found.append(term.split(":", 1)[1] if term.startswith(("cat:", "by:")) else term)
        return found

    def dump(self) -> bytes:
        """The model as bytes: a count, the term numbers, the weights and the intercept
        (no pickle, and read back without a copy)."""
        count = np.array([len(self.columns)], dtype="<i4").tobytes()
        return b"".join(
            (
                count,
                self.columns.astype("<i4").tobytes(),
                self.weights.astype("<f4").tobytes(),
                np.array([self.intercept], dtype="<f8").tobytes(),
            )
        )

    @classmethod
    def load(cls, space_version: int, data: bytes) -> ReaderModel:
        count = int(np.frombuffer(data, dtype="<i4", count=1)[0])
        columns = np.frombuffer(data, dtype="<i4", count=count, offset=4)
        weights = np.frombuffer(data, dtype="<f4", count=count, offset=4 + 4 * count)
        intercept = float(np.frombuffer(data, dtype="<f8", count=1, offset=4 + 8 * count)[0])
        return cls(space_version, columns, weights, intercept)


@dataclass(frozen=True)
class Profile:
    """What a reader has voted on, as one unit vector (the mean of those papers', its
    largest terms only): what exploration keeps away from."""

    columns: np.ndarray  # int32
    weights: np.ndarray  # float32, unit length

    @classmethod
    def of(cls, vectors: np.ndarray) -> Profile | None:
        """From the voted papers' rows (``FeatureSpace.vectors``); None without any."""
        if not len(vectors):
            return None
        mean = np.asarray(vectors.mean(axis=0), dtype=np.float32).ravel()
        keep = np.argsort(-mean)[:PROFILE_TERMS]
        keep = keep[mean[keep] > 0]
        norm = float(np.linalg.norm(mean[keep]))
        if not norm:
            return None
        return cls(keep.astype(np.int32), (mean[keep] / norm).astype(np.float32))

    def similarity(self, papers: PaperVectors, rows: np.ndarray) -> np.ndarray:
        """The cosine between this profile and each of the papers in ``rows``."""
        result: np.ndarray = self.as_model().scores(papers)[rows]
        return result

    def as_model(self) -> ReaderModel:
        """The profile as a linear model without intercept: scored and stored as one."""
        return ReaderModel(0, self.columns, self.weights, 0.0)


#: The first bytes of a stored bundle of models (older rows hold one bare model).
_BUNDLE = b"DGM2"


@dataclass(frozen=True)
class ReaderModels:
    """All a reader's feedback taught: one model over all their votes, one per topic
    (keyed by its query) that has votes of its own, the profile of what they voted on,
    and the papers they have already (liked or "more"), which are never recommended."""

    overall: ReaderModel
    interests: dict[str, ReaderModel] = field(default_factory=dict)
    voted: Profile | None = None
    owned: frozenset[str] = frozenset()

    def dump(self) -> bytes:
        """As bytes: a tag, then length-prefixed parts (no pickle)."""
        parts = [b"", self.overall.dump()]
        if self.voted is not None:
            parts += [b"voted", self.voted.as_model().dump()]
        if self.owned:
            parts += [b"owned", "\n".join(sorted(self.owned)).encode()]
        for query, model in self.interests.items():
            parts += [b"topic:" + query.encode(), model.dump()]
        return _BUNDLE + b"".join(len(p).to_bytes(4, "little") + p for p in parts)

    @classmethod
    def load(cls, space_version: int, data: bytes) -> ReaderModels:
        """From ``dump``, or from one bare ``ReaderModel`` stored before bundles."""
        if not data.startswith(_BUNDLE):
            return cls(ReaderModel.load(space_version, data))
        parts, at = [], len(_BUNDLE)
        while at < len(data):
            size = int.from_bytes(data[at : at + 4], "little")
            parts.append(data[at + 4 : at + 4 + size])
            at += 4 + size
        overall, voted, interests, owned = None, None, {}, frozenset[str]()
        for name, value in zip(parts[::2], parts[1::2], strict=True):
            if not name:
                overall = ReaderModel.load(space_version, value)
            elif name == b"voted":
                stored = ReaderModel.load(space_version, value)
                voted = Profile(stored.columns, stored.weights)
            elif name == b"owned":
                owned = frozenset(value.decode().split("\n"))
            elif name.startswith(b"topic:"):
                interests[name[6:].decode()] = ReaderModel.load(space_version, value)
        assert overall is not None
        return cls(overall, interests, voted, owned)


#: How much a "less like this" weighs against a "more like this".
NEGATIVE_WEIGHT = 3.0
#: How much each sampled paper (a weak negative) weighs.
BACKGROUND_WEIGHT = 0.1


def _balanced(
    labels: np.ndarray, positive_weights: np.ndarray, negatives: int, sampled: int
) -> np.ndarray:
    """Each row's weight, both sides weighing the same in all (as class_weight="balanced"),
    so that a few votes are not drowned by the sampled papers."""
    weights = np.concatenate(
        [
            positive_weights,
            np.full(negatives, NEGATIVE_WEIGHT),
            np.full(sampled, BACKGROUND_WEIGHT),
        ]
    )
    positive = labels == 1
    weights[positive] *= weights[~positive].sum() / weights[positive].sum()
    return weights


def fit_reader(
    space: FeatureSpace,
    positives: np.ndarray,
    negatives: np.ndarray,
    background: Any,
    *,
    positive_weights: np.ndarray | None = None,
    keep: int = KEEP_COEFFICIENTS,
) -> ReaderModel | None:
    """Fit one reader's model; None without a positive (nothing to learn from).

    ``background`` (the sampled papers' vectors) may be a scipy sparse
    matrix, made once for every reader of a refit; ``keep`` is how many
    coefficients the model keeps.
    """
    if not len(positives):
        return None
    from scipy import sparse
    from sklearn.linear_model import LogisticRegression  # here: only fitting needs it

    background = sparse.csr_matrix(background)
    # positives only: learn against an empty paper as well
    empty = sparse.csr_matrix(
        (0 if len(negatives) or background.shape[0] else 1, space.size), dtype=np.float32
    )
    rows = sparse.vstack(
        [sparse.csr_matrix(positives), sparse.csr_matrix(negatives), background, empty],
        format="csr",
    )
    labels = np.zeros(rows.shape[0])
    labels[: len(positives)] = 1.0
    given = positive_weights if positive_weights is not None else np.ones(len(positives))
    weights = _balanced(labels, given, len(negatives), background.shape[0] + empty.shape[0])
    model = LogisticRegression(C=1.0, max_iter=200, solver="liblinear")
    model.fit(rows, labels, sample_weight=weights)
    coefficients = model.coef_[0].astype(np.float32)
    kept = np.argsort(-np.abs(coefficients))[:keep]
    kept = kept[coefficients[kept] != 0]
    return ReaderModel(
        space_version=space.version,
        columns=kept.astype(np.int32),
        weights=coefficients[kept],
        intercept=float(model.intercept_[0]),
    )
