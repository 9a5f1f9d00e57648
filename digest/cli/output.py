"""The shapes every command prints in: a progress display, JSON, tables, one-line problems.

Exit codes are here too: 0 ok, 1 some items failed (or a reader was not found),
2 the run could not go on.
"""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import click

from digest.app.views import as_json
from digest.subscribers import neutralise_cell
from digest.text import printable

EXIT_OK, EXIT_PARTIAL, EXIT_ERROR = 0, 1, 2


class Progress:
    """A progress bar on stderr, shown only on a terminal (never under cron or --json)."""

    def __init__(self, label: str, enabled: bool) -> None:
        self.label = label
        self.enabled = enabled and sys.stderr.isatty()
        self.bar: Any = None

    def start(self, total: int) -> None:
        if self.enabled and total > 1:
            self.bar = click.progressbar(
                length=total, label=self.label, file=sys.stderr, show_pos=True, show_eta=True
            )
            self.bar.__enter__()

    def advance(self, *_done: object) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def finish(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


@contextmanager
def progress(label: str, *, enabled: bool = True, total: int = 0) -> Iterator[Progress]:
    """A progress display for the ``with`` block; ``total`` starts it at once."""
    shown = Progress(label, enabled)
    shown.start(total)
    try:
        yield shown
    finally:
        shown.finish()


def echo_json(payload: Any) -> None:
    click.echo(as_json(payload))


def counted(count: int, word: str) -> str:
    """``1 row``, ``2 rows``: a count with its noun."""
    return f"{count:,} {word}{'' if count == 1 else 's'}"


#: How a state looks on a terminal (click leaves the colour out anywhere else).
STATE_COLOURS = {
    "active": "green",
    "ok": "green",
    "sent": "green",
    "pending": "cyan",
    "queued": "cyan",
    "unchanged": "bright_black",
    "skipped": "bright_black",
    "paused": "yellow",
    "warn": "yellow",
    "unsubscribed": "red",
    "bounced": "red",
    "complained": "red",
    "failed": "red",
}


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    as_csv: bool = False,
    coloured: int | None = None,
) -> None:
    """Rows under their headers: aligned for people (column ``coloured`` in its state's
    colour), or CSV for a spreadsheet."""
    cells = [["" if v is None else _cell(v) for v in row] for row in rows]
    if as_csv:
        text = io.StringIO()
        out = csv.writer(text, lineterminator="\n")
        out.writerow(headers)
        out.writerows([neutralise_cell(v) for v in row] for row in cells)  # feed text in it
        click.echo(text.getvalue(), nl=False)
        return
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    click.echo(
        click.style(
            "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip(), bold=True
        )
    )
    for row in cells:
        shown = [v.ljust(w) for v, w in zip(row, widths, strict=True)]
        if coloured is not None:
            shown[coloured] = click.style(shown[coloured], fg=STATE_COLOURS.get(row[coloured]))
        click.echo("  ".join(shown).rstrip())


def _cell(value: Any) -> str:
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M}"
    return printable(value, 10_000)  # rows stored before the gates may hold controls


def problem(text: str) -> None:
    """One line on stderr, as every problem is told: nothing in it steers a terminal."""
    click.echo(f"digest: {printable(text, 10_000)}", err=True)
