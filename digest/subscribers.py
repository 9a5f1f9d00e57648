"""Subscriber input: validate addresses, names, timezones, themes and topics; read and
write the CSV that moves a list between tools.

Pure: works on strings and rows, never on the database.

Topics in one CSV cell (and in ``--topic``): topics are separated by ``;``
(outside quotes), each is ``LABEL: QUERY`` or just ``QUERY``.  A label is
the text before the first ``": "`` when that text is not a field name and
holds no quotes or parentheses, so ``title: diffusion`` searches titles while
``Vision: diffusion`` is a topic labelled Vision.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from digest.address import MAX_ADDRESS_CHARS, AddressError, address_key, parse_address
from digest.cadence import Cadence, CadenceError, parse_cadence
from digest.errors import DigestError
from digest.identity import paper_key
from digest.likes import typed_likes
from digest.models import MAIN_NEWSLETTER, STATES, Subscriber, Topic
from digest.select.topics import FIELDS, QueryError, parse_query
from digest.text import TextError, checked, printable

CSV_COLUMNS = (
    "email",
    "name",
    "topics",
    "theme",
    "timezone",
    "status",
    "likes",
    "cadence",
    "newsletter",
)
MAX_TOPICS = 20
MAX_LABEL_CHARS = 60
#: A topic, label and query: more than any query needs.
MAX_ONE_TOPIC_CHARS = 1_000
MAX_NAME_CHARS = 100
MAX_EMAIL_CHARS = MAX_ADDRESS_CHARS


class SubscriberError(DigestError):
    """Input about a subscriber that cannot be accepted; says which value and why."""

    def __init__(self, value: str, reason: str) -> None:
        self.value = value
        self.reason = reason
        super().__init__(f"{value!r}: {reason}" if value else reason)


class UnreadableCsv(DigestError):
    """A CSV file that cannot be read at all (binary, not UTF-8, an oversized cell)."""

    def __init__(self, line: int, reason: str) -> None:
        self.line = line
        self.reason = reason
        super().__init__(f"line {line}: {reason}; nothing was imported")


@dataclass(frozen=True)
class SubscriberInput:
    """A validated subscriber to store; None fields mean "leave as it is"."""

    email: str
    name: str | None = None
    topics: tuple[Topic, ...] | None = None
    theme: str | None = None
    timezone: str | None = None
    status: str | None = None
    #: Papers the reader likes, by identity (``arxiv:<id>``); None: none given.
    likes: tuple[str, ...] | None = None
    #: How often they want it (None: as before, or daily for someone new).
    cadence: Cadence | None = None
    #: The newsletter this row is about (None: the one the import is for).
    newsletter: str | None = None


@dataclass(frozen=True)
class RowProblem:
    """A CSV row that was skipped, with its line number and the reason."""

    line: int
    reason: str


def normalize_email(address: str) -> str:
    """The address as stored (``digest.address``): ``SubscriberError`` when it is none."""
    try:
        return parse_address(address).mailbox
    except AddressError as e:
        raise SubscriberError(e.value, e.reason) from e


def email_key(address: str) -> str:
    """The key that makes two spellings of one mailbox one subscriber (``Address.key``)."""
    return address_key(address)


def check_name(name: str) -> str | None:
    """Return a display name (one line, spaces folded, capped), or None when blank."""
    cleaned = " ".join(_checked("name", name, MAX_NAME_CHARS).split())
    return cleaned or None


def _checked(field: str, text: str, limit: int) -> str:
    """``digest.text.checked``, its error told as a subscriber's."""
    try:
        return checked(field, text, limit=limit)
    except TextError as e:
        raise SubscriberError(printable(text, 40), e.message) from e


def check_timezone(zone: str) -> str:
    """Return the timezone if it is a known IANA name."""
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise SubscriberError(zone, "not a timezone name (such as Europe/Paris)") from None
    return zone


def check_theme(theme: str, themes: Sequence[str]) -> str:
    """Return the theme if it is one of ``themes``."""
    if theme not in themes:
        raise SubscriberError(theme, f"no such theme (choose from {', '.join(themes)})")
    return theme


