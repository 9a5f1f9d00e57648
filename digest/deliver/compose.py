"""Compose messages: a subscriber's selection rendered and built into the bytes to send.

No database and no sockets, so that composing can run in a child process
that imports only what it needs (``serve`` is that process's loop) while
the parent talks to the mail server.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import queue
import signal
import threading
import time
import traceback
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, NamedTuple
from uuid import uuid4

from digest.address import domain_of
from digest.config import DkimSettings, InboundSettings, LearningSettings, Settings
from digest.deliver.message import (
    Envelope,
    build_message,
    checked_address,
    envelope_address,
    signer_for,
)
from digest.deliver.transports import Envelope as TransportEnvelope
from digest.errors import DigestError
from digest.logs import peak_rss_kb
from digest.models import Delivery, Edition, Follow, StoredEntry, Subscriber, Topic
from digest.plan import Policy, Send, Skip, Wait, on_selection
from digest.render import EmailRenderer, EmailSettings, PersonalLinks, RenderedEmail
from digest.resources import resource_path
from digest.select import Affinity, EditionIndex, Selection
from digest.tokens import feedback_url, preferences_url, tagged_address, unsubscribe_url

if TYPE_CHECKING:
    from digest.select.affinity import EditionVectors
    from digest.select.learned import FeatureSpace


@dataclass(frozen=True)
class Composed:
    """What composing one delivery gave: its message, or why there is none."""

    #: The bytes to send, and to whom; None when the selection says not to mail, or
    #: on a failure.
    message: bytes | None = None
    envelope: TransportEnvelope | None = None
    #: Why it is not mailed (the selection was empty, or waits for more papers).
    not_mailed: Skip | Wait | None = None
    #: Why it could not be composed (that delivery's failure, never the run's).
    failure: str | None = None
    #: Seconds spent rendering and building, for the benchmark.
    rendering: float = 0.0
    building: float = 0.0


@dataclass(frozen=True)
class Taste:
    """What a reader's feedback gives composing: their models (``ReaderModels`` as
    bytes; None before a positive vote) and the authors they follow."""

    model: bytes | None
    follows: tuple[Follow, ...] = ()


class Job(NamedTuple):
    """One delivery to compose: the decider's intent, the Date header, and the reader's
    model (None without feedback)."""

    delivery: Delivery
    intent: Send
    sent_at: datetime
    taste: Taste | None = None


#: A batch of work for the composing process.
Jobs = list[Job]


@dataclass(frozen=True)
class ComposeSettings:
    """What composing needs: who a message is from, how its links are signed, its look,
    and what the decider weighs (all the composing process is given)."""

    title: str
    sender_name: str
    sender_address: str
    base_url: str
    secret_key: str = field(repr=False)
    theme: str
    max_entries: int
    email: EmailSettings
    policy: Policy
    dkim: DkimSettings
    learning: LearningSettings
    inbound: InboundSettings
    #: What a reader who chose no topics gets (none: every new paper).
    default_topics: tuple[Topic, ...] = ()
    #: Whether every mail server of the run offers 8BITMIME, so that a part may go as
    #: raw UTF-8 (asked of the transports by the sender; not a configuration).
    eight_bit: bool = False

    def topics_of(self, reader: Subscriber) -> tuple[Topic, ...]:
        """The topics a reader's papers are chosen by: theirs, else their newsletter's."""
        return reader.topics or self.default_topics

    @classmethod
    def of(cls, settings: Settings) -> ComposeSettings:
        """The part of the settings that composing uses."""
        return cls(
            title=settings.title,
            sender_name=settings.sender_name,
            sender_address=settings.sender_address,
            base_url=settings.base_url,
            secret_key=settings.secret_key,
            theme=settings.theme,
            max_entries=settings.max_entries,
            email=EmailSettings(
                newsletter=settings.title,
                base_url=settings.site_url,
                abstract_chars=settings.abstract_chars,
                max_html_bytes=settings.max_html_bytes,
                feedback_links=settings.learning.feedback_links,
            ),
            policy=settings.policy,
            dkim=settings.dkim,
            learning=settings.learning,
            inbound=settings.inbound,
            default_topics=settings.default_topics,
        )


def personal_links(settings: ComposeSettings, subscriber_id: int) -> PersonalLinks:
    """The signed unsubscribe and preferences links of one subscriber."""

    def feedback(entry_id: int) -> str:
        return feedback_url(settings.base_url, settings.secret_key, subscriber_id, entry_id)

    return PersonalLinks(
        unsubscribe_url=unsubscribe_url(settings.base_url, settings.secret_key, subscriber_id),
        preferences_url=preferences_url(settings.base_url, settings.secret_key, subscriber_id),
        feedback_url=feedback if settings.learning.feedback_links else None,
    )


def message_id_for(
    secret_key: str,
    installation: str,
    edition: Edition,
    subscriber_id: int,
    domain: str,
    resends: int = 0,
) -> str:
    """Return the Message-ID of a delivery: the same for every attempt, so a retry is a
    repeat that the receiving side can drop; an operator's resend is a new message.

    The installation's own id is part of it: two databases (two installations,
    or one rebuilt) never give the same id to different messages.
    """
    named = f"{installation}:{edition.id}:{subscriber_id}" + (f":{resends}" if resends else "")
    tag = hmac.new(secret_key.encode(), named.encode(), hashlib.sha256).hexdigest()[:20]
    again = f"r{resends}." if resends else ""
    return f"<{edition.day:%Y%m%d}.{subscriber_id}.{again}{tag}@{message_id_host(domain)}>"


def message_id_host(domain: str) -> str:
    """The host part of a Message-ID: fully qualified even for a sender at ``localhost``
    (filters mark down a Message-ID whose host has no dot)."""
    return domain if "." in domain.strip(".") else f"{domain.strip('.') or 'digest'}.localdomain"


class MessageFactory:
    """Every mail digest sends is built here, whatever its kind (a digest, a resend, a
    test, a confirmation, a welcome, "already subscribed"): its Message-ID, its
    envelope (VERP when a bounce address is set), its headers and encoding, and its
    DKIM signature."""

    def __init__(self, settings: ComposeSettings, installation: str = "") -> None:
        #: ``installation`` is part of every digest's Message-ID (not of a notice's).
        self.settings = settings
        self.installation = installation
        self.domain = domain_of(settings.sender_address)
        self.signer = signer_for(settings.dkim, settings.sender_address)
        self._links: tuple[int, PersonalLinks] | None = None

    def links(self, subscriber_id: int) -> PersonalLinks:
        """The reader's signed links, made once per message (signing is not free)."""
        if self._links is None or self._links[0] != subscriber_id:
            self._links = (subscriber_id, personal_links(self.settings, subscriber_id))
        return self._links[1]

    def digest_id(self, edition: Edition, subscriber_id: int, resends: int = 0) -> str:
        """A delivery's Message-ID: the same at every attempt, new at each resend."""
        settings = self.settings
        return message_id_for(
            settings.secret_key,
            self.installation,
            edition,
            subscriber_id,
            self.domain,
            resends,
        )

    def one_off_id(self, kind: str) -> str:
        """The Message-ID of a mail that is no delivery (a notice, a test): random."""
        return f"<{kind}.{uuid4().hex}@{message_id_host(self.domain)}>"

    def build(
        self,
        rendered: RenderedEmail,
        reader: Subscriber,
        *,
        message_id: str,
        sent_at: datetime,
        delivery_id: int | None = None,
        to: str | None = None,
    ) -> tuple[TransportEnvelope, bytes]:
        """The envelope and the signed bytes of one mail to ``reader`` (at ``to``, when
        it goes elsewhere, as a test does); ``delivery_id`` tags the bounce address."""
        headers = self._headers(reader, self.links(reader.id))
        message = build_message(
            rendered,
            headers,
            message_id=message_id,
            sent_at=sent_at,
            eight_bit=self.settings.eight_bit,
        )
        if self.signer is not None:
            message = self.signer.sign(message)
        recipient = checked_address(to or reader.email)  # its domain in A-labels
        envelope = TransportEnvelope(
            self._sender(delivery_id), recipient, message_id, eight_bit=not message.isascii()
        )
        return envelope, message

    def _headers(self, reader: Subscriber, links: PersonalLinks) -> Envelope:
        settings = self.settings
        mailbox = settings.inbound.unsubscribe_mailbox
        return Envelope(
            sender_name=settings.sender_name,
            sender_address=settings.sender_address,
            recipient_address=reader.email,
            recipient_name=reader.name,
            list_name=settings.title,
            unsubscribe_url=links.unsubscribe_url,
            unsubscribe_mailto=(
                tagged_address(mailbox, settings.secret_key, "unsubscribe", reader.id)
                if mailbox
                else None
            ),
        )

    def _sender(self, delivery_id: int | None) -> str:
        """MAIL FROM: the bounce address tagged with the delivery (VERP) when one is set,
        so that a bounce says which message it is about; else the sender."""
        settings = self.settings
        if delivery_id is None or not settings.inbound.bounce_address:
            return envelope_address(settings.sender_address)
        tagged = tagged_address(
            settings.inbound.bounce_address, settings.secret_key, "bounce", delivery_id
        )
        return envelope_address(tagged)


