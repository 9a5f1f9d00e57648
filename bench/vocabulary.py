"""Deterministic topic queries mixed from a fixed vocabulary, shared by the benchmarks."""

from __future__ import annotations

import random

WORDS = [
    "optimization",
    "preference",
    "alignment",
    "fairness",
    "bias",
    "rlhf",
    "dpo",
    "llm",
    "distillation",
    "retrieval",
    "diffusion",
    "reinforcement",
    "ranking",
    "bayesian",
    "generalization",
    "robust",
    "federated",
    "quantization",
    "reward",
    "policy",
    "vision",
    "language",
    "graph",
    "agents",
    "benchmark",
    "reasoning",
    "neural",
    "sparse",
]
PHRASES = ['"preference optimization"', '"language models"', '"reinforcement learning"']
FIELDS = ["title:", "abstract:", ""]


def topic_queries(count: int, seed: int = 7, *, without_topics: float = 0.1) -> list[str]:
    """Return ``count`` topic cells (";"-separated), a share ``without_topics`` of them empty."""
    rng = random.Random(seed)
    cells = []
    for _ in range(count):
        if rng.random() < without_topics:
            cells.append("")
            continue
        topics = []
        for _ in range(rng.randint(1, 3)):
            shape = rng.randrange(5)
            a, b, c = rng.sample(WORDS, 3)
            field = rng.choice(FIELDS)
            if shape == 0:
                topics.append(f"{field}{a} {b}")
            elif shape == 1:
                topics.append(f"{a} OR {b} -{c}")
            elif shape == 2:
                topics.append(f"{rng.choice(PHRASES)} {field}{a}")
            elif shape == 3:
                topics.append(f"Label {a}: ({a} OR {b}) NOT {c}")
            else:
                topics.append(f"{field}{a[:5]}* {b}")
        cells.append("; ".join(topics))
    return cells