def parse_topic(text: str) -> Topic:
    """Parse ``LABEL: QUERY`` or ``QUERY`` into a checked topic."""
    text = _checked("topic", text, MAX_ONE_TOPIC_CHARS)
    label = None
    head, separator, rest = text.partition(": ")
    if separator and head.strip().lower() not in FIELDS and not any(c in head for c in '"()'):
        label, text = head.strip(), rest.strip()
        if not label:
            label = None
        elif len(label) > MAX_LABEL_CHARS or ";" in label:
            raise SubscriberError(label, f"a label is at most {MAX_LABEL_CHARS} characters, no ';'")
    try:
        parse_query(text)
    except QueryError as e:
        raise SubscriberError("", e.message) from e
    return Topic(query=text, label=label)


def topic_count_problem(count: int) -> str | None:
    """What is wrong with a reader having ``count`` topics (None: nothing)."""
    return f"at most {MAX_TOPICS} topics" if count > MAX_TOPICS else None


def _few_enough(topics: tuple[Topic, ...]) -> tuple[Topic, ...]:
    problem = topic_count_problem(len(topics))
    if problem is not None:
        raise SubscriberError("", problem)
    return topics


def parse_topics(cell: str) -> tuple[Topic, ...]:
    """Parse a ``;``-separated list of topics, as in a CSV cell."""
    return _few_enough(tuple(parse_topic(part) for part in split_topics(cell) if part.strip()))


def split_topics(cell: str) -> list[str]:
    """Split a cell on ``;`` outside double quotes."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for char in cell:
        if char == '"':
            quoted = not quoted
        if char == ";" and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def format_topics(topics: Iterable[Topic]) -> str:
    """Write topics as one cell that ``parse_topics`` reads back."""
    return "; ".join(str(t) for t in topics)


def check_input(  # noqa: PLR0913 - the fields of one subscriber as typed, each optional
    email: str,
    *,
    name: str | None = None,
    topics: Sequence[str] | None = None,
    theme: str | None = None,
    timezone: str | None = None,
    cadence: str | None = None,
    themes: Sequence[str],
) -> SubscriberInput:
    """Validate what a person or an operator typed about one subscriber."""
    parsed_topics = None
    if topics is not None:
        parsed_topics = _few_enough(tuple(parse_topic(t) for t in topics if t.strip()))
    return SubscriberInput(
        email=normalize_email(email),
        name=check_name(name) if name is not None else None,
        topics=parsed_topics,
        theme=check_theme(theme, themes) if theme else None,
        timezone=check_timezone(timezone) if timezone else None,
        cadence=check_cadence(cadence) if cadence else None,
    )


def check_cadence(text: str) -> Cadence:
    """A cadence as typed (``daily``, ``weekly:monday``, ``threshold:10``)."""
    try:
        return parse_cadence(text)
    except CadenceError as e:
        raise SubscriberError(text, str(e)) from e


def _check_status(status: str) -> str | None:
    if status and status not in STATES:
        raise SubscriberError(status, f"status must be one of {', '.join(STATES)}")
    return status or None


#: The largest cell a subscriber row needs (20 topics of 500 characters, with room).
MAX_CELL_CHARS = 20_000


def decode_csv(data: bytes) -> str:
    """Return a CSV file's text; raise ``UnreadableCsv`` for binary or non-UTF-8 data."""
    if b"\x00" in data:
        line = data[: data.index(b"\x00")].count(b"\n") + 1
        raise UnreadableCsv(line, "binary data (a NUL byte), not a CSV text file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise UnreadableCsv(
            line, f"not UTF-8 (byte 0x{data[e.start]:02x}); save the file as UTF-8"
        ) from e


def read_csv(
    text: str, *, themes: Sequence[str], newsletters: Sequence[str] = (MAIN_NEWSLETTER,)
) -> tuple[list[tuple[int, SubscriberInput]], list[RowProblem]]:
    """Read subscriber rows; return (line, input) for good rows and the problems of bad ones.
    A ``newsletter`` cell must name one of ``newsletters``.

    A file that cannot be read as CSV raises ``UnreadableCsv`` naming the line.
    """
    lines = _Lines(text.lstrip("\ufeff"))
    try:
        return _read_rows(csv.DictReader(lines), themes, newsletters)
    except csv.Error as e:
        raise UnreadableCsv(lines.number, str(e)) from e


class _Lines:
    """The file's lines, counted, each refused when it is longer than any row needs."""

    def __init__(self, text: str) -> None:
        self.source = io.StringIO(text)
        self.number = 0

    def __iter__(self) -> Iterator[str]:
        for line in self.source:
            self.number += 1
            if len(line) > MAX_CELL_CHARS * len(CSV_COLUMNS):
                raise UnreadableCsv(self.number, "a line longer than any subscriber row needs")
            yield line