class Composer:
    """Turns a subscriber's selection into the bytes of their message (pure, cached per edition)."""

    def __init__(
        self,
        settings: ComposeSettings,
        installation: str,
        renderer: EmailRenderer | None = None,
        space: FeatureSpace | None = None,
    ) -> None:
        self.settings = settings
        #: The feature space readers' models are over (None: nobody has given feedback).
        self.space = space
        self._vectors: tuple[EditionIndex, EditionVectors] | None = None
        self.renderer = renderer or make_renderer(settings.email)
        self.installation = installation
        self.policy = settings.policy
        self.factory = MessageFactory(settings, installation)

    def theme_for(self, subscriber: Subscriber) -> str:
        themes = self.renderer.themes
        return subscriber.theme if subscriber.theme in themes else self.settings.theme

    def select(
        self, subscriber: Subscriber, index: EditionIndex, taste: Taste | None = None
    ) -> Selection:
        """What the reader's topics select from this index (the edition's, or their
        period's), as many as their theme shows, ranked by their ``taste`` if any."""
        room = self.settings.max_entries * self.renderer.capacity(self.theme_for(subscriber))
        affinity = self.affinity(index, taste, subscriber)
        topics = self.settings.topics_of(subscriber)
        follows = taste.follows if taste is not None else ()
        return index.select(topics, max_entries=room, affinity=affinity, follows=follows)

    def _edition_vectors(self, index: EditionIndex) -> EditionVectors:
        """The edition's vectors for scoring readers, made once per index."""
        from digest.select.affinity import EditionVectors

        assert self.space is not None
        if self._vectors is None or self._vectors[0] is not index:
            self._vectors = (index, EditionVectors.of(self.space, index.entries))
        return self._vectors[1]

    def affinity(
        self, index: EditionIndex, taste: Taste | None, reader: Subscriber | None = None
    ) -> Affinity | None:
        """What a reader's models say of the edition's papers: the order, what they
        recommend, what exploration asks about (never a paper they have already)."""
        if taste is None or taste.model is None or self.space is None:
            return None
        from digest.select.affinity import affinity_of
        from digest.select.learned import ReaderModels

        return affinity_of(
            ReaderModels.load(self.space.version, taste.model),
            self._edition_vectors(index),
            topics=self.settings.topics_of(reader) if reader is not None else (),
            learning=self.settings.learning,
            explore=0 if reader is not None and not reader.explore else None,
        )

    def render(
        self,
        edition: Edition,
        subscriber: Subscriber,
        selection: Selection,
        since: date | None = None,
    ) -> RenderedEmail:
        return self.renderer.render(
            edition_date=edition.day,
            selection=selection,
            links=self.factory.links(subscriber.id),
            theme=self.theme_for(subscriber),
            personal=bool(self.settings.topics_of(subscriber)),
            period=period_label(since, edition.day) if since is not None else None,
        )

    def message(
        self,
        delivery: Delivery,
        edition: Edition,
        reader: Subscriber,
        rendered: RenderedEmail,
        sent_at: datetime,
    ) -> tuple[TransportEnvelope, bytes]:
        """The envelope and bytes of a delivery's message."""
        return self.factory.build(
            rendered,
            reader,
            message_id=self.factory.digest_id(edition, reader.id, delivery.resends),
            sent_at=sent_at,
            delivery_id=delivery.id,
        )

    def sending_8bit(self) -> Composer:
        """This composer for servers that all offer 8BITMIME (the renderer is shared)."""
        settings = replace(self.settings, eight_bit=True)
        return Composer(settings, self.installation, renderer=self.renderer, space=self.space)


