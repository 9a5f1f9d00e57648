"""Papers a reader names as liked: arXiv ids typed in, or a library exported from Zotero,
Mendeley or Google Scholar (BibTeX or RIS).

Pure: text in, papers out, each named by its identity (``arxiv:<id>``, or
``title:<normalised title>`` when the library gives no id), so that a like
can wait for a paper digest has not seen yet.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import date

from digest.identity import MAX_AUTHOR_CHARS, arxiv_id_given, author_key, fingerprint, paper_key
from digest.text import TextError, checked, first_control, printable

_SEPARATORS = re.compile(r"[\s,;]+")
_ARXIV_DOI = re.compile(r"10\.48550/arxiv\.(\S+)", re.IGNORECASE)
_YEAR = re.compile(r"\b(1[89]\d\d|2\d\d\d)\b")
#: A library bigger than this is refused (a Zotero export of 10,000 items is ~10 MB).
MAX_LIBRARY_BYTES = 20_000_000
MAX_LIKES = 5_000


@dataclass(frozen=True)
class NamedPaper:
    """A paper a reader likes, as far as they named it."""

    paper: str
    title: str = ""
    year: int | None = None


def checked_paper(text: str) -> str:
    """A paper as a reader's form names it (``arxiv:<id>`` or ``title:<title>``), or
    ``ValueError``: a key that holds a control character or names no paper."""
    try:
        paper = checked("paper", text, limit=600)
    except TextError as e:
        raise ValueError(e.message) from e
    try:
        return str(paper_key(paper))
    except ValueError:
        raise ValueError(f"paper: {printable(paper, 40)!r} names no paper") from None


def checked_author(text: str) -> str:
    """An author's name as a reader types it to follow them (one printable line), or
    ``ValueError`` saying what is wrong."""
    try:
        name = checked("author", text, limit=MAX_AUTHOR_CHARS)
    except TextError as e:
        raise ValueError(e.message) from e
    if not author_key(name):
        raise ValueError("author: type a name as the papers write it")
    return printable(name, MAX_AUTHOR_CHARS)


def arxiv_id_in(text: str) -> str | None:
    """The arXiv id in an id, URL or arXiv DOI (10.48550/arXiv.…), if any."""
    doi = _ARXIV_DOI.search(text)
    if doi:
        text = "arXiv:" + doi[1]
    return arxiv_id_given(text)


def typed_likes(text: str) -> tuple[list[str], list[str]]:
    """The papers in ids a reader typed (separated by spaces, commas or lines), and a
    line for each word that is no arXiv id."""
    papers: list[str] = []
    problems: list[str] = []
    for word in _SEPARATORS.split(text.strip())[:MAX_LIKES] if text.strip() else []:
        found = arxiv_id_in(word)
        if found is None:
            problems.append(f"{word[:60]!r} is not an arXiv id (such as 2401.01234)")
        elif (paper := fingerprint("", found)) not in papers:
            papers.append(paper)
    return papers, problems


def library(data: bytes) -> tuple[list[NamedPaper], list[str]]:
    """The papers of a BibTeX or RIS export, and a line for each entry that was skipped.

    The arXiv id comes from the eprint, URL, DOI or note fields; without one
    a paper is named by its title.
    """
    if len(data) > MAX_LIBRARY_BYTES:
        raise ValueError(f"the library is over {MAX_LIBRARY_BYTES // 1_000_000} MB")
    text = data.decode("utf-8-sig", errors="replace")
    records, problems = (_ris(text), []) if re.search(r"(?m)^TY  - ", text) else _bibtex(text)
    papers: list[NamedPaper] = []
    seen: set[str] = set()
    for number, (title, fields, year) in enumerate(records[:MAX_LIKES], start=1):
        found = next((i for f in fields if f and (i := arxiv_id_in(f))), None)
        if not found and not title.strip():
            problems.append(f"entry {number}: no title and no arXiv id; skipped")
            continue
        if first_control(title, whitespace=True) is not None:
            problems.append(f"entry {number}: the title holds a control character; skipped")
            continue
        paper = fingerprint(title, found)
        if paper not in seen:
            seen.add(paper)
            papers.append(NamedPaper(paper, " ".join(title.split()), year))
    if not records:
        problems.append("no BibTeX or RIS entries found")
    return papers, problems


def recency_weight(year: int | None, today: date) -> float:
    """How much a liked paper counts: 1 this year, half every three years older, at least
    0.2 (a library without dates counts every paper once)."""
    if year is None:
        return 1.0
    return float(max(0.2, 0.5 ** (max(0, today.year - year) / 3)))


Record = tuple[str, list[str], int | None]


def _bibtex(text: str) -> tuple[list[Record], list[str]]:
    """The entries, and a line for each one that could not be read at all."""
    import bibtexparser

    logging.getLogger("bibtexparser").setLevel(logging.CRITICAL)  # we report what was skipped
    records: list[Record] = []
    parsed = bibtexparser.parse_string(text)  # type: ignore[attr-defined]
    problems = [
        f"the entry at line {(block.start_line or 0) + 1} is not BibTeX digest can read; skipped"
        for block in parsed.failed_blocks
    ]
    for entry in parsed.entries:
        fields = {k.lower(): str(f.value) for k, f in entry.fields_dict.items()}
        title = fields.get("title", "").replace("{", "").replace("}", "")
        wanted = [fields.get(k, "") for k in ("eprint", "arxivid", "url", "doi", "note", "journal")]
        records.append((title, wanted, _year(fields.get("year", "") or fields.get("date", ""))))
    return records, problems


def _ris(text: str) -> list[Record]:
    import rispy

    records: list[Record] = []
    for entry in rispy.loads(text, skip_unknown_tags=True):
        title = str(entry.get("title") or entry.get("primary_title") or "")
        urls = [str(u) for u in entry.get("urls") or []]
        wanted = [*urls, str(entry.get("doi") or ""), str(entry.get("notes") or "")]
        year = str(entry.get("year") or entry.get("publication_year") or entry.get("date") or "")
        records.append((title, wanted, _year(year)))
    return records


def _year(text: str) -> int | None:
    found = _YEAR.search(text)
    return int(found[1]) if found else None
