"""The settings, declared once each: typed, frozen, with the default beside each field."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from zoneinfo import ZoneInfo

from digest.address import domain_of
from digest.config import checks
from digest.ingest import FetchPolicy, SourceLimits, is_url
from digest.models import MAIN_NEWSLETTER, Topic
from digest.plan import Policy

DEFAULT_DATABASE_URL = "sqlite:///var/digest.sqlite3"


#: The shortest SECRET_KEY accepted: it signs every link in every email.
MIN_SECRET_KEY_CHARS = 32


#: Where a local installation (a loopback DIGEST_BASE_URL) keeps the key it made itself.
LOCAL_SECRET_KEY_FILE = Path("var/secret_key")


MAKE_A_KEY = "make one with: python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"


SMTP_SECURITY_PORTS = {"starttls": 587, "ssl": 465, "none": 25}


@dataclass(frozen=True)
class SourceSpec:
    """A configured source: a display name, a path or URL, and its format if it is given."""

    name: str
    location: str
    #: One of ``digest.ingest.FORMATS``; None: detected from the content.
    format: str | None = None
    #: When it announces new papers (``digest.calendars``): arxiv, weekdays or daily.
    calendar: str = "daily"


@dataclass(frozen=True)
class Newsletter:
    """One newsletter of an installation (``[[newsletters]]``): its readers, editions and
    consent are its own; what it leaves out is the installation's."""

    slug: str
    #: Its name: in subjects, pages and the List-Id.
    name: str
    #: The names of the ``[[sources]]`` its editions take papers from (None: all).
    sources: tuple[str, ...] | None = None
    sender_name: str | None = None
    sender_address: str | None = None
    theme: str | None = None
    #: When its edition is made (cron, as ``[schedule] cron``; None: the installation's).
    schedule: str | None = None
    #: What a reader of it who chose no topics gets (none: every new paper).
    topics: tuple[Topic, ...] = ()
    #: The ``d=`` of its DKIM signatures (None: its sender's domain) and the selector
    #: of the key (None: DKIM_SELECTOR); the key is the installation's.
    dkim_domain: str | None = None
    dkim_selector: str | None = None
    #: The environment variable naming the relays it sends through (SMTP_FALLBACK_URLS'
    #: form: the first, then its fallbacks), and those relays (as loaded: the
    #: installation's when it names none; none at all: the outbox folder).
    relay_env: str | None = None
    relays: tuple[RelayAddress, ...] = ()


@dataclass(frozen=True)
class Webhook:
    """An endpoint told of events (``[[webhooks]]``), signed as Standard Webhooks are."""

    url: str
    #: The events it asks for (``digest.events.EVENT_TYPES``).
    events: tuple[str, ...]
    #: The environment variable holding its signing secret (``whsec_`` and base64),
    #: and that secret as loaded.
    secret_env: str
    secret: str = field(default="", repr=False)


