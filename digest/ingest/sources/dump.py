"""Parse a daily-papers page dump: header lines, a date line, then title/abstract pairs.

Pure: takes text, returns entries and warnings.  Raises ``ValueError`` only
for a page that cannot be a dump at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date

from digest.models import Entry, ParsedSource

_MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ],
        start=1,
    )
    for name in names
}
_DATE_LINE = re.compile(
    r"^(?P<month>[A-Za-z]{3,9})\.?\s+(?P<day>\d{1,2})(?:st|nd|rd|th)?(?:,?\s+(?P<year>\d{4}))?$"
)
_HEADER_PHRASES = {
    "new",
    "subscribe",
    "daily papers",
    "get trending papers in your email inbox!",
    "get trending papers in your email inbox",
    "byak and the research community",
    "by ak and the research community",
}
_SENTENCE_BREAK = re.compile(r"[.!?][\"')\]]?\s+[A-Z]")
#: How far into the page a date line may stand and still end the header.
_HEADER_SPAN = 10
#: Longer than this, a paragraph is an abstract, never a title.
MAX_TITLE_CHARS = 300


@dataclass(frozen=True)
class _Paragraph:
    line: int
    text: str


def parse_dump(text: str, *, today: date, edition_date: date | None = None) -> ParsedSource:
    """Parse a page dump; ``today`` resolves a year-less date, ``edition_date`` overrides it."""
    paragraphs = _paragraphs(text)
    if not paragraphs:
        raise ValueError("the source is empty")
    header_end, page_date = _find_header(paragraphs, today)
    warnings: list[str] = []
    if page_date is None and header_end and _looks_like_a_date(paragraphs[header_end - 1].text):
        line = paragraphs[header_end - 1]
        warnings.append(f"line {line.line}: {line.text[:30]!r} is not a real date")
    if edition_date is not None:
        page_date = edition_date
    elif page_date is None:
        page_date = today
        warnings.append(f"no date line; using the ingest date {today.isoformat()}")
    body = paragraphs[header_end:]
    if not body:
        warnings.append("no entries: the page has only its header (an empty day)")
        return ParsedSource(format="dump", entries=(), warnings=tuple(warnings))

    entries = _entries(body, page_date, warnings)
    if not entries and not warnings:
        warnings.append("no entries found")
    return ParsedSource(format="dump", entries=tuple(entries), warnings=tuple(warnings))


def _entries(body: list[_Paragraph], page_date: date, warnings: list[str]) -> list[Entry]:
    """Title and abstract paragraphs, in pairs; what fits neither is said in ``warnings``."""
    entries: list[Entry] = []
    title: _Paragraph | None = None
    for paragraph in body:
        if title is not None:
            entries.append(Entry(title=title.text, abstract=paragraph.text, published=page_date))
            title = None
        elif could_be_title(paragraph.text):
            title = paragraph
        elif entries:
            previous = entries[-1]
            entries[-1] = replace(previous, abstract=f"{previous.abstract}\n\n{paragraph.text}")
            warnings.append(
                f"line {paragraph.line}: paragraph cannot be a title; "
                f"joined to the abstract of {previous.title[:60]!r}"
            )
        else:
            warnings.append(f"line {paragraph.line}: paragraph cannot be a title; skipped")
    if title is not None:
        warnings.append(f"line {title.line}: title {title.text[:60]!r} has no abstract; skipped")
    return entries


def could_be_title(text: str) -> bool:
    """Tell whether a paragraph may be a paper title (short, at most one sentence break)."""
    return len(text) <= MAX_TITLE_CHARS and len(_SENTENCE_BREAK.findall(text)) < 2


def _looks_like_a_date(text: str) -> bool:
    """Whether a line is shaped as a date line (``Feb 30``), real date or not."""
    match = _DATE_LINE.match(text.strip())
    return bool(match) and match["month"].lower() in _MONTHS  # type: ignore[index]


def parse_date_line(text: str, today: date) -> date | None:
    """Read a date line such as ``Mar 21``; a missing year is the latest not after today."""
    match = _DATE_LINE.match(text.strip())
    if not match:
        return None
    month = _MONTHS.get(match["month"].lower())
    if month is None:
        return None
    day = int(match["day"])
    if match["year"]:
        try:
            return date(int(match["year"]), month, day)
        except ValueError:
            return None
    # Feb 29 needs a leap year: look back far enough to find one.
    for year in range(today.year, today.year - 9, -1):
        try:
            candidate = date(year, month, day)
        except ValueError:
            continue
        if candidate <= today:
            return candidate
    return None


def _paragraphs(text: str) -> list[_Paragraph]:
    paragraphs: list[_Paragraph] = []
    current: list[str] = []
    start = 0
    for number, line in enumerate(text.split("\n"), start=1):
        if line.strip():
            if not current:
                start = number
            current.append(line.strip())
        elif current:
            paragraphs.append(_Paragraph(start, " ".join(current)))
            current = []
    if current:
        paragraphs.append(_Paragraph(start, " ".join(current)))
    return paragraphs


def _find_header(paragraphs: list[_Paragraph], today: date) -> tuple[int, date | None]:
    """Return where the entries start and the page's date, if it has a date line."""
    for index, paragraph in enumerate(paragraphs[:_HEADER_SPAN]):
        if _looks_like_a_date(paragraph.text):  # a date line ends the header, real or not
            return index + 1, parse_date_line(paragraph.text, today)
    index = 0
    while index < len(paragraphs) and paragraphs[index].text.casefold() in _HEADER_PHRASES:
        index += 1
    return index, None
