"""Evaluation: what the learned ranking gains from exploration, interests and the stored
corpus, over several seeds.  Run with `make eval`.

Replays five days of real arXiv listings (read in place from
``../shared/eval/arxiv-days``, or DIGEST_EVAL_DATA) for simulated readers
with one or two interests each.  An interest is a keyword topic (what the
reader typed) and a hidden want that cuts across categories (what they
really like, which the model never sees).  Each day the reader votes on the
ten cards their email showed, with some noise; the models are refitted on
the votes of the days before and rank the next day, scored against the
hidden wants on days 2-5.  See bench/README.md.  Exits 2 when the data is
absent.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np

from digest.config import LearningSettings
from digest.ingest import read_source
from digest.models import Entry, StoredEntry, Topic
from digest.select import index as index_module
from digest.select.affinity import EditionVectors, affinity_of
from digest.select.index import Affinity, EditionIndex, Match, Selection, blended
from digest.select.learned import (
    KEEP_COEFFICIENTS,
    KEEP_TOPIC_COEFFICIENTS,
    FeatureSpace,
    PaperVectors,
    Profile,
    ReaderModel,
    ReaderModels,
    fit_reader,
    fit_space,
)

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "eval" / "arxiv-days"
SHOWN = 10  # cards a reader looks at (and votes on) each day
NOISE = 0.1  # chance that a vote is the wrong way round
BACKGROUND = 200  # papers sampled as weak negatives, as digest.learning does


def _has(*patterns: str) -> Callable[[Entry], bool]:
    """True when the paper's title and abstract match every pattern."""
    found = [re.compile(p, re.IGNORECASE) for p in patterns]
    return lambda e: all(f.search(f"{e.title} {e.abstract}") for f in found)


@dataclass(frozen=True)
class Interest:
    """What a reader typed, and what they really want (never by category)."""

    name: str
    topic: str
    wants: Callable[[Entry], bool]


INTERESTS = {
    "medical": Interest(
        "medical imaging",
        "medical",
        _has(r"medical|clinical|patient", r"imag|segment|scan|\bmri\b|\bct\b|x-ray|radiolog"),
    ),
    "video": Interest("video generation", "video", _has(r"\bvideo", r"generat|diffusion|synthes")),
    "rl": Interest(
        "reinforcement learning for LLMs",
        "reinforcement learning",
        _has(
            r"reinforcement learning|\brl\b|reward|policy optimization|grpo",
            r"\bllms?\b|language model",
        ),
    ),
    "rag": Interest(
        "retrieval-augmented generation",
        "retrieval",
        _has(r"retrieval-augmented|\brag\b|retriev", r"\bllms?\b|language model|generation"),
    ),
    "3d": Interest(
        "3D scenes", "3d", _has(r"\b3d\b|point cloud|gaussian splatting|\bnerf\b|\bmesh")
    ),
    "efficient": Interest(
        "efficient models",
        "efficient",
        _has(r"quantiz|pruning|distillation|compression|efficient inference|sparsit"),
    ),
    "multilingual": Interest(
        "multilingual NLP",
        "multilingual",
        _has(r"multilingual|translation|low-resource|cross-lingual"),
    ),
    "robots": Interest("robots", "robot", _has(r"robot|embodied|manipulation")),
    "speech": Interest("speech and audio", "speech", _has(r"speech|audio|acoustic")),
    "safety": Interest(
        "LLM attacks and safety",
        "safety",
        _has(r"jailbreak|adversarial|attack|harmful|red.team|safety", r"\bllms?\b|language model"),
    ),
    "diffusion": Interest(
        "diffusion models", "diffusion", _has(r"diffusion|score-based|flow matching")
    ),
    "agents": Interest(
        "LLM agents with tools", "agents", _has(r"\bagent", r"\btool|\bllms?\b|language model")
    ),
}
#: Twelve readers: six with one interest, six with two.
READERS: tuple[tuple[str, ...], ...] = (
    ("medical",),
    ("video",),
    ("rl",),
    ("rag",),
    ("3d",),
    ("efficient",),
    ("multilingual", "speech"),
    ("robots", "3d"),
    ("safety", "agents"),
    ("diffusion", "medical"),
    ("rag", "efficient"),
    ("video", "robots"),
)