@dataclass(frozen=True)
class RelayAddress:
    """Where a fallback relay is and how to log in: the rest is the first relay's."""

    host: str
    port: int
    security: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class SmtpSettings:
    """How to reach the outgoing mail server; ``host`` None means write .eml files."""

    host: str | None = None
    port: int = 587
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    security: str = "starttls"
    timeout: float = 30.0
    #: Extra CA certificates to trust (a private relay's), as a PEM file.
    ca_file: Path | None = None
    #: The most connections the sending pool opens at once (it opens more only while
    #: they raise the messages sent a second, and fewer when the server refuses more).
    connections: int = 16
    #: How long to wait for the answer to the end of DATA (RFC 5321 suggests 10 minutes).
    data_timeout: float = 600.0
    #: The name given in EHLO; None: the machine's fully qualified name.
    ehlo_name: str | None = None
    #: Relays to go on with, in order, when this one refuses the session or is down.
    fallbacks: tuple[RelayAddress, ...] = ()

    def relays(self) -> tuple[SmtpSettings, ...]:
        """This relay, then each fallback with this one's timeouts, pool and EHLO name."""
        first = replace(self, fallbacks=())
        return (first,) + tuple(first.through([fallback]) for fallback in self.fallbacks)

    def addresses(self) -> tuple[RelayAddress, ...]:
        """This relay and its fallbacks (none: mail goes to the outbox folder)."""
        if self.host is None:
            return ()
        first = RelayAddress(self.host, self.port, self.security, self.username, self.password)
        return (first, *self.fallbacks)

    def through(self, relays: Sequence[RelayAddress]) -> SmtpSettings:
        """These settings for other relays: the first, then the rest as fallbacks (none:
        no relay, the outbox folder)."""
        if not relays:
            return replace(self, host=None, fallbacks=())
        first, *rest = relays
        return replace(
            self,
            host=first.host,
            port=first.port,
            security=first.security,
            username=first.username,
            password=first.password,
            fallbacks=tuple(rest),
        )

    @property
    def where(self) -> str:
        """host:port, for messages."""
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class DeliverySettings:
    """How deliveries are sent, retried and given up on."""

    #: Send a "nothing new on your topics" email instead of skipping.
    send_empty: bool = False
    #: Messages per second at most; 0 means as fast as the server takes them.
    rate_limit: float = 0.0
    #: A relay's quotas as (messages, per so many seconds), kept in the database so that
    #: every run and every sender process of the installation shares them.
    quotas: tuple[tuple[int, int], ...] = ()

    def limits(self) -> tuple[tuple[float, float], ...]:
        """Every limit on sending, as (messages, per so many seconds)."""
        pace = ((self.rate_limit, 1.0),) if self.rate_limit > 0 else ()
        return pace + tuple((float(n), float(s)) for n, s in self.quotas)

    #: Tries for a temporary failure (4xx, timeout, dropped connection) within a run.
    retries: int = 3
    #: First pause before a retry; it doubles each time.
    retry_delay: float = 2.0
    #: Temporary failures in a row after which the run stops (the server is down).
    max_consecutive_failures: int = 10
    #: Tries whose outcome is unknown (sent, never answered) before a delivery is given up.
    max_attempts: int = 3
    #: Refused recipients at the start of a run, in a row, that mean the server refuses us.
    max_refused_in_a_row: int = 5
    #: Queued deliveries of an edition older than this are given up (marked failed).
    expire_hours: float = 36.0
    #: How long a sender may hold claimed deliveries before others may take them.
    lease_seconds: float = 300.0


@dataclass(frozen=True)
class LearningSettings:
    """What digest learns from readers' votes, and how it uses it."""

    #: "More like this" and "Less like this" links on every card.
    feedback_links: bool = True
    #: Papers at most in a reader's "Recommended for you" section (0: none).
    recommend_papers: int = 5
    #: How sure the reader's model must be (0 to 1) that a paper outside their topics
    #: is wanted before it is recommended.
    recommend_above: float = 0.6
    #: How much the reader's model orders the papers of a topic (0: bm25 alone, 1: the
    #: model alone; the two orders are fused).
    blend: float = 0.7
    #: Exploration cards in the first ten of an email, once a reader has a model (0: none).
    explore_cards: int = 1


@dataclass(frozen=True)
class InboundSettings:
    """Mail that comes back: bounces, complaints and mailto unsubscribes."""

    #: The envelope sender, as ``bounces@example.org``: each message goes from
    #: ``bounces+<token>@example.org`` (VERP), naming its delivery.  Empty: off.
    bounce_address: str = ""
    #: The List-Unsubscribe mailto, as ``unsubscribe@example.org``: each message names
    #: ``unsubscribe+<token>@example.org``.  Empty: the bounce address, tagged for
    #: the reader.  With no bounce address either, no mailto is offered: nothing
    #: would read it.
    unsubscribe_address: str = ""
    #: Score at which an address is suppressed as bounced (a hard bounce counts 1,
    #: a soft one 0.5, at most once a day).
    bounce_threshold: float = 3.0
    #: Days without a bounce after which an address's score starts again from 0.
    bounce_decay_days: float = 14.0
    #: How often the worker polls the IMAP mailbox (when INBOUND_IMAP_URL is set).
    imap_poll_minutes: float = 5.0
    #: The mailbox bounces and unsubscribes arrive in, as
    #: ``imaps://user:password@host/INBOX`` (from the environment; it holds a password).
    imap_url: str | None = field(default=None, repr=False)

    @property
    def unsubscribe_mailbox(self) -> str:
        """The address whose tagged form List-Unsubscribe offers, or "" for none."""
        return self.unsubscribe_address or self.bounce_address


@dataclass(frozen=True)
class DkimSettings:
    """DKIM signing, on when a private key is configured."""

    private_key_file: Path | None = None
    selector: str | None = None
    domain: str | None = None


