"""The pieces an email is assembled from, each with its size on the wire: a card or
section (``Block``), the page around them (``Shell``), and the reader's feedback links."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from markupsafe import escape

from digest.render.encoding import WireSize, wire_size

#: What a feedback link takes on the wire beyond its slot, for the size budget.
FEEDBACK_ALLOWANCE = 2 * 100


class FeedbackLinks:
    """One email's feedback links, each made once (a card has two, and the text part too)."""

    def __init__(self, url_of: Callable[[int], str]) -> None:
        self.url_of = url_of
        self.urls: dict[int, tuple[str, str]] = {}

    def fill(self, slot: str, entry_id: int, block: str, *, html: bool = False) -> str:
        """The block with its paper's slot replaced by this reader's link."""
        urls = self.urls.get(entry_id)
        if urls is None:
            url = self.url_of(entry_id)
            urls = self.urls[entry_id] = (url, str(escape(url)))
        return block.replace(slot, urls[html])


@dataclass(frozen=True)
class Block:
    html: str
    size: WireSize  # for the size budget


def block(html: str) -> Block:
    html = html if html.endswith("\n") else html + "\n"
    size = wire_size(html)
    if "%%FEEDBACK_" in html:  # each email puts the reader's own links in
        size += wire_size("x" * FEEDBACK_ALLOWANCE)
    return Block(html, size)


@dataclass(frozen=True)
class Shell:
    """The inlined page in runs of whole lines, before and after the papers; the runs
    with slots are filled per email."""

    head: tuple[str, ...]
    tail: tuple[str, ...]
    size: WireSize  # slots left empty


def line_runs(html: str) -> tuple[str, ...]:
    """Cut HTML into runs of whole lines, apart where they have a slot."""
    runs: list[str] = []
    for line in html.splitlines(keepends=True):
        if runs and ("%%DIGEST_" in line) == ("%%DIGEST_" in runs[-1]):
            runs[-1] += line
        else:
            runs.append(line)
    return tuple(runs)
