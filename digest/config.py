"""Load settings once, at the edge: ``config/digest.toml``, the environment and ``.env``.

This is the only module that reads the environment or the config file.
Everything below receives a typed ``Settings`` (or the parts it needs), so
tests build settings from plain dicts with ``load_settings(environ=...)``.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import secrets
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values

from digest.errors import ConfigError
from digest.ingest import FORMATS, SourceLimits
from digest.ingest.retrieve import FetchPolicy, IpNetwork, is_url
from digest.models import MAX_SMTP_CONNECTIONS
from digest.plan import Policy
from digest.resources import resource_path

DEFAULT_DATABASE_URL = "sqlite:///var/digest.sqlite3"
#: The shortest SECRET_KEY accepted: it signs every link in every email.
MIN_SECRET_KEY_CHARS = 32
#: Where a local installation (a loopback DIGEST_BASE_URL) keeps the key it made itself.
LOCAL_SECRET_KEY_FILE = Path("var/secret_key")
_MAKE_A_KEY = "make one with: python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
SMTP_SECURITY_PORTS = {"starttls": 587, "ssl": 465, "none": 25}


@dataclass(frozen=True)
class SourceSpec:
    """A configured source: a display name, a path or URL, and its format if it is given."""

    name: str
    location: str
    #: One of ``digest.ingest.FORMATS``; None: detected from the content.
    format: str | None = None


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
    #: Concurrent connections used to send one batch.
    connections: int = 1
    #: How long to wait for the answer to the end of DATA (RFC 5321 suggests 10 minutes).
    data_timeout: float = 600.0
    #: The name given in EHLO; None: the machine's fully qualified name.
    ehlo_name: str | None = None


@dataclass(frozen=True)
class DeliverySettings:
    """How deliveries are sent, retried and given up on."""

    #: Send a "nothing new on your topics" email instead of skipping.
    send_empty: bool = False
    #: Messages per second at most; 0 means as fast as the server takes them.
    rate_limit: float = 0.0
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
    #: model alone).
    blend: float = 0.5


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
    #: Where rate-limit counters live: memory:// (one process) or e.g. redis://.
    ratelimit_storage: str = "memory://"


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

    @property
    def database_url_for_display(self) -> str:
        """The database URL with any password masked, for messages and logs."""
        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", self.database_url)

    @property
    def is_local(self) -> bool:
        """Whether DIGEST_BASE_URL is a loopback address (a demo or a developer's machine)."""
        return _is_local_host(self.base_url)

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
            f"links would be forgeable; {_MAKE_A_KEY}"
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


def with_secret_key(settings: Settings, key_file: Path = LOCAL_SECRET_KEY_FILE) -> Settings:
    """The settings with the key that signs links: SECRET_KEY, or for a local
    installation one made once and kept in ``key_file`` (mode 0600).

    Raises ``ConfigError`` when neither is possible: no built-in key is ever used.
    """
    if settings.secret_key:
        return settings
    problem = settings.secret_key_problem()
    if problem:
        raise ConfigError([problem])
    try:
        key = key_file.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        key = secrets.token_urlsafe(48)
        key_file.parent.mkdir(parents=True, exist_ok=True)
        try:
            descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first: use theirs
            return with_secret_key(settings, key_file)
        with os.fdopen(descriptor, "w", encoding="ascii") as file:
            file.write(key + "\n")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError([f"{key_file}: cannot read the local secret key: {e}"]) from e
    if len(key) < MIN_SECRET_KEY_CHARS:
        raise ConfigError([f"{key_file}: the local secret key is too short; delete the file"])
    return replace(settings, secret_key=key)


def default_config_path(environ: Mapping[str, str]) -> Path:
    """Return the config file: ``DIGEST_CONFIG``, ./config/digest.toml, or the shipped one."""
    if environ.get("DIGEST_CONFIG"):
        return Path(environ["DIGEST_CONFIG"])
    local = Path("config/digest.toml")
    return local if local.is_file() else resource_path("config", "digest.toml")


def read_environment(dotenv_path: Path | None = None) -> dict[str, str]:
    """Return ``.env`` values overlaid by the process environment (the environment wins)."""
    path = dotenv_path or Path(".env")
    values = (
        {k: v for k, v in dotenv_values(path).items() if v is not None} if path.is_file() else {}
    )
    values.update(os.environ)
    return values


def load_settings(
    config_path: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Load and validate every setting; raise ``ConfigError`` listing all problems."""
    env = read_environment() if environ is None else dict(environ)
    path = Path(config_path) if config_path else default_config_path(env)
    problems: list[str] = []
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            [f"{path}: config file not found (set DIGEST_CONFIG or --config)"]
        ) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError([f"{path}: cannot read the config file: {e}"]) from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError([f"{path}: invalid TOML: {e}"]) from e

    env_problems: list[str] = []
    from_env = _read_env(env, env_problems)
    toml = _TomlReader(data, path, problems)
    read = {
        cls: toml.read(cls)
        for cls in (
            Settings,
            DeliverySettings,
            LearningSettings,
            InboundSettings,
            WebSettings,
            SourceLimits,
        )
    }
    fetch = toml.read(FetchPolicy)
    settings_from_toml: dict[str, Any] = dict(
        **read[Settings],
        limits=SourceLimits(**read[SourceLimits]),
        delivery=DeliverySettings(**read[DeliverySettings]),
        learning=LearningSettings(**read[LearningSettings]),
        inbound=InboundSettings(**read[InboundSettings], **from_env.get(InboundSettings, {})),
        web=WebSettings(**read[WebSettings], **from_env.get(WebSettings, {})),
        sources=_read_sources(data.get("sources", []), path, problems),
    )
    toml.report_unknown_keys(known_tables={"sources"})
    if settings_from_toml["delivery_mode"] == "local":
        cron = settings_from_toml["schedule"].split()
        if not all(f.isdigit() for f in cron[-5:-3]):
            problems.append(
                f'{path}: [schedule] delivery = "local" needs a cron with one minute and '
                f"one hour, such as '0 7 * * *', got {settings_from_toml['schedule']!r}"
            )
    problems += env_problems
    if problems:
        raise ConfigError(problems)
    top = from_env.get(Settings, {})
    return Settings(
        config_path=path,
        fetch=FetchPolicy(contact=top.get("base_url", Settings.base_url), **fetch),
        smtp=SmtpSettings(**from_env.get(SmtpSettings, {})),
        dkim=DkimSettings(**from_env.get(DkimSettings, {})),
        **settings_from_toml,
        **top,
    )


# -- validation helpers: each returns None when the value is fine, else what is expected.

Check = Callable[[Any], str | None]


def _whole(low: int, high: int) -> Check:
    """A whole number from low to high."""

    def check(value: Any) -> str | None:
        ok = isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
        return None if ok else f"a whole number from {low:,} to {high:,}"

    return check


def _number(high: float, *, zero: bool = False) -> Check:
    """A finite number above 0 (or from 0, with ``zero``) up to high."""

    def check(value: Any) -> str | None:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        ok = ok and math.isfinite(value) and (value >= 0 if zero else value > 0) and value <= high
        return None if ok else f"a number {'from 0' if zero else 'above 0'} up to {high:,g}"

    return check


_positive_int = _whole(1, 1_000_000)
_DAY_HOURS, _HOUR_SECONDS = 24.0, 3600.0


def _optional_address(value: Any) -> str | None:
    """An email address, or "" for off."""
    return None if value == "" else _email_address(value)


def _boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else "true or false"


def _one_line_text(value: Any) -> str | None:
    ok = isinstance(value, str) and value.strip() != "" and "\n" not in value and "\r" not in value
    return None if ok else "one line of text"


def _email_address(value: Any) -> str | None:
    ok = isinstance(value, str) and value.count("@") == 1 and " " not in value.strip()
    ok = ok and all(value.split("@")) and not any(c in value for c in "\r\n<>")
    return None if ok else "an email address such as digest@example.org"


def _theme(value: Any) -> str | None:
    from digest.render import available_themes

    themes = available_themes(resource_path("templates"))
    return None if value in themes else f"one of the themes {', '.join(themes)}"


def _timezone(value: Any) -> str | None:
    if not isinstance(value, str):
        return "an IANA timezone name such as Europe/Paris"
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        return "an IANA timezone name such as Europe/Paris"
    return None


def _cron(value: Any) -> str | None:
    from digest.schedule import make_trigger

    expected = "a cron expression with five fields (or six, seconds first), such as '0 7 * * *'"
    if not isinstance(value, str):
        return expected
    try:
        make_trigger(value, ZoneInfo("UTC"))
    except ValueError:
        return expected
    return None


def _rate_limit(value: Any) -> str | None:
    from limits import parse_many

    expected = "a rate such as '10 per hour'"
    if not isinstance(value, str):
        return expected
    try:
        parse_many(value)
    except ValueError:
        return expected
    return None


def _network_list(value: Any) -> str | None:
    expected = "a list of networks such as ['10.0.0.0/8', 'fd00::/8']"
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return expected
    try:
        _networks(value)
    except ValueError:
        return expected
    return None


def _networks(value: list[str] | None) -> tuple[IpNetwork, ...] | None:
    return None if value is None else tuple(ipaddress.ip_network(v, strict=False) for v in value)


def _delivery_mode(value: Any) -> str | None:
    return None if value in ("fixed", "local") else '"fixed" or "local"'


@dataclass(frozen=True)
class Declared:
    """One product setting: where it lives in the TOML, which field it fills, how it is
    checked.  Its default is that field's default, and nowhere else."""

    table: str
    key: str
    owner: type
    field: str
    check: Check
    #: Turns a checked TOML value into the field's value (a list into networks, say).
    convert: Callable[[Any], Any] | None = None

    @property
    def default(self) -> Any:
        return next(f.default for f in fields(self.owner) if f.name == self.field)


def _declare(owner: type, table: str, *rows: tuple[str, str, Check] | tuple[str, str, Check, Any]):  # type: ignore[no-untyped-def]
    return tuple(Declared(table, key, owner, name, *rest) for key, name, *rest in rows)


def _float(value: Any) -> float:
    return float(value)


#: Every setting of config/digest.toml, once.  A test checks that the shipped file
#: shows each one with its default.
TOML_SETTINGS: tuple[Declared, ...] = (
    *_declare(
        Settings, "digest", ("title", "title", _one_line_text), ("timezone", "timezone", _timezone)
    ),
    *_declare(
        Settings,
        "sender",
        ("name", "sender_name", _one_line_text),
        ("address", "sender_address", _email_address),
    ),
    *_declare(
        Settings,
        "schedule",
        ("cron", "schedule", _cron),
        ("misfire_grace_hours", "misfire_grace_hours", _number(7 * _DAY_HOURS), _float),
        ("delivery", "delivery_mode", _delivery_mode),
    ),
    *_declare(
        Settings,
        "email",
        ("theme", "theme", _theme),
        ("abstract_chars", "abstract_chars", _whole(0, 1_000_000)),
        ("max_entries", "max_entries", _positive_int),
        ("max_html_bytes", "max_html_bytes", _whole(10_000, 10_000_000)),
    ),
    *_declare(
        DeliverySettings,
        "delivery",
        ("send_empty", "send_empty", _boolean),
        ("rate_limit_per_second", "rate_limit", _number(1e6, zero=True), _float),
        ("retries", "retries", _whole(1, 100)),
        ("retry_delay_seconds", "retry_delay", _number(_HOUR_SECONDS, zero=True), _float),
        ("max_consecutive_failures", "max_consecutive_failures", _positive_int),
        ("max_attempts", "max_attempts", _whole(1, 100)),
        ("max_refused_in_a_row", "max_refused_in_a_row", _whole(1, 1000)),
        ("expire_hours", "expire_hours", _number(30 * _DAY_HOURS), _float),
        ("lease_seconds", "lease_seconds", _number(_DAY_HOURS * _HOUR_SECONDS), _float),
    ),
    *_declare(
        LearningSettings,
        "learning",
        ("feedback_links", "feedback_links", _boolean),
        ("recommend_papers", "recommend_papers", _whole(0, 100)),
        ("recommend_above", "recommend_above", _number(1.0, zero=True), _float),
        ("blend", "blend", _number(1.0, zero=True), _float),
    ),
    *_declare(
        InboundSettings,
        "inbound",
        ("bounce_address", "bounce_address", _optional_address),
        ("unsubscribe_address", "unsubscribe_address", _optional_address),
        ("bounce_threshold", "bounce_threshold", _number(100.0), _float),
        ("bounce_decay_days", "bounce_decay_days", _number(365.0), _float),
        ("imap_poll_minutes", "imap_poll_minutes", _number(24 * 60.0), _float),
    ),
    *_declare(
        WebSettings,
        "web",
        ("confirm_hours", "confirm_hours", _number(365 * _DAY_HOURS), _float),
        ("subscribe_limit_per_ip", "subscribe_limit_per_ip", _rate_limit),
        ("subscribe_limit_per_address", "subscribe_limit_per_address", _rate_limit),
        ("public_limit_per_ip", "public_limit_per_ip", _rate_limit),
        ("admin_login_limit_per_ip", "admin_login_limit_per_ip", _rate_limit),
        ("admin_login_limit_per_address", "admin_login_limit_per_address", _rate_limit),
        ("admin_session_hours", "admin_session_hours", _number(24 * 30.0), _float),
    ),
    *_declare(
        SourceLimits,
        "limits",
        ("max_title_chars", "max_title_chars", _positive_int),
        ("max_abstract_chars", "max_abstract_chars", _positive_int),
        ("max_authors", "max_authors", _positive_int),
    ),
    *_declare(
        FetchPolicy,
        "limits",
        ("max_source_bytes", "max_bytes", _whole(1, 2**31 - 1)),
        ("fetch_timeout_seconds", "timeout", _number(_HOUR_SECONDS), _float),
        ("fetch_retries", "retries", _whole(0, 10)),
        ("private_networks", "private_networks", _network_list, _networks),
    ),
)


#: Keys that were replaced, and what replaced them.
_MOVED = {
    ("sender", "unsubscribe_mailto"): "[inbound] unsubscribe_address, which digest reads "
    "(a mailto nothing reads loses the unsubscribes of Apple Mail and Outlook readers)",
}


class _TomlReader:
    """Reads typed values from the parsed TOML, collecting one problem line per bad key."""

    def __init__(self, data: dict[str, Any], path: Path, problems: list[str]) -> None:
        self.data = data
        self.path = path
        self.problems = problems
        self.known: dict[str, set[str]] = {}

    def read(self, owner: type) -> dict[str, Any]:
        """The fields of ``owner`` that the TOML sets, checked (defaults where it is silent)."""
        values = {}
        for declared in TOML_SETTINGS:
            if declared.owner is owner:
                value = self.get(declared.table, declared.key, declared.default, declared.check)
                convert = declared.convert
                values[declared.field] = convert(value) if convert and value is not None else value
        return values

    def get(self, table: str, key: str, default: Any, check: Check) -> Any:
        self.known.setdefault(table, set()).add(key)
        section = self.data.get(table, {})
        if not isinstance(section, dict):
            self.problems.append(f"{self.path}: [{table}]: expected a table")
            return default
        if key not in section:
            return default
        value = section[key]
        expected = check(value)
        if expected:
            self.problems.append(
                f"{self.path}: [{table}] {key}: expected {expected}, got {value!r}"
            )
            return default
        return value

    def report_unknown_keys(self, known_tables: set[str]) -> None:
        for table, section in self.data.items():
            if table in known_tables:
                continue
            if table not in self.known:
                self.problems.append(f"{self.path}: [{table}]: unknown table (a typo?)")
                continue
            for key in section if isinstance(section, dict) else ():
                if (table, key) in _MOVED:
                    self.problems.append(f"{self.path}: [{table}] {key}: now {_MOVED[table, key]}")
                elif key not in self.known[table]:
                    self.problems.append(f"{self.path}: [{table}] {key}: unknown key (a typo?)")


def _read_sources(raw: Any, path: Path, problems: list[str]) -> tuple[SourceSpec, ...]:
    if not isinstance(raw, list):
        problems.append(f"{path}: sources: expected [[sources]] tables with a location")
        return ()
    specs: list[SourceSpec] = []
    for number, item in enumerate(raw, start=1):
        where = f"{path}: [[sources]] #{number}"
        if not isinstance(item, dict):
            problems.append(f"{where}: expected a table with a location")
            continue
        unknown = set(item) - {"name", "location", "format"}
        if unknown:
            problems.append(f"{where}: unknown key {sorted(unknown)[0]!r} (a typo?)")
        location = item.get("location")
        if not isinstance(location, str) or not location.strip():
            problems.append(f"{where}: location: expected a file path or an http(s) URL")
            continue
        if is_url(location) and location.split("://", 1)[0].lower() not in ("http", "https"):
            problems.append(f"{where}: location: only http(s) URLs are fetched, got {location!r}")
            continue
        kind = item.get("format")
        if kind is not None and kind not in FORMATS:
            problems.append(f"{where}: format: expected one of {', '.join(FORMATS)}, got {kind!r}")
            continue
        if not is_url(location) and not Path(location).expanduser().is_absolute():
            location = str((path.parent / location).resolve())
        name = item.get("name", location)
        if _one_line_text(name):
            problems.append(f"{where}: name: expected one line of text, got {name!r}")
            continue
        specs.append(SourceSpec(name=name, location=location, format=kind))
    names = [s.name for s in specs]
    for duplicate in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"{path}: [[sources]]: the name {duplicate!r} is used twice")
    return tuple(specs)


def _is_local_host(url: str, *, private_too: bool = False) -> bool:
    """Whether a URL's host is this machine (or, with ``private_too``, any non-public one)."""
    host = (urlsplit(url).hostname or "").lower()
    if not host:
        return private_too
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return not address.is_global if private_too else address.is_loopback


def _database_problem(url: str) -> str | None:
    """What is wrong with a database URL: its form, its backend, its driver or its folder."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    expected = f"a URL such as {DEFAULT_DATABASE_URL} or postgresql+psycopg://user@host/db"
    shown = re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)
    try:
        parsed = make_url(url)
    except ArgumentError:
        return f"expected {expected}, got {shown!r}"
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        return f"digest stores its data in SQLite or PostgreSQL, not {backend!r} ({shown})"
    try:
        parsed.get_dialect().import_dbapi()
    except (NoSuchModuleError, ImportError) as e:
        return f"the driver for {parsed.drivername!r} is not installed ({e})"
    if backend == "sqlite" and parsed.database not in (None, "", ":memory:"):
        folder = Path(parsed.database).expanduser().parent
        if not folder.is_dir():
            return f"the folder of the SQLite database does not exist: {folder}"
    return None


# -- the environment: deployment and secrets, each variable declared once.
# A parser takes the variable's text (never empty) and returns the field's
# value, or raises ValueError saying what it expected.


def _env_text(value: str) -> str:
    return value


def _env_seconds(value: str) -> float:
    """Seconds above 0, up to an hour."""
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if _number(_HOUR_SECONDS)(seconds):
        raise ValueError("seconds above 0 up to 3,600")
    return seconds


def _env_whole(low: int, high: int) -> Callable[[str], int]:
    def parse(value: str) -> int:
        if not (value.isdigit() and low <= int(value) <= high):
            raise ValueError(f"a number from {low} to {high}")
        return int(value)

    return parse


def _env_port(value: str) -> int:
    if not (value.isdigit() and 0 < int(value) < 65536):
        raise ValueError("a port number (1-65535)")
    return int(value)


def _env_security(value: str) -> str:
    if value.lower() not in SMTP_SECURITY_PORTS:
        raise ValueError("starttls, ssl or none")
    return value.lower()


def _env_file(value: str) -> Path:
    if not Path(value).is_file():
        raise ValueError("an existing file")
    return Path(value)


def _env_base_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError("an http(s) URL")
    return value.rstrip("/")


def _env_database_url(value: str) -> str:
    problem = _database_problem(value) if value != DEFAULT_DATABASE_URL else None
    if problem:
        raise ValueError(problem)
    return value


def _env_secret_key(value: str) -> str:
    if len(value) < MIN_SECRET_KEY_CHARS:
        raise ValueError(
            f"at least {MIN_SECRET_KEY_CHARS} characters, got {len(value)}; {_MAKE_A_KEY}"
        )
    return value


def _env_ehlo_name(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f.:]+\]", value):
        raise ValueError("a host name")
    return value


@dataclass(frozen=True)
class EnvVar:
    """One environment variable: the field it fills and how its text is read.  Its
    default is that field's default, and nowhere else; ``.env.example`` shows it."""

    name: str
    owner: type
    field: str
    parse: Callable[[str], Any]
    #: Kept exactly as given (a password may start or end with a space).
    raw: bool = False
    #: Never shown in a message.
    secret: bool = False
    #: The default follows from other settings (shown empty in ``.env.example``).
    derived: bool = False

    @property
    def default(self) -> Any:
        found = next(f for f in fields(self.owner) if f.name == self.field)
        return found.default


#: Every variable digest reads besides DIGEST_CONFIG (see ``default_config_path``).
def _env_imap_url(text: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(text)
    if parts.scheme not in ("imap", "imaps") or not parts.hostname or not parts.username:
        raise ValueError("a URL such as imaps://user:password@imap.example.org/INBOX")
    return text


ENV_SETTINGS: tuple[EnvVar, ...] = (
    EnvVar("DIGEST_DATABASE_URL", Settings, "database_url", _env_database_url),
    EnvVar("DIGEST_BASE_URL", Settings, "base_url", _env_base_url),
    EnvVar("SECRET_KEY", Settings, "secret_key", _env_secret_key, secret=True),
    EnvVar("DIGEST_OUTBOX_DIR", Settings, "outbox_dir", Path),
    EnvVar("SMTP_HOST", SmtpSettings, "host", _env_text),
    EnvVar("SMTP_PORT", SmtpSettings, "port", _env_port, derived=True),
    EnvVar("SMTP_USERNAME", SmtpSettings, "username", _env_text),
    EnvVar("SMTP_PASSWORD", SmtpSettings, "password", _env_text, raw=True, secret=True),
    EnvVar("SMTP_SECURITY", SmtpSettings, "security", _env_security),
    EnvVar("SMTP_TIMEOUT", SmtpSettings, "timeout", _env_seconds),
    EnvVar("SMTP_CA_FILE", SmtpSettings, "ca_file", _env_file),
    EnvVar("SMTP_CONNECTIONS", SmtpSettings, "connections", _env_whole(1, MAX_SMTP_CONNECTIONS)),
    EnvVar("SMTP_DATA_TIMEOUT", SmtpSettings, "data_timeout", _env_seconds),
    EnvVar("SMTP_EHLO_NAME", SmtpSettings, "ehlo_name", _env_ehlo_name, derived=True),
    EnvVar("DKIM_PRIVATE_KEY_FILE", DkimSettings, "private_key_file", _env_file),
    EnvVar("DKIM_SELECTOR", DkimSettings, "selector", _env_text),
    EnvVar("DKIM_DOMAIN", DkimSettings, "domain", _env_text),
    EnvVar("DIGEST_RATELIMIT_STORAGE", WebSettings, "ratelimit_storage", _env_text),
    EnvVar("INBOUND_IMAP_URL", InboundSettings, "imap_url", _env_imap_url, raw=True, secret=True),
)


def _read_env(env: Mapping[str, str], problems: list[str]) -> dict[type, dict[str, Any]]:
    """The fields each settings class takes from the environment, checked."""
    found: dict[type, dict[str, Any]] = {}
    given: set[str] = set()
    for var in ENV_SETTINGS:
        text = env.get(var.name, "")
        text = text if var.raw else text.strip()
        if not text:
            continue
        given.add(var.name)
        try:
            found.setdefault(var.owner, {})[var.field] = var.parse(text)
        except ValueError as e:
            problems.append(f"{var.name}: expected {e}" + ("" if var.secret else f", got {text!r}"))
    smtp = found.setdefault(SmtpSettings, {})
    smtp.setdefault("port", SMTP_SECURITY_PORTS[smtp.get("security", "starttls")])
    base_url = found.get(Settings, {}).get("base_url", Settings.base_url)
    if "SMTP_EHLO_NAME" not in given:
        smtp["ehlo_name"] = _public_host(base_url)
    dkim = found.get(DkimSettings, {})
    if dkim.get("private_key_file") and not dkim.get("selector"):
        problems.append("DKIM_SELECTOR: required when DKIM_PRIVATE_KEY_FILE is set")
    return found


def _public_host(base_url: str) -> str | None:
    """The base URL's host when it is public, for EHLO (else None: this machine's FQDN)."""
    host = (urlsplit(base_url).hostname or "").lower()
    if _is_local_host(base_url, private_too=True) or "." not in host:
        return None
    from digest.address import AddressError, ascii_domain

    try:
        return ascii_domain(host)
    except AddressError:
        return None