@dataclass(frozen=True)
class WebSettings:
    """The self-service pages."""

    #: How long a confirmation link stays valid.
    confirm_hours: float = 72.0
    #: Subscribe attempts allowed per client IP (Flask-Limiter syntax).
    subscribe_limit_per_ip: str = "10 per hour"
    #: Subscribe attempts allowed per email address.
    subscribe_limit_per_address: str = "3 per hour"
    #: Requests to any page allowed per client IP (the sign-up and sign-in limits come
    #: on top): no visitor can slow the site for the others.
    public_limit_per_ip: str = "300 per minute"
    #: Admin sign-in attempts allowed per client IP, and per admin address.
    admin_login_limit_per_ip: str = "10 per 15 minutes"
    admin_login_limit_per_address: str = "5 per 15 minutes"
    #: How long an admin stays signed in.
    admin_session_hours: float = 12.0
    #: Requests to the JSON API allowed per API key (instead of the per-IP limit).
    api_limit_per_token: str = "600 per minute"
    #: Where rate-limit counters live: memory:// (one process) or e.g. redis://.
    ratelimit_storage: str = "memory://"
    #: What ``/metrics`` asks of a scraper (``Authorization: Bearer …``); None: it
    #: answers this machine's clients only.
    metrics_token: str | None = field(default=None, repr=False)
    #: The worker serves its metrics on this port (None: it does not).
    metrics_port: int | None = None
    #: The address the worker's metrics port listens on.
    metrics_bind: str = "127.0.0.1"