def compose_message(
    composer: Composer,
    edition: Edition,
    index: EditionIndex,
    job: Job,
) -> Composed:
    """Select, render and build the message the decider said to send; the decider is
    not asked again, and nothing is read again.

    This is the isolation boundary of one delivery: whatever goes wrong here
    (a stored query FTS5 refuses, an address no message can carry) is
    returned as that delivery's failure, never raised at the others.
    """
    delivery, intent, sent_at, taste = job
    reader = intent.reader
    rendering = 0.0
    try:
        started = time.perf_counter()
        selection = composer.select(reader, index, taste)
        not_mailed = on_selection(intent, selection, edition, composer.policy)
        if not_mailed is not None:
            return Composed(not_mailed=not_mailed)
        rendered = composer.render(edition, reader, selection, intent.since)
        rendering = time.perf_counter() - started
        started = time.perf_counter()
        envelope, message = composer.message(delivery, edition, reader, rendered, sent_at)
    except Exception as e:  # noqa: BLE001 - reported as this delivery's failure
        return Composed(failure=failure_reason(e), rendering=rendering)
    building = time.perf_counter() - started
    return Composed(message, envelope, rendering=rendering, building=building)


def period_label(since: date, through: date) -> str:
    """The days an email of several editions covers: "14–20 April", "28 March – 3 April"."""
    start = since + timedelta(days=1)
    if start >= through:
        return f"{through.day} {through:%B}"
    if (start.year, start.month) == (through.year, through.month):
        return f"{start.day}\u2013{through.day} {through:%B}"
    return f"{start.day} {start:%B} \u2013 {through.day} {through:%B}"