@dataclass(frozen=True)
class Variant:
    """One way of ranking: what it learns from and how."""

    name: str
    learns: bool = True
    #: Fit the space over the papers stored at run time (today's too), not just before.
    stored_corpus: bool = False
    #: One model per interest, "Recommended" drawing from each in turn.
    interests: bool = False
    #: Exploration cards among the ten shown.
    explore: int = 0
    #: How much the model orders a topic's papers, as ``[learning] blend``.
    blend: float = 0.7
    #: Reciprocal rank fusion of bm25's order and the model's (False: the weighted mean
    #: of the two ranks, as digest did before).
    fusion: bool = True


VARIANTS = (
    Variant("bm25 only (no learning)", learns=False),
    Variant("today's learned ranking", blend=0.5, fusion=False),
    Variant("+ fused order"),
    Variant("+ interests", interests=True),
    Variant("+ exploration, 1 card", interests=True, explore=1),
    Variant("+ exploration, 2 cards", interests=True, explore=2),
    Variant("+ 1 card, space refitted daily", interests=True, explore=1, stored_corpus=True),
)
BASELINE = "today's learned ranking"
CANDIDATE = "+ exploration, 1 card"

Day = tuple[date, list[StoredEntry]]


def load(folder: Path) -> list[Day]:
    """The days, each with its papers, parsed by digest's own arXiv RSS parser."""
    known = {json.loads(line)["id"] for line in (folder / "papers.jsonl").read_text().splitlines()}
    days = []
    next_id = 1
    for path in sorted(folder.glob("day-*.xml")):
        day = date.fromisoformat(path.stem.removeprefix("day-"))
        stored = []
        for entry in read_source(str(path), today=day).entries:
            if entry.arxiv_id in known:
                stored.append(StoredEntry(next_id, entry, "eval", datetime(2026, 4, 1, tzinfo=UTC)))
                next_id += 1
        days.append((day, stored))
    return days


def ndcg(relevant: Sequence[bool], k: int) -> float:
    gains = sum(1 / math.log2(i + 2) for i, r in enumerate(relevant[:k]) if r)
    ideal = sum(1 / math.log2(i + 2) for i in range(min(k, sum(relevant))))
    return gains / ideal if ideal else 0.0


class Corpus:
    """Feature spaces and each day's topic matches, made once for every reader and seed."""

    def __init__(self, days: list[Day]) -> None:
        self.days = days
        self._spaces: dict[tuple[int, bool], tuple[FeatureSpace, PaperVectors]] = {}
        #: For each topic, each day's matches in bm25 order (entry ids).
        self.matches: dict[str, list[list[int]]] = {}
        self.indexes = [EditionIndex(papers) for _, papers in days]
        topics = {i.topic for i in INTERESTS.values()}
        for index in self.indexes:
            for topic in topics:
                found = index.select([Topic(topic)], max_entries=10_000).sections
                ids = [m.entry.id for s in found for m in s.matches]
                self.matches.setdefault(topic, []).append(ids)

    def space(self, number: int, stored_corpus: bool) -> tuple[FeatureSpace, PaperVectors]:
        """The space for day ``number`` (over the days before it, and that day too when
        ``stored_corpus``) and that day's papers in it."""
        key = (number, stored_corpus)
        if key not in self._spaces:
            upto = number + 1 if stored_corpus else max(1, number)
            corpus = [s.entry for _, papers in self.days[:upto] for s in papers]
            space = fit_space(corpus, version=1)
            today = [s.entry for s in self.days[number][1]]
            self._spaces[key] = (space, PaperVectors.of(space.vectors(today)))
        return self._spaces[key]


@dataclass
class Scores:
    """One run's figures: per reader, NDCG@10 and P@5 of the ranking and of the email."""

    ranking: dict[int, list[tuple[float, float]]]
    email: dict[int, list[tuple[float, float]]]


def _mean_rank_blend(matches: Sequence[Match], affinity: Affinity, topic: str = "") -> list[Match]:
    """How digest blended bm25's and the model's order before fusion (the baseline)."""
    if len(matches) < 2 or not affinity.blend:
        return list(matches)
    by_model = sorted(range(len(matches)), key=lambda i: -affinity.score(matches[i].entry.id))
    model_rank = {i: rank for rank, i in enumerate(by_model)}
    weight = affinity.blend
    order = sorted(
        range(len(matches)), key=lambda i: ((1 - weight) * i + weight * model_rank[i], i)
    )
    return [matches[i] for i in order]