@dataclass(frozen=True)
class Settings:
    """Every setting digest uses, validated, with working local defaults."""

    config_path: Path
    #: Newsletter name, used in subjects, pages and the List-Id.
    title: str = "Daily papers"
    #: Timezone that decides what "today" is.
    timezone: str = "UTC"
    sender_name: str = "digest"
    sender_address: str = "digest@localhost"
    #: Cron expression of the worker's run (five fields, or six with seconds first).
    schedule: str = "0 7 * * *"
    misfire_grace_hours: float = 6.0
    #: "fixed": everyone at the scheduled time; "local": at that time in each
    #: subscriber's own timezone.
    delivery_mode: str = "fixed"
    theme: str = "light"
    #: How much of the abstract a card shows below its one-sentence TL;DR (0: none).
    abstract_chars: int = 0
    max_entries: int = 30
    #: Gmail clips HTML over about 102 KB, hiding the footer: cut cards before that.
    max_html_bytes: int = 100_000
    limits: SourceLimits = field(default_factory=SourceLimits)
    fetch: FetchPolicy = field(default_factory=FetchPolicy)
    sources: tuple[SourceSpec, ...] = ()
    database_url: str = DEFAULT_DATABASE_URL
    base_url: str = "http://localhost:8000"
    #: Empty when SECRET_KEY is unset: see ``with_secret_key``.
    secret_key: str = field(default="", repr=False)
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    delivery: DeliverySettings = field(default_factory=DeliverySettings)
    learning: LearningSettings = field(default_factory=LearningSettings)
    inbound: InboundSettings = field(default_factory=InboundSettings)
    dkim: DkimSettings = field(default_factory=DkimSettings)
    outbox_dir: Path = Path("var/outbox")
    web: WebSettings = field(default_factory=lambda: WebSettings())
    #: ``[[newsletters]]``; none declared: one, the main newsletter, made of the above.
    newsletters: tuple[Newsletter, ...] = ()
    #: ``[[webhooks]]``: endpoints told of what happens.
    webhooks: tuple[Webhook, ...] = ()
    #: The newsletter these settings are for (``for_newsletter``).
    newsletter: str = MAIN_NEWSLETTER
    #: The newsletters a run sends (empty: every one).
    sends: tuple[str, ...] = ()
    #: What a reader of this newsletter who chose no topics gets (none: every new paper).
    default_topics: tuple[Topic, ...] = ()

    def all_newsletters(self) -> tuple[Newsletter, ...]:
        """Every newsletter this installation sends, in the order declared."""
        return self.newsletters or (self.completed(Newsletter(MAIN_NEWSLETTER, self.title)),)

    def newsletters_sent(self) -> tuple[Newsletter, ...]:
        """The newsletters a run with these settings sends, in the order declared."""
        return tuple(n for n in self.all_newsletters() if not self.sends or n.slug in self.sends)

    def completed(self, newsletter: Newsletter) -> Newsletter:
        """A declared newsletter with what it leaves out filled in from these settings."""
        own_domain = newsletter.sender_address is not None and domain_of(
            newsletter.sender_address
        ) != domain_of(self.sender_address)
        return replace(
            newsletter,
            sender_name=newsletter.sender_name or self.sender_name,
            sender_address=newsletter.sender_address or self.sender_address,
            theme=newsletter.theme or self.theme,
            schedule=newsletter.schedule or self.schedule,
            # A sender on a domain of its own signs for it: DMARC wants the two aligned.
            dkim_domain=newsletter.dkim_domain or (None if own_domain else self.dkim.domain),
            dkim_selector=newsletter.dkim_selector or self.dkim.selector,
            relays=newsletter.relays or self.smtp.addresses(),
        )

    def for_newsletter(self, newsletter: Newsletter) -> Settings:
        """These settings as one newsletter has them: its name, sender, theme, schedule,
        DKIM domain and relays (a loaded newsletter names each, so that these may be
        another newsletter's settings; its store applies its sources)."""
        return replace(
            self,
            newsletter=newsletter.slug,
            title=newsletter.name,
            sender_name=newsletter.sender_name or self.sender_name,
            sender_address=newsletter.sender_address or self.sender_address,
            theme=newsletter.theme or self.theme,
            schedule=newsletter.schedule or self.schedule,
            default_topics=newsletter.topics,
            dkim=replace(
                self.dkim,
                domain=newsletter.dkim_domain,
                selector=newsletter.dkim_selector or self.dkim.selector,
            ),
            smtp=self.smtp.through(newsletter.relays),
        )

    @property
    def site_url(self) -> str:
        """Where this newsletter's public pages (its archive and feeds) are: the site, or
        ``/n/<slug>`` on it for a newsletter after the first."""
        if self.newsletter == self.all_newsletters()[0].slug:
            return self.base_url
        return f"{self.base_url}/n/{self.newsletter}"

    def narrowed_to(self, slug: str | None) -> Settings:
        """These settings for the newsletter ``slug``, and for it alone (None: for the
        first newsletter, while a run still sends every one)."""
        chosen = self.newsletter_named(slug)
        narrowed = self.for_newsletter(chosen)
        return narrowed if slug is None else replace(narrowed, sends=(chosen.slug,))

    def newsletter_named(self, slug: str | None) -> Newsletter:
        """The newsletter with this slug (None: the first); ``ValueError`` naming the
        ones there are when there is none."""
        known = self.all_newsletters()
        if slug is None:
            return known[0]
        for newsletter in known:
            if newsletter.slug == slug:
                return newsletter
        names = ", ".join(n.slug for n in known)
        raise ValueError(f"no newsletter {slug!r} (this installation has: {names})")

    @property
    def database_url_for_display(self) -> str:
        """The database URL with any password masked, for messages and logs."""
        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", self.database_url)

    @property
    def is_local(self) -> bool:
        """Whether DIGEST_BASE_URL is a loopback address (a demo or a developer's machine)."""
        return checks.is_local_host(self.base_url)

    def source_problems(self) -> list[str]:
        """Sources that cannot work as configured (a file that is not there)."""
        return [
            f"{self.config_path}: [[sources]] {spec.name!r}: no such file: {spec.location}"
            for spec in self.sources
            if not is_url(spec.location) and not Path(spec.location).expanduser().is_file()
        ]

    def secret_key_problem(self) -> str | None:
        """Why the commands that sign links cannot start, if they cannot."""
        if self.secret_key or self.is_local:
            return None
        return (
            f"SECRET_KEY is not set, and DIGEST_BASE_URL ({self.base_url}) is public: "
            f"links would be forgeable; {MAKE_A_KEY}"
        )

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def policy(self) -> Policy:
        """What the decider needs to know (see ``digest.plan``)."""
        local = self.delivery_mode == "local"
        return Policy(
            send_empty=self.delivery.send_empty,
            mode=self.delivery_mode,
            local_time=self.local_delivery_time if local else (0, 0),
            zone=self.zone,
        )

    @property
    def local_delivery_time(self) -> tuple[int, int]:
        """The (hour, minute) of the schedule, for local delivery."""
        fields = self.schedule.split()
        if len(fields) == 6:
            fields = fields[1:]
        return int(fields[1]), int(fields[0])

    def warnings(self) -> list[str]:
        """Settings that work but should not go to production as they are."""
        notes = []
        if not self.secret_key and self.is_local:
            notes.append(
                f"SECRET_KEY is not set: this local installation keeps its own in "
                f"{LOCAL_SECRET_KEY_FILE} (set SECRET_KEY before going public)"
            )
        if self.smtp.host is None:
            notes.append(
                f"SMTP_HOST is not set: mail is written as .eml files to {self.outbox_dir}"
            )
        if not self.inbound.unsubscribe_mailbox:
            notes.append(
                "[inbound] is off: readers can unsubscribe only by the link in each email "
                "(set bounce_address to read bounces, complaints and mailto unsubscribes)"
            )
        return notes
