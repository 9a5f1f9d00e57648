"""Evaluation: does the learned ranking beat bm25 alone?  Run with `make eval`.

Replays five days of real arXiv listings (read in place from
``../shared/eval/arxiv-days``, or DIGEST_EVAL_DATA) for simulated readers
whose interests the model never sees: each reader has a keyword topic (what
they typed) and a hidden interest (what they want).  Each day the reader is
shown the top of digest's ranking and votes on it, with some noise; the
model is refitted on the votes of the days before, and ranks the next day.
See bench/README.md.  Exits 2 when the data is absent.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np

from digest.ingest import read_source
from digest.models import Entry, StoredEntry, Topic
from digest.select.index import EditionIndex
from digest.select.learned import PaperVectors, fit_reader, fit_space

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "eval" / "arxiv-days"
SHOWN = 10  # papers a reader looks at (and votes on) each day
NOISE = 0.1  # chance that a vote is the wrong way round


@dataclass(frozen=True)
class Reader:
    """A simulated reader: the topic they typed, and what they really want."""

    name: str
    topic: str
    wants: Callable[[Entry, dict[str, object]], bool]


def _has(pattern: str) -> Callable[[Entry], bool]:
    found = re.compile(pattern, re.IGNORECASE)
    return lambda e: bool(found.search(f"{e.title} {e.abstract}"))


_3D = _has(r"\b3d\b|point cloud|gaussian splatting|nerf\b|mesh")
_AGENT = _has(r"\bagent")
_DIFFUSION = _has(r"diffusion")
_REASONING = _has(r"reasoning|chain-of-thought")

READERS = (
    Reader(
        "cs.CL that cross-lists cs.LG",
        "language model",
        lambda e, p: p["primary"] == "cs.CL" and "cs.LG" in p["categories"],
    ),
    Reader(
        "cs.CV but not 3D", "image OR vision", lambda e, p: p["primary"] == "cs.CV" and not _3D(e)
    ),
    Reader("3D vision", "3d OR reconstruction", lambda e, p: p["primary"] == "cs.CV" and _3D(e)),
    Reader(
        "multi-agent AI",
        "agents",
        lambda e, p: "cs.MA" in p["categories"] or (p["primary"] == "cs.AI" and _AGENT(e)),
    ),
    Reader("information theory", "channel OR coding", lambda e, p: p["primary"] == "cs.IT"),
    Reader(
        "diffusion in vision and graphics",
        "diffusion",
        lambda e, p: p["primary"] in ("cs.CV", "cs.GR") and _DIFFUSION(e),
    ),
    Reader(
        "LLM reasoning",
        "reasoning",
        lambda e, p: p["primary"] in ("cs.CL", "cs.AI") and _REASONING(e),
    ),
    Reader("game theory", "game OR auction OR equilibrium", lambda e, p: p["primary"] == "cs.GT"),
)


def load(folder: Path) -> list[tuple[date, list[StoredEntry], dict[str, dict[str, object]]]]:
    """The days, each with its papers (parsed by digest's own RSS parser) and labels."""
    labels = {}
    for line in (folder / "papers.jsonl").read_text().splitlines():
        paper = json.loads(line)
        labels[paper["id"]] = paper
    days = []
    next_id = 1
    for path in sorted(folder.glob("day-*.xml")):
        day = date.fromisoformat(path.stem.removeprefix("day-"))
        parsed = read_source(str(path), today=day)
        stored = []
        for entry in parsed.entries:
            if entry.arxiv_id in labels:
                stored.append(StoredEntry(next_id, entry, "eval", datetime(2026, 4, 1, tzinfo=UTC)))
                next_id += 1
        days.append((day, stored, labels))
    return days


def ndcg(relevant: list[bool], k: int) -> float:
    gains = sum(1 / math.log2(i + 2) for i, r in enumerate(relevant[:k]) if r)
    ideal = sum(1 / math.log2(i + 2) for i in range(min(k, sum(relevant))))
    return gains / ideal if ideal else 0.0


def mrr(relevant: list[bool]) -> float:
    return next((1 / (i + 1) for i, r in enumerate(relevant) if r), 0.0)


def bm25_order(
    index: EditionIndex, papers: list[StoredEntry], topic: str, rng: random.Random
) -> list[StoredEntry]:
    """What digest shows without a model: the topic's matches by bm25, then the rest."""
    matched = [
        m.entry
        for s in index.select([Topic(topic)], max_entries=10_000).sections
        for m in s.matches
    ]
    ids = {s.id for s in matched}
    rest = [p for p in papers if p.id not in ids]
    rng.shuffle(rest)
    return matched + rest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--data", type=Path, default=Path(os.environ.get("DIGEST_EVAL_DATA", DEFAULT_DATA))
    )
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if not (args.data / "papers.jsonl").is_file():
        print(
            f"eval: no evaluation data at {args.data} (set DIGEST_EVAL_DATA to the "
            "arxiv-days folder)",
            file=sys.stderr,
        )
        raise SystemExit(2)
    days = load(args.data)
    rng = random.Random(args.seed)
    results: dict[str, list[tuple[float, float, float]]] = {"learned": [], "bm25": [], "random": []}
    for reader in READERS:
        votes: list[tuple[StoredEntry, bool]] = []
        seen: list[StoredEntry] = []
        for number, (_, papers, labels) in enumerate(days):
            truth = {p.id: reader.wants(p.entry, labels[p.entry.arxiv_id or ""]) for p in papers}
            with EditionIndex(papers) as index:
                by_bm25 = bm25_order(index, papers, reader.topic, rng)
            shuffled = list(papers)
            rng.shuffle(shuffled)
            learned = by_bm25
            if number and any(v for _, v in votes):
                # The space is fitted over the papers seen before today, as stored.
                space = fit_space([s.entry for s in seen], version=1)
                background = space.vectors([s.entry for s in rng.sample(seen, min(200, len(seen)))])
                liked = [s.entry for s, v in votes if v]
                disliked = [s.entry for s, v in votes if not v]
                model = fit_reader(space, space.vectors(liked), space.vectors(disliked), background)
                assert model is not None
                scores = model.scores(PaperVectors.of(space.vectors([p.entry for p in papers])))
                learned = [papers[i] for i in np.argsort(-scores, kind="stable")]
            if number:  # day 1 has no votes yet: the model is judged from day 2 on
                for name, order in (("learned", learned), ("bm25", by_bm25), ("random", shuffled)):
                    relevant = [truth[p.id] for p in order]
                    results[name].append((ndcg(relevant, 10), sum(relevant[:5]) / 5, mrr(relevant)))
            # The reader votes on what digest showed them today (the learned order).
            for paper in learned[:SHOWN]:
                vote = truth[paper.id] if rng.random() > NOISE else not truth[paper.id]
                votes.append((paper, vote))
            seen += papers
    print(
        f"{len(READERS)} simulated readers, {len(days)} days "
        f"({sum(len(d[1]) for d in days)} papers); days 2-{len(days)} ranked"
    )
    print(f"{'ranking':<10} {'NDCG@10':>8} {'P@5':>6} {'MRR':>6}")
    for name, rows in results.items():
        means = np.mean(np.array(rows), axis=0)
        print(f"{name:<10} {means[0]:>8.3f} {means[1]:>6.3f} {means[2]:>6.3f}")
    learned_ndcg = np.mean([r[0] for r in results["learned"]])
    bm25_ndcg = np.mean([r[0] for r in results["bm25"]])
    print(
        f"eval ndcg10_learned={learned_ndcg:.3f} ndcg10_bm25={bm25_ndcg:.3f} "
        f"beats_bm25={'yes' if learned_ndcg > bm25_ndcg else 'no'}"
    )


if __name__ == "__main__":
    main()