def replay(corpus: Corpus, variant: Variant, seed: int) -> Scores:
    """Every reader through the five days with one variant and one seed."""
    index_module.blended = blended if variant.fusion else _mean_rank_blend
    scores = Scores({}, {})
    for number, reader in enumerate(READERS):
        rng = random.Random(f"{seed}-{number}")
        interests = [INTERESTS[name] for name in reader]
        ranked, emailed = _reader_days(corpus, variant, interests, rng)
        scores.ranking[number], scores.email[number] = ranked, emailed
    return scores


def _reader_days(
    corpus: Corpus, variant: Variant, interests: list[Interest], rng: random.Random
) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    votes: list[tuple[StoredEntry, bool]] = []
    ranked, emailed = [], []
    for number, (_, papers) in enumerate(corpus.days):
        truth = {p.id: any(i.wants(p.entry) for i in interests) for p in papers}
        order, email = _rank(corpus, variant, interests, number, votes, rng)
        if number:  # day 1 has no votes yet: the learning is judged from day 2 on
            for rows, out in ((order, ranked), (email, emailed)):
                relevant = [truth[papers[r].id] for r in rows]
                out.append((ndcg(relevant, 10), sum(relevant[:5]) / 5))
        for row in email[:SHOWN]:
            paper = papers[row]
            vote = truth[paper.id] if rng.random() > NOISE else not truth[paper.id]
            votes.append((paper, vote))
    return ranked, emailed


def _rank(
    corpus: Corpus,
    variant: Variant,
    interests: list[Interest],
    number: int,
    votes: list[tuple[StoredEntry, bool]],
    rng: random.Random,
) -> tuple[list[int], list[int]]:
    """The day's ranking and the email's order (rows of its papers), as digest selects
    them: the topics' sections, "Recommended for you", and the exploration cards; the
    papers the email leaves out follow in the model's order (bm25's without one)."""
    papers = corpus.days[number][1]
    row_of = {p.id: n for n, p in enumerate(papers)}
    topics = [Topic(i.topic) for i in interests]
    affinity, fallback = None, list(range(len(papers)))
    rng.shuffle(fallback)
    if variant.learns:
        space, vectors = corpus.space(number, variant.stored_corpus)
        # Sampled from the days before: today's papers are what is being ranked.
        stored = [s for _, day in corpus.days[: max(1, number)] for s in day]
        sample = rng.sample(stored, min(BACKGROUND, len(stored)))
        matched = {
            i.topic: {p for day in corpus.matches[i.topic][:number] for p in day}
            for i in interests
            if variant.interests and len(interests) > 1
        }
        models = _fit(space, votes, space.vectors([s.entry for s in sample]), matched)
        if models is not None:
            affinity = affinity_of(
                models,
                EditionVectors(space, papers, vectors),
                topics=topics,
                learning=LearningSettings(blend=variant.blend, explore_cards=variant.explore),
            )
            fallback = [int(r) for r in np.argsort(-models.overall.scores(vectors), kind="stable")]
    email = _flat(corpus.indexes[number].select(topics, max_entries=30, affinity=affinity), row_of)
    asked = {row_of[i] for i in affinity.explore[: variant.explore]} if affinity else set()
    order = [r for r in email if r not in asked]
    order += [r for r in fallback if r not in set(order) and r not in asked]
    return order, email + [r for r in order if r not in set(email)]


def _flat(selection: Selection, row_of: dict[int, int]) -> list[int]:
    return [row_of[m.entry.id] for s in selection.sections for m in s.matches]


def _fit(
    space: FeatureSpace,
    votes: list[tuple[StoredEntry, bool]],
    background: np.ndarray,
    matched: dict[str, set[int]],
) -> ReaderModels | None:
    """The reader's models from their votes before today: one over all, and one per
    topic of ``matched`` (the papers it matched) from the votes on its papers."""
    overall = _fit_one(space, votes, background)
    if overall is None:
        return None
    own = {}
    for topic, papers in matched.items():
        on_topic = [(p, v) for p, v in votes if p.id in papers]
        model = _fit_one(space, on_topic, background, keep=KEEP_TOPIC_COEFFICIENTS)
        if model is not None:
            own[topic] = model
    voted = Profile.of(space.vectors([p.entry for p, _ in votes]))
    return ReaderModels(overall, own, voted)