def _read_rows(
    reader: csv.DictReader[str], themes: Sequence[str], newsletters: Sequence[str]
) -> tuple[list[tuple[int, SubscriberInput]], list[RowProblem]]:
    header = [h.strip().lower() for h in reader.fieldnames or []]
    if "email" not in header:  # not a list of subscribers: refused whole, not "1 skipped"
        raise UnreadableCsv(1, "the header row has no 'email' column")
    reader.fieldnames = header
    unknown = [h for h in header if h not in CSV_COLUMNS]
    problems = [RowProblem(1, f"unknown columns ignored: {', '.join(unknown)}")] if unknown else []
    good: list[tuple[int, SubscriberInput]] = []
    first_line: dict[str, int] = {}
    topic_cache: dict[str, tuple[Topic, ...]] = {}
    for raw in reader:
        line = reader.line_num
        if any(len(v) > MAX_CELL_CHARS for v in raw.values() if isinstance(v, str)):
            raise UnreadableCsv(line, f"a cell longer than {MAX_CELL_CHARS:,} characters")
        row = {k: restore_cell(v) if isinstance(v, str) else v for k, v in raw.items()}
        try:
            cell = (row.get("topics") or "").strip()
            if cell not in topic_cache:
                topic_cache[cell] = parse_topics(cell)
            item = SubscriberInput(
                email=normalize_email(row.get("email") or ""),
                name=check_name(row.get("name") or ""),
                topics=topic_cache[cell],
                theme=check_theme(row["theme"].strip(), themes) if row.get("theme") else None,
                timezone=check_timezone(row["timezone"].strip()) if row.get("timezone") else None,
                status=_check_status((row.get("status") or "").strip().lower()),
                likes=_likes(row.get("likes") or ""),
                cadence=check_cadence(row["cadence"]) if row.get("cadence") else None,
                newsletter=_newsletter(row.get("newsletter") or "", newsletters),
            )
        except SubscriberError as e:
            problems.append(RowProblem(line, e.message))
            continue
        key = f"{email_key(item.email)} {item.newsletter or ''}"
        if key in first_line:
            problems.append(RowProblem(line, f"{item.email} repeats line {first_line[key]}"))
            continue
        first_line[key] = line
        good.append((line, item))
    return good, problems


def _newsletter(cell: str, newsletters: Sequence[str]) -> str | None:
    """The newsletter a ``newsletter`` cell names (empty: None)."""
    slug = cell.strip()
    if slug and slug not in newsletters:
        known = ", ".join(newsletters)
        raise SubscriberError("", f"newsletter: no newsletter {slug!r} (there are: {known})")
    return slug or None


def _likes(cell: str) -> tuple[str, ...] | None:
    """The liked papers of a ``likes`` cell (arXiv ids, separated by spaces)."""
    if not cell.strip():
        return None
    papers, problems = typed_likes(cell)
    if problems:
        raise SubscriberError("", f"likes: {problems[0]}")
    return tuple(papers)


#: A cell a spreadsheet would run as a formula (OWASP's list), after any quotes we added.
_FORMULA = re.compile(r"'*[=+\-@\t\r]")


def neutralise_cell(cell: str) -> str:
    """Return a cell a spreadsheet shows as text: a formula-like cell gets a leading ``'``.

    ``restore_cell`` takes it off again, so export then import keeps the text
    (a cell that already starts with quotes before such a character gets one more).
    """
    return "'" + cell if _FORMULA.match(cell) else cell


def restore_cell(cell: str) -> str:
    """Undo ``neutralise_cell``."""
    return cell[1:] if cell.startswith("'") and _FORMULA.match(cell[1:]) else cell


def write_csv(subscribers: Iterable[tuple[Subscriber, Sequence[str]]]) -> Iterator[str]:
    """Yield CSV text, header first, that ``read_csv`` reads back; formulas are neutralised.

    Each subscriber comes with the papers they like; those named by arXiv id
    go in the ``likes`` column (a like known only by title cannot be written).
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for subscriber, likes in subscribers:
        writer.writerow(
            neutralise_cell(cell)
            for cell in (
                subscriber.email,
                subscriber.name or "",
                format_topics(subscriber.topics),
                subscriber.theme or "",
                subscriber.timezone or "",
                subscriber.state,
                " ".join(k.value for k in map(paper_key, likes) if k.kind == "arxiv"),
                str(subscriber.cadence),
                subscriber.newsletter,
            )
        )
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()
