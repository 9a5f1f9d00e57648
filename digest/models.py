"""Plain frozen data passed between the stages of the pipeline.

Nothing here touches a database, a socket or the clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

from digest.cadence import DAILY, Cadence
from digest.identity import arxiv_id_from, fingerprint, title_key

#: The most SMTP connections (sender threads) one run may use: ``SMTP_CONNECTIONS``'s
#: bound, and what the database pool is sized for.
MAX_SMTP_CONNECTIONS = 64


@dataclass(frozen=True)
class Entry:
    """One paper as a source describes it; text is verbatim and untrusted."""

    title: str
    abstract: str = ""
    authors: tuple[str, ...] = ()
    url: str | None = None
    pdf_url: str | None = None
    hf_url: str | None = None
    arxiv_id: str | None = None
    published: date | None = None
    upvotes: int | None = None
    categories: tuple[str, ...] = ()
    #: A one-sentence summary the source wrote (Hugging Face's ``ai_summary``).
    summary: str = ""
    #: The paper's code repository as the source names it (Hugging Face's ``githubRepo``).
    code_url: str | None = None
    #: The code repository's stars, when the source counts them.
    stars: int | None = None
    #: The organisation the paper is published under, when the source names one.
    organization: str | None = None

    def __post_init__(self) -> None:
        # One paper, one id: versions (v2) and prefixes (arXiv:) never split identity.
        if self.arxiv_id is not None:
            object.__setattr__(self, "arxiv_id", arxiv_id_from(self.arxiv_id) or self.arxiv_id)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.title, self.arxiv_id)

    @property
    def title_key(self) -> str:
        return title_key(self.title)

    def filled_from(self, other: Entry) -> Entry:
        """Return this entry with what it lacks (the id, links, authors, counts, summary and
        organisation) taken from other."""
        return replace(
            self,
            arxiv_id=self.arxiv_id or other.arxiv_id,
            url=self.url or other.url,
            pdf_url=self.pdf_url or other.pdf_url,
            hf_url=self.hf_url or other.hf_url,
            authors=self.authors or other.authors,
            upvotes=self.upvotes if self.upvotes is not None else other.upvotes,
            categories=self.categories or other.categories,
            summary=self.summary or other.summary,
            code_url=self.code_url or other.code_url,
            stars=self.stars if self.stars is not None else other.stars,
            organization=self.organization or other.organization,
        )


@dataclass(frozen=True)
class StoredEntry:
    """An entry as stored, with its row id, source and first-seen time."""

    id: int
    entry: Entry
    source: str
    first_seen: datetime


@dataclass(frozen=True)
class ParsedSource:
    """What a parser made of one source: its entries and what it warned about."""

    format: str
    entries: tuple[Entry, ...]
    warnings: tuple[str, ...] = ()
    #: Items that are valid but deliberately not new papers (arXiv re-announcements).
    skipped: int = 0


@dataclass(frozen=True)
class SourceReport:
    """The outcome of ingesting one source."""

    source: str
    format: str | None = None
    read: int = 0
    new: int = 0
    seen: int = 0
    skipped: int = 0
    warnings: tuple[str, ...] = ()
    error: str | None = None
    #: The server said nothing changed since the last fetch (HTTP 304).
    unchanged: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class IngestReport:
    """The outcome of one ingest run over several sources."""

    started: datetime
    sources: tuple[SourceReport, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.sources)

    def total(self, name: str) -> int:
        return sum(getattr(s, name) for s in self.sources)


@dataclass(frozen=True)
class Topic:
    """A subscriber's interest: a query in the topic language and an optional label."""

    query: str
    label: str | None = None

    def __str__(self) -> str:
        return f"{self.label}: {self.query}" if self.label else self.query


#: A subscriber's states, as a person names them: ``paused`` is active and paused.
STATES = ("pending", "active", "paused", "unsubscribed", "bounced", "complained")
#: The states of someone who is never mailed again until they opt in again themselves:
#: they left, their address bounced for good, or they reported the digest as spam.
SUPPRESSED = ("unsubscribed", "bounced", "complained")

#: The newsletter of an installation that declares none, and of every reader and edition
#: from before newsletters (digest.config's ``[[newsletters]]``).
MAIN_NEWSLETTER = "main"


@dataclass(frozen=True)
class Subscriber:
    """Someone who gets (or asked to get) the digest: ``status`` is pending, active, or one
    of ``SUPPRESSED``; an active one may be paused (see ``digest.subscriptions``)."""

    id: int
    email: str
    status: str
    name: str | None = None
    topics: tuple[Topic, ...] = ()
    theme: str | None = None
    timezone: str | None = None
    paused: bool = False
    unsubscribed_at: datetime | None = None
    #: How often they want it: daily, weekly on a day, or once N papers match.
    cadence: Cadence = DAILY
    #: For a weekly or threshold reader, the day of the edition last mailed to them
    #: (None: not known yet); the store keeps it, ``periods_of`` reads it.
    period_start: date | None = field(default=None, compare=False)
    #: When the row last changed, to tell cheaply whether a copy is stale (not compared).
    updated_at: datetime | None = field(default=None, compare=False)
    #: The newsletter this consent is for: one person has one row per newsletter.
    newsletter: str = MAIN_NEWSLETTER
    #: Whether their emails may carry a card or two asking about a paper, to learn.
    explore: bool = True

    @property
    def state(self) -> str:
        """The state a person would name: pending, active, paused or unsubscribed."""
        return "paused" if self.status == "active" and self.paused else self.status


@dataclass(frozen=True)
class Follow:
    """An author a reader follows, by name as a feed wrote it, and the paper (its key)
    that made them follow, if any."""

    author: str
    key: str
    paper: str | None = None


@dataclass(frozen=True)
class Edition:
    """One day's batch of new entries."""

    id: int
    day: date
    created_at: datetime
    entry_count: int
    newsletter: str = MAIN_NEWSLETTER


@dataclass(frozen=True)
class Delivery:
    """One subscriber's copy of one edition: queued, sent, failed or skipped."""

    id: int
    edition_id: int
    subscriber_id: int
    status: str
    attempts: int = 0
    message_id: str | None = None
    #: The server's reply when sent; why, when failed, skipped or deferred.
    detail: str | None = None
    #: How many times an operator queued it again (each a new message).
    resends: int = 0


@dataclass(frozen=True)
class Feedback:
    """What a reader said of a paper: ``vote`` +1 (more like this, liked) or -1 (less)."""

    subscriber_id: int
    #: The paper's identity (``arxiv:<id>`` or ``title:<key>``, see ``digest.identity``).
    paper: str
    vote: int
    #: vote (from an email or a page), like (named by the reader), library (imported)
    kind: str
    updated_at: datetime
    weight: float = 1.0


@dataclass(frozen=True)
class InboundRecord:
    """One message that came back (a bounce, a complaint, an unsubscribe), as it is kept."""

    kind: str
    at: datetime
    subscriber_id: int | None = None
    delivery_id: int | None = None
    edition_id: int | None = None
    message_id: str = ""
    detail: str = ""


@dataclass(frozen=True)
class Claim:
    """A sender's claim on queued deliveries: whose, for how long, and whether it is the
    only sender of the queue (it then ignores others' leases: they are gone)."""

    holder: str
    lease: timedelta
    exclusive: bool = False