def _fit_one(
    space: FeatureSpace,
    votes: list[tuple[StoredEntry, bool]],
    background: np.ndarray,
    keep: int = KEEP_COEFFICIENTS,
) -> ReaderModel | None:
    if not any(v for _, v in votes):
        return None
    liked = [p.entry for p, v in votes if v]
    disliked = [p.entry for p, v in votes if not v]
    return fit_reader(space, space.vectors(liked), space.vectors(disliked), background, keep=keep)


def summarise(runs: dict[str, list[Scores]]) -> dict[str, dict[str, float]]:
    """Mean and spread over seeds of each variant's NDCG@10 and P@5."""
    table = {}
    for name, seeds in runs.items():
        per_seed = {
            key: [
                float(np.mean([r[column] for rows in getattr(s, part).values() for r in rows]))
                for s in seeds
            ]
            for key, part, column in (
                ("ndcg", "ranking", 0),
                ("p5", "ranking", 1),
                ("email_ndcg", "email", 0),
                ("email_p5", "email", 1),
            )
        }
        table[name] = {
            **{key: statistics.mean(values) for key, values in per_seed.items()},
            **{f"{key}_sd": statistics.stdev(values) for key, values in per_seed.items()},
        }
    return table


def reader_p5(seeds: list[Scores]) -> list[float]:
    """Each reader's mean P@5 of the email over days and seeds."""
    return [
        float(np.mean([r[1] for s in seeds for r in s.email[number]]))
        for number in range(len(READERS))
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--data", type=Path, default=Path(os.environ.get("DIGEST_EVAL_DATA", DEFAULT_DATA))
    )
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    if not (args.data / "papers.jsonl").is_file():
        print(
            f"eval: no evaluation data at {args.data} (set DIGEST_EVAL_DATA to the "
            "arxiv-days folder)",
            file=sys.stderr,
        )
        raise SystemExit(2)
    corpus = Corpus(load(args.data))
    runs: dict[str, list[Scores]] = {}
    for variant in VARIANTS:
        runs[variant.name] = [replay(corpus, variant, seed) for seed in range(args.seeds)]
        print(f"  {variant.name}: done", file=sys.stderr)
    table = summarise(runs)
    papers = sum(len(p) for _, p in corpus.days)
    print(
        f"{len(READERS)} simulated readers ({sum(len(r) > 1 for r in READERS)} with two "
        f"interests), {len(corpus.days)} days ({papers} papers), {args.seeds} seeds; "
        f"days 2-{len(corpus.days)} scored; mean ± sd over seeds"
    )
    print(f"{'ranking':<32} {'NDCG@10':>13} {'P@5':>13}   {'email NDCG@10':>13} {'email P@5':>13}")
    for name, row in table.items():
        print(
            f"{name:<32} {row['ndcg']:.3f} ± {row['ndcg_sd']:.3f}"
            f" {row['p5']:.3f} ± {row['p5_sd']:.3f}"
            f"   {row['email_ndcg']:.3f} ± {row['email_ndcg_sd']:.3f}"
            f" {row['email_p5']:.3f} ± {row['email_p5_sd']:.3f}"
        )
    before, after = reader_p5(runs[BASELINE]), reader_p5(runs[CANDIDATE])
    print("per reader, email P@5 (today's → with exploration):")
    for reader, (old, new) in zip(READERS, zip(before, after, strict=True), strict=True):
        print(f"  {' + '.join(reader):<24} {old:.3f} → {new:.3f} ({new - old:+.3f})")
    base, best = table[BASELINE], table[CANDIDATE]
    gain = best["ndcg"] - base["ndcg"]
    spread = max(base["ndcg_sd"], best["ndcg_sd"])
    worst = min(new - old for old, new in zip(before, after, strict=True))
    cost = best["ndcg"] - best["email_ndcg"]
    print(
        f"eval seeds={args.seeds} ndcg10_today={base['ndcg']:.3f} ndcg10_new={best['ndcg']:.3f} "
        f"gain={gain:.3f} spread={spread:.3f} gain_over_2sd={'yes' if gain > 2 * spread else 'no'} "
        f"worst_reader_p5={worst:+.3f} exploration_cost_ndcg10={cost:.3f} "
        f"ndcg10_bm25={table['bm25 only (no learning)']['ndcg']:.3f}"
    )


if __name__ == "__main__":
    main()