def failure_reason(error: BaseException) -> str:
    """One line saying why a delivery could not be composed."""
    text = error.message if isinstance(error, DigestError) else f"{type(error).__name__}: {error}"
    return "could not compose: " + " ".join(text.split())[:300]


def make_renderer(settings: EmailSettings) -> EmailRenderer:
    """The email renderer, with the shipped templates."""
    return EmailRenderer(resource_path("templates"), settings)


def serve(
    connection: Connection,
    settings: ComposeSettings,
    installation: str,
    edition: Edition,
    entries: list[StoredEntry],
    space: tuple[int, bytes] | None = None,
) -> None:
    """The composing process: answer each batch of jobs with its outcomes, in order.

    Ends when the parent sends None (answered with this process's peak
    memory in KiB) or goes away; an error is sent back instead of outcomes.
    """
    # Ctrl-C and SIGTERM may reach the whole process group: the parent then
    # finishes its message in flight and closes the pipe, which ends this loop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # Composing runs ahead of the senders: when the cores are busy, the mail
    # server and the sender threads (the pace of the run) go first.
    with contextlib.suppress(OSError):
        os.nice(10)
    # Jobs are read by a thread of their own, so that the parent's sends
    # never wait for this process to finish sending outcomes.
    jobs: queue.SimpleQueue[Jobs | None] = queue.SimpleQueue()
    threading.Thread(target=_receive, args=(connection, jobs), daemon=True).start()
    try:
        learned = None
        if space is not None:
            from digest.select.learned import FeatureSpace

            learned = FeatureSpace.load(*space)
        composer = Composer(settings, installation, space=learned)
        composer.renderer.prepare(entries)
        with EditionIndex(entries) as index:
            while (batch := jobs.get()) is not None:
                connection.send([compose_message(composer, edition, index, job) for job in batch])
        connection.send(peak_rss_kb())
    except OSError:
        return  # the parent went away
    except DigestError as e:  # a bad DKIM key, say: the parent says it in one line
        connection.send(DigestError(e.message, hint=e.hint))
    except Exception as e:
        traceback.print_exc()
        connection.send(RuntimeError(f"composing failed: {type(e).__name__}: {e}"))


def _receive(connection: Connection, jobs: queue.SimpleQueue[Jobs | None]) -> None:
    while True:
        try:
            batch = connection.recv()
        except (EOFError, OSError):
            batch = None
        jobs.put(batch)
        if batch is None:
            return
