"""Exploration: the few papers of an email that teach a reader's model the most.

Pure numbers, no database and no clock.  A paper teaches the most when the
model is least sure of it (its probability near one half: uncertainty
sampling) and when it is unlike what the reader has voted on (diversity
sampling); the picks are also kept unlike each other.  A model that is sure
of every paper gets no exploration cards at all.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence

import numpy as np

from digest.select.learned import PaperVectors, Profile

#: A paper is a candidate when the model's probability is within this of one half.
UNSURE_WITHIN = 0.3
#: How much being unlike the reader's votes counts against the model's doubt.
NOVELTY_WEIGHT = 0.5
#: How much a candidate like an earlier pick is held back (maximal marginal relevance).
REDUNDANCY_WEIGHT = 0.7


#: The largest score (a logit) of a candidate: its probability within UNSURE_WITHIN of a half.
_UNSURE_SCORE = 2 * math.atanh(2 * UNSURE_WITHIN)


def uncertainty(scores: np.ndarray) -> np.ndarray:
    """How unsure the model is of each paper, 0 (sure either way) to 1 (a coin toss):
    one less the distance of its probability from a half, doubled."""
    result: np.ndarray = 1 - np.tanh(np.abs(scores.astype(np.float64)) / 2)
    return result


def exploration_picks(
    scores: np.ndarray | None,
    papers: PaperVectors,
    voted: Profile | None,
    *,
    count: int,
    excluded: Collection[int] = (),
) -> list[int]:
    """The rows of the papers to ask the reader about, most informative first.

    ``scores`` are the model's (None before it has one: every paper is then
    as uncertain); ``voted`` is the profile of what the reader has voted on;
    ``excluded`` are rows already in the email.  Fewer than ``count`` when
    the model is sure of most papers.
    """
    total = papers.rows.shape[1]
    if count <= 0 or total == 0:
        return []
    candidate = np.ones(total, dtype=bool) if scores is None else np.abs(scores) <= _UNSURE_SCORE
    candidate[list(excluded)] = False
    rows = np.flatnonzero(candidate)
    if not len(rows):
        return []
    doubt = np.ones(len(rows)) if scores is None else uncertainty(scores[rows])
    novelty = 1 - voted.similarity(papers, rows) if voted is not None else np.ones(len(rows))
    priority = doubt * (1 - NOVELTY_WEIGHT + NOVELTY_WEIGHT * novelty)
    return _diverse(priority, papers, rows, count)


def _diverse(priority: np.ndarray, papers: PaperVectors, rows: np.ndarray, count: int) -> list[int]:
    """Greedy picks by priority, each held back by its likeness to the picks before it."""
    picked: list[int] = []
    value = priority.astype(np.float64)
    for _ in range(min(count, len(rows))):
        best = int(np.argmax(value))
        picked.append(int(rows[best]))
        if len(picked) < count:  # hold back what is like this pick
            likeness = papers.likeness[rows[best], rows]
            value = np.minimum(value, priority - REDUNDANCY_WEIGHT * likeness)
        value[best] = -np.inf
    return picked


def interleaved(orders: Sequence[Sequence[int]]) -> list[int]:
    """Several rankings as one, taking each one's best in turn (no paper twice): how
    "Recommended for you" draws from each of a reader's interests."""
    merged: list[int] = []
    seen: set[int] = set()
    positions = [0] * len(orders)
    while any(p < len(o) for p, o in zip(positions, orders, strict=True)):
        for number, order in enumerate(orders):
            while positions[number] < len(order) and order[positions[number]] in seen:
                positions[number] += 1
            if positions[number] < len(order):
                seen.add(order[positions[number]])
                merged.append(order[positions[number]])
                positions[number] += 1
    return merged


def starter_picks(
    papers: PaperVectors, groups: Sequence[Sequence[int]], scores: np.ndarray | None, count: int
) -> list[int]:
    """Papers for a reader to rate first: spread over ``groups`` (each topic's matches;
    every paper is a last group of its own), in each the one the model is least sure of
    (every one, before a model) and least like the picks before it."""
    total = papers.rows.shape[1]
    doubt = np.ones(total) if scores is None else uncertainty(scores)
    likeness = np.zeros(total)
    picked: list[int] = []
    everything = list(range(total))
    while len(picked) < min(count, total):
        for group in (*groups, everything):
            rows = np.array([r for r in group if r not in picked], dtype=np.int64)
            if not len(rows) or len(picked) >= count:
                continue
            best = int(rows[np.argmax(doubt[rows] - REDUNDANCY_WEIGHT * likeness[rows])])
            picked.append(best)
            likeness = np.maximum(likeness, papers.likeness[best])
    return picked
