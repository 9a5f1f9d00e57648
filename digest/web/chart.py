"""A small stacked bar chart of deliveries by state, drawn as SVG geometry on the server
(no script, no CDN).  Pure: editions' counts in, rectangles out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

#: Bottom to top in each bar.
STACKED = ("sent", "failed", "skipped", "queued")

WIDTH, HEIGHT, AXIS = 600.0, 160.0, 18.0
MIN_SLOTS = 14


@dataclass(frozen=True)
class Bar:
    """One state's part of one edition's bar, in the chart's own units."""

    x: float
    y: float
    width: float
    height: float
    state: str
    title: str


@dataclass(frozen=True)
class Chart:
    """The bars, the date labels under them, and the largest total (the scale)."""

    bars: tuple[Bar, ...]
    labels: tuple[tuple[float, str], ...]
    largest: int
    width: float = WIDTH
    height: float = HEIGHT


def deliveries_chart(editions: Sequence[tuple[date, Mapping[str, int]]]) -> Chart:
    """Deliveries by state for each edition, oldest on the left."""
    shown = sorted(editions)
    largest = max((sum(c.get(s, 0) for s in STACKED) for _, c in shown), default=0)
    if not shown:
        return Chart((), (), 0)
    slot = WIDTH / max(len(shown), MIN_SLOTS)  # one edition is a bar, not a wall
    width = max(slot * 0.7, 1.0)
    scale = (HEIGHT - AXIS) / largest if largest else 0.0
    bars: list[Bar] = []
    labels: list[tuple[float, str]] = []
    every = max(1, round(len(shown) / 7))  # room for about seven dates
    for number, (day, counts) in enumerate(shown):
        x = number * slot + (slot - width) / 2
        top = HEIGHT - AXIS
        for state in STACKED:
            count = counts.get(state, 0)
            if not count:
                continue
            height = count * scale
            top -= height
            title = f"{day}: {count:,} {state}"
            bars.append(
                Bar(round(x, 2), round(top, 2), round(width, 2), round(height, 2), state, title)
            )
        if number % every == 0:
            labels.append((round(x + width / 2, 2), f"{day:%m-%d}"))
    return Chart(tuple(bars), tuple(labels), largest)
