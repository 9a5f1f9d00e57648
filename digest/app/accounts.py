"""What readers and operators do to a subscription, end to end: the consent rule
(``digest.subscriptions``) applied by the store, and the mail it calls for.

The CLI and the web app call these, so each action has one path.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from digest import subscriptions
from digest.app.queries import next_email
from digest.config import Settings
from digest.deliver import (
    ComposeSettings,
    Envelope,
    PermanentFailure,
    TemporaryFailure,
    Transport,
    already_subscribed_notice,
    confirm_notice,
    welcome_notice,
)
from digest.errors import DigestError
from digest.identity import title_key
from digest.likes import NamedPaper, library, recency_weight
from digest.models import Subscriber, Topic
from digest.render import shipped_themes
from digest.store import Amended, Store
from digest.subscribers import (
    RowProblem,
    SubscriberError,
    SubscriberInput,
    format_topics,
    parse_topics,
)
from digest.tokens import ConfirmRequest

log = logging.getLogger(__name__)


def add(store: Store, item: SubscriberInput, *, now: datetime) -> tuple[Subscriber, bool]:
    """An operator adds or updates someone; returns them and whether they are new.

    Raises ``ConsentRefused`` for someone who left.
    """
    amended = store.amend_subscriber(
        item.email, subscriptions.operator_adds(item), now=now, channel="cli"
    )
    assert amended.subscriber is not None  # an operator's add always leaves a row
    return amended.subscriber, amended.before is None


def sign_up(
    store: Store,
    settings: Settings,
    transport: Transport,
    item: SubscriberInput,
    *,
    now: datetime,
    channel: str,
) -> tuple[Subscriber, str]:
    """A sign-up (web form, or an operator's invite): record it, then mail the person;
    return the subscriber and what was mailed ("confirm", "already", or "withheld" when
    this address was mailed a sign-up note too recently: ``notice_interval``).

    Nothing changes for a known address until its owner opens the link: someone who
    left stays as they left, and a pending sign-up keeps its choices; the choices of
    this sign-up travel in its own link.  Raises ``TemporaryFailure`` or
    ``PermanentFailure`` when the mail did not go out (a row this sign-up made goes).
    """
    amended = store.amend_subscriber(
        item.email, subscriptions.signs_up(item), now=now, channel=channel
    )
    subscriber = amended.subscriber
    assert subscriber is not None  # a sign-up always leaves a row
    before = amended.before
    interval = subscriptions.notice_interval(before) if before is not None else timedelta(0)
    if not store.claim_notice(subscriber.id, now=now, interval=interval):
        return subscriber, "withheld"
    mail = subscriptions.sign_up_mail(before)
    envelope, message = _sign_up_notice(settings, subscriber, item, mail, now=now)
    try:
        with transport:
            transport.send(envelope, message)
    except (TemporaryFailure, PermanentFailure):
        if before is None:
            store.forget_sign_up(subscriber.id)  # no pending row for an address never reached
        raise
    return subscriber, mail


def _sign_up_notice(
    settings: Settings, subscriber: Subscriber, item: SubscriberInput, mail: str, *, now: datetime
) -> tuple[Envelope, bytes]:
    """The note a sign-up gets: "already subscribed", or the link that confirms this
    sign-up's own choices."""
    compose = ComposeSettings.of(settings)
    if mail == "already":
        return already_subscribed_notice(compose, subscriber, now=now)
    topics = format_topics(item.topics) if item.topics is not None else None
    left = subscriptions.left_stamp(subscriber)
    return confirm_notice(
        compose,
        subscriber,
        request=ConfirmRequest(subscriber.id, left, topics, item.theme),
        confirm_hours=settings.web.confirm_hours,
        topics=item.topics or subscriber.topics,
        now=now,
    )


def confirm(
    store: Store,
    settings: Settings,
    transport: Transport,
    request: ConfirmRequest,
    *,
    now: datetime,
) -> Subscriber | None:
    """A confirmation link is followed (POST): activate whom the link may bring in, with
    the topics and theme they asked for, and mail a welcome saying when the first edition
    comes.  Returns the subscriber activated, or None when the link changed nothing.

    A welcome that cannot be sent is logged: the subscription stands.
    """
    topics, theme = _choices(request, shipped_themes())
    rule = subscriptions.confirms(request.left_at, topics, theme)
    amended = store.amend_subscriber(request.subscriber_id, rule, now=now, channel="confirm")
    if amended.after is None:
        return None
    envelope, message = welcome_notice(
        ComposeSettings.of(settings),
        amended.after,
        first=next_email(store, settings, amended.after, now=now),
        now=now,
    )
    try:
        with transport:
            transport.send(envelope, message)
    except (TemporaryFailure, PermanentFailure) as e:
        log.warning("welcome mail to %s not sent: %s", amended.after.email, e)
    return amended.after


def _choices(
    request: ConfirmRequest, themes: list[str]
) -> tuple[tuple[Topic, ...] | None, str | None]:
    """The topics and theme a link asks for, checked again (the link may be old)."""
    try:
        topics = parse_topics(request.topics) if request.topics is not None else None
    except SubscriberError:
        topics = None
    return topics, request.theme if request.theme in themes else None


def leave(store: Store, who: str | int, *, now: datetime, channel: str) -> Subscriber | None:
    """Someone unsubscribes (an address, or an id from a signed link); None: unknown."""
    return store.amend_subscriber(who, subscriptions.leaves, now=now, channel=channel).subscriber


def set_paused(
    store: Store, who: str | int, *, paused: bool, now: datetime, channel: str = "cli"
) -> Subscriber | None:
    """An operator pauses or resumes someone (an address or an id); None when unknown,
    ``NothingToChange`` for someone who cannot be paused (pending, or left)."""
    rule = subscriptions.pauses(paused)
    found = store.amend_subscriber(who, rule, now=now, channel=channel).subscriber
    if found is not None and not subscriptions.may_pause(found):
        raise NothingToChange(f"{found.email} is {found.state}: nothing to change")
    return found


def choose(
    store: Store, reader_id: int, choices: subscriptions.Choices, *, now: datetime
) -> Subscriber | None:
    """A reader saves their preferences page: the reader as stored after."""
    rule = subscriptions.chooses(
        topics=choices.topics,
        theme=choices.theme,
        timezone=choices.timezone,
        paused=choices.paused,
        cadence=choices.cadence,
        explore=choices.explore,
    )
    return store.amend_subscriber(reader_id, rule, now=now, channel="preferences").subscriber


def vote(store: Store, reader_id: int, paper: str, vote: int, *, now: datetime) -> None:
    """A reader marks a paper more (+1) or less (-1) like what they want, or clears it (0)."""
    store.set_feedback(reader_id, paper, vote=vote, kind="vote", now=now)


def follow(store: Store, reader_id: int, author: str, *, paper: str | None, now: datetime) -> bool:
    """A reader follows an author, named as a feed wrote it (whether they did not yet)."""
    return store.follow_author(reader_id, author, paper=paper, now=now)


def unfollow(store: Store, reader_id: int, author: str) -> bool:
    """A reader stops following an author (whether they did)."""
    return store.unfollow_author(reader_id, author)


class NothingToChange(DigestError):
    """What an operator asked does not apply to this reader as they are."""


@dataclass(frozen=True)
class ImportReport:
    """What an import did, and every row it could not take, by line."""

    result: subscriptions.ImportResult
    problems: tuple[RowProblem, ...]
    rows: int

    @property
    def skipped(self) -> int:
        """Rows left out (a note on the header alone skips nothing when rows went in)."""
        return sum(1 for p in self.problems if p.line > 1 or not self.rows)


def import_rows(
    store: Store,
    rows: Sequence[tuple[int, SubscriberInput]],
    problems: Sequence[RowProblem],
    *,
    now: datetime,
) -> ImportReport:
    """An operator imports checked CSV rows (line, input) in one transaction; the rows
    of someone who left are reported with the ``problems`` the check found."""
    items = [item for _, item in rows]
    rows_of: dict[str, list[int]] = {}  # by newsletter: a row names one, or is the store's
    for number, item in enumerate(items):
        rows_of.setdefault(item.newsletter or store.newsletter, []).append(number)
    outcomes: list[Amended] = [Amended(None, None)] * len(items)
    for newsletter, numbers in rows_of.items():
        changes = [(items[n].email, subscriptions.operator_imports(items[n])) for n in numbers]
        done = store.scoped(newsletter).amend_subscribers(changes, now=now, channel="import")
        for number, amended in zip(numbers, done, strict=True):
            outcomes[number] = amended
    result = subscriptions.import_result(items, outcomes)
    refused_now = set(result.refused)
    for item in items:
        if item.likes and item.email not in refused_now:
            subscriber = store.scoped(item.newsletter or store.newsletter).get_subscriber(
                item.email
            )
            if subscriber is not None:
                like(store, subscriber.id, item.likes, now=now)
    line_of = {item.email: line for line, item in rows}
    refused = [
        RowProblem(
            line_of[email],
            f"{email} unsubscribed; left unchanged (only they can opt in "
            "again: 'digest subscribe --invite')",
        )
        for email in result.refused
    ]
    found = tuple(sorted([*problems, *refused], key=lambda p: p.line))
    return ImportReport(result, found, len(rows))


def like(
    store: Store,
    subscriber_id: int,
    papers: Sequence[str | NamedPaper],
    *,
    now: datetime,
    kind: str = "like",
) -> int:
    """Record papers a reader likes (ids they typed, or their library, weighted by
    recency); return how many were new or changed."""
    changed = 0
    for named in papers:
        paper = named if isinstance(named, str) else named.paper
        year = None if isinstance(named, str) else named.year
        weight = recency_weight(year, now.date())
        changed += store.set_feedback(
            subscriber_id, paper, vote=1, kind=kind, now=now, weight=weight
        )
    return changed


@dataclass(frozen=True)
class LibraryReport:
    """What importing a reader's library did: papers read, found stored, skipped."""

    papers: int
    matched: int
    problems: tuple[str, ...]


def import_library(
    store: Store, subscriber_id: int, data: bytes, *, now: datetime
) -> LibraryReport:
    """A reader's BibTeX or RIS library as liked papers, in each newsletter they read (a
    library is the person's; their votes stay each newsletter's); papers digest has not
    seen wait for them to arrive."""
    papers, problems = library(data)
    papers = _as_stored(store, papers)
    reader = store.get_subscriber_by_id(subscriber_id)
    others = store.subscriptions_of(reader.email) if reader is not None else []
    for owner in {subscriber_id, *(s.id for s in others if not subscriptions.has_left(s))}:
        like(store, owner, papers, now=now, kind="library")
    matched = len(store.entries_named([p.paper for p in papers]))
    return LibraryReport(len(papers), matched, tuple(problems))


def _as_stored(store: Store, papers: list[NamedPaper]) -> list[NamedPaper]:
    """The papers named as digest stores them: one the library names by its arXiv id
    but a source stored by its title alone (no id given) is liked by that title."""
    found = store.entries_named([p.paper for p in papers])
    titled = {
        p.paper: f"title:{title_key(p.title)}" for p in papers if p.paper not in found and p.title
    }
    by_title = store.entries_named(list(titled.values()))
    return [
        replace(p, paper=by_title[titled[p.paper]].entry.fingerprint)
        if titled.get(p.paper) in by_title
        else p
        for p in papers
    ]


def with_likes(
    store: Store, subscribers: Iterable[Subscriber]
) -> Iterator[tuple[Subscriber, list[str]]]:
    """Each subscriber with the papers they like (for the CSV export), a page at a time."""
    page: list[Subscriber] = []
    for subscriber in itertools.chain(subscribers, [None]):
        if subscriber is not None:
            page.append(subscriber)
        if page and (subscriber is None or len(page) == 500):
            marks = store.feedback_of([s.id for s in page])
            for each in page:
                yield each, [f.paper for f in marks[each.id] if f.vote > 0]
            page = []
