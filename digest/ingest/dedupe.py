"""Dedupe: which entries of a batch are new papers, and which fill in stored ones.

Pure: takes the batch and what the seen-list already knows of its keys, and
returns the decision; the store only reads the keys and writes the result.
An entry is already seen when its arXiv id is known, or when its normalised
title is known and at most one side has an id.  A seen entry that brings an
id the known one lacked fills it in (its id, links, authors, upvotes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from digest.models import Entry

#: A stored paper, as the seen-list knows it: its row id and its arXiv id, if any.
Known = tuple[int, str | None]


@dataclass(frozen=True)
class Dedupe:
    """What to do with a batch: the new entries, the stored rows to fill in, how many seen."""

    fresh: tuple[Entry, ...]
    #: Stored row id -> the entries whose id and links it should take, in batch order.
    enrich: Mapping[int, tuple[Entry, ...]]
    seen: int
    #: The stored rows this batch saw again (each source that brings a paper is kept).
    seen_rows: frozenset[int] = frozenset()


def dedupe(
    batch: Sequence[Entry], by_id: Mapping[str, int], by_title: Mapping[str, Known]
) -> Dedupe:
    """Decide, for each entry of the batch, whether it is new, seen, or fills one in.

    ``by_id`` maps the batch's stored arXiv ids to row ids; ``by_title``
    maps its stored title keys to the first such paper.
    """
    ids: dict[str, int | None] = dict(by_id)  # None: a new entry of this batch
    titles: dict[str, tuple[int | None, str | None]] = dict(by_title)
    fresh: list[Entry] = []
    fresh_by_title: dict[str, int] = {}
    enrich: dict[int, list[Entry]] = {}
    seen = 0
    seen_rows: set[int | None] = set()
    for entry in batch:
        key = entry.title_key
        if entry.arxiv_id and entry.arxiv_id in ids:
            seen += 1
            seen_rows.add(ids[entry.arxiv_id])
            continue
        known = titles.get(key)
        if known is not None and (entry.arxiv_id is None or known[1] is None):
            seen += 1
            seen_rows.add(known[0])
            if entry.arxiv_id:
                row_id = known[0]
                if row_id is None:
                    index = fresh_by_title[key]
                    fresh[index] = fresh[index].filled_from(entry)
                else:
                    enrich.setdefault(row_id, []).append(entry)
                ids[entry.arxiv_id] = row_id
                titles[key] = (row_id, entry.arxiv_id)
            continue
        fresh.append(entry)
        if entry.arxiv_id:
            ids[entry.arxiv_id] = None
        if key not in titles:
            titles[key] = (None, entry.arxiv_id)
            fresh_by_title[key] = len(fresh) - 1
    stored = frozenset(row for row in seen_rows if row is not None)
    return Dedupe(tuple(fresh), {k: tuple(v) for k, v in enrich.items()}, seen, stored)
