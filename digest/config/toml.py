"""Product settings from ``config/digest.toml``: each declared once (key, field, check),
read with one problem line per bad key."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

from digest.calendars import CALENDARS, default_calendar
from digest.config import checks
from digest.config.settings import (
    DeliverySettings,
    InboundSettings,
    LearningSettings,
    Newsletter,
    Settings,
    SourceSpec,
    Webhook,
    WebSettings,
)
from digest.ingest import FORMATS, FetchPolicy, SourceLimits, is_url
from digest.models import Topic
from digest.subscribers import SubscriberError, parse_topic
from digest.text import is_web_url


@dataclass(frozen=True)
class Declared:
    """One product setting: where it lives in the TOML, which field it fills, how it is
    checked.  Its default is that field's default, and nowhere else."""

    table: str
    key: str
    owner: type
    field: str
    check: checks.Check
    #: Turns a checked TOML value into the field's value (a list into networks, say).
    convert: Callable[[Any], Any] | None = None

    @property
    def default(self) -> Any:
        return next(f.default for f in fields(self.owner) if f.name == self.field)


def _declare(
    owner: type,
    table: str,
    *rows: tuple[str, str, checks.Check] | tuple[str, str, checks.Check, Any],
) -> tuple[Declared, ...]:
    return tuple(Declared(table, key, owner, name, *rest) for key, name, *rest in rows)


#: Every setting of config/digest.toml, once.  A test checks that the shipped file
#: shows each one with its default.
TOML_SETTINGS: tuple[Declared, ...] = (
    *_declare(
        Settings,
        "digest",
        ("title", "title", checks.one_line_text),
        ("timezone", "timezone", checks.timezone),
    ),
    *_declare(
        Settings,
        "sender",
        ("name", "sender_name", checks.one_line_text),
        ("address", "sender_address", checks.email_address),
    ),
    *_declare(
        Settings,
        "schedule",
        ("cron", "schedule", checks.cron),
        (
            "misfire_grace_hours",
            "misfire_grace_hours",
            checks.number(7 * checks.DAY_HOURS),
            checks.to_float,
        ),
        ("delivery", "delivery_mode", checks.delivery_mode),
    ),
    *_declare(
        Settings,
        "email",
        ("theme", "theme", checks.theme),
        ("abstract_chars", "abstract_chars", checks.whole(0, 1_000_000)),
        ("max_entries", "max_entries", checks.positive_int),
        ("max_html_bytes", "max_html_bytes", checks.whole(10_000, 10_000_000)),
    ),
    *_declare(
        DeliverySettings,
        "delivery",
        ("send_empty", "send_empty", checks.boolean),
        ("rate_limit_per_second", "rate_limit", checks.number(1e6, zero=True), checks.to_float),
        ("rate_limits", "quotas", checks.quota_list, checks.quotas),
        ("retries", "retries", checks.whole(1, 100)),
        (
            "retry_delay_seconds",
            "retry_delay",
            checks.number(checks.HOUR_SECONDS, zero=True),
            checks.to_float,
        ),
        ("max_consecutive_failures", "max_consecutive_failures", checks.positive_int),
        ("max_attempts", "max_attempts", checks.whole(1, 100)),
        ("max_refused_in_a_row", "max_refused_in_a_row", checks.whole(1, 1000)),
        ("expire_hours", "expire_hours", checks.number(30 * checks.DAY_HOURS), checks.to_float),
        (
            "lease_seconds",
            "lease_seconds",
            checks.number(checks.DAY_HOURS * checks.HOUR_SECONDS),
            checks.to_float,
        ),
    ),
    *_declare(
        LearningSettings,
        "learning",
        ("feedback_links", "feedback_links", checks.boolean),
        ("recommend_papers", "recommend_papers", checks.whole(0, 100)),
        ("recommend_above", "recommend_above", checks.number(1.0, zero=True), checks.to_float),
        ("blend", "blend", checks.number(1.0, zero=True), checks.to_float),
        ("explore_cards", "explore_cards", checks.whole(0, 5)),
    ),
    *_declare(
        InboundSettings,
        "inbound",
        ("bounce_address", "bounce_address", checks.optional_address),
        ("unsubscribe_address", "unsubscribe_address", checks.optional_address),
        ("bounce_threshold", "bounce_threshold", checks.number(100.0), checks.to_float),
        ("bounce_decay_days", "bounce_decay_days", checks.number(365.0), checks.to_float),
        ("imap_poll_minutes", "imap_poll_minutes", checks.number(24 * 60.0), checks.to_float),
    ),
    *_declare(
        WebSettings,
        "web",
        ("confirm_hours", "confirm_hours", checks.number(365 * checks.DAY_HOURS), checks.to_float),
        ("subscribe_limit_per_ip", "subscribe_limit_per_ip", checks.rate_limit),
        ("subscribe_limit_per_address", "subscribe_limit_per_address", checks.rate_limit),
        ("public_limit_per_ip", "public_limit_per_ip", checks.rate_limit),
        ("admin_login_limit_per_ip", "admin_login_limit_per_ip", checks.rate_limit),
        ("admin_login_limit_per_address", "admin_login_limit_per_address", checks.rate_limit),
        ("admin_session_hours", "admin_session_hours", checks.number(24 * 30.0), checks.to_float),
        ("api_limit_per_token", "api_limit_per_token", checks.rate_limit),
    ),
    *_declare(
        SourceLimits,
        "limits",
        ("max_title_chars", "max_title_chars", checks.positive_int),
        ("max_abstract_chars", "max_abstract_chars", checks.positive_int),
        ("max_authors", "max_authors", checks.positive_int),
    ),
    *_declare(
        FetchPolicy,
        "limits",
        ("max_source_bytes", "max_bytes", checks.whole(1, 2**31 - 1)),
        ("fetch_timeout_seconds", "timeout", checks.number(checks.HOUR_SECONDS), checks.to_float),
        ("fetch_retries", "retries", checks.whole(0, 10)),
        ("private_networks", "private_networks", checks.network_list, checks.networks),
    ),
)


#: Keys that were replaced, and what replaced them.
_MOVED = {
    ("sender", "unsubscribe_mailto"): "[inbound] unsubscribe_address, which digest reads "
    "(a mailto nothing reads loses the unsubscribes of Apple Mail and Outlook readers)",
}


class TomlReader:
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

    def get(self, table: str, key: str, default: Any, check: checks.Check) -> Any:
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


T = TypeVar("T")


def read_sources(raw: Any, path: Path, problems: list[str]) -> tuple[SourceSpec, ...]:
    """The ``[[sources]]`` tables, each checked; one problem line for each bad one."""
    return _tables(
        raw, ("sources", "location", "name"), lambda item: _source(item, path), path, problems
    )


def _tables(
    raw: Any,
    names: tuple[str, str, str],
    read: Callable[[Any], tuple[list[str], T | None]],
    path: Path,
    problems: list[str],
) -> tuple[T, ...]:
    """An array of tables (``names``: its own, the key each table must have, the key
    no two may share), each read by ``read``; one problem line for each bad one."""
    table, required, unique = names
    if not isinstance(raw, list):
        problems.append(f"{path}: {table}: expected [[{table}]] tables with a {required}")
        return ()
    found: list[T] = []
    for number, item in enumerate(raw, start=1):
        said, value = read(item)
        problems += [f"{path}: [[{table}]] #{number}: {problem}" for problem in said]
        if value is not None:
            found.append(value)
    keys = [getattr(value, unique) for value in found]
    for duplicate in sorted({k for k in keys if keys.count(k) > 1}):
        problems.append(f"{path}: [[{table}]]: the {unique} {duplicate!r} is used twice")
    return tuple(found)


#: A newsletter's slug: in URLs and on the command line.
_SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?")

#: The keys of a ``[[newsletters]]`` table besides its slug, name and sources.
_NEWSLETTER_KEYS: dict[str, checks.Check] = {
    "sender_name": checks.one_line_text,
    "sender_address": checks.email_address,
    "theme": checks.theme,
    "schedule": checks.cron,
    "dkim_domain": checks.one_line_text,
    "dkim_selector": checks.one_line_text,
    "relay_env": checks.env_name,
}


def read_newsletters(
    raw: Any, sources: Sequence[SourceSpec], path: Path, problems: list[str]
) -> tuple[Newsletter, ...]:
    """The ``[[newsletters]]`` tables, each checked; one problem line for each bad one."""
    names = {s.name for s in sources}
    return _tables(
        raw, ("newsletters", "slug", "slug"), lambda item: _newsletter(item, names), path, problems
    )


def read_webhooks(raw: Any, path: Path, problems: list[str]) -> tuple[Webhook, ...]:
    """The ``[[webhooks]]`` tables, each checked; one problem line for each bad one."""
    return _tables(raw, ("webhooks", "url", "url"), _webhook, path, problems)


def _webhook(item: Any) -> tuple[list[str], Webhook | None]:
    """One ``[[webhooks]]`` table: what is wrong with it, and the webhook, if it is one."""
    from digest.events import EVENT_TYPES

    if not isinstance(item, dict):
        return ["expected a table with a url"], None
    unknown = set(item) - {"url", "events", "secret_env"}
    said = [f"unknown key {sorted(unknown)[0]!r} (a typo?)"] if unknown else []
    url = item.get("url")
    if not isinstance(url, str) or not is_web_url(url):
        return [*said, f"url: expected an http(s) URL, got {url!r}"], None
    wanted = item.get("events", ["*"])
    if not isinstance(wanted, list) or not all(isinstance(w, str) for w in wanted):
        return [*said, 'events: expected a list of event names, or ["*"]'], None
    events = EVENT_TYPES if "*" in wanted else tuple(wanted)
    for kind in events:
        if kind not in EVENT_TYPES:
            said.append(f"events: no event {kind!r} (there are: {', '.join(EVENT_TYPES)})")
    secret_env = item.get("secret_env")
    expected = checks.env_name(secret_env)
    if expected or not isinstance(secret_env, str):
        return [*said, f"secret_env: expected {expected}, got {secret_env!r}"], None
    return said, Webhook(url=url, events=events, secret_env=secret_env)


def _newsletter(item: Any, source_names: set[str]) -> tuple[list[str], Newsletter | None]:
    """One ``[[newsletters]]`` table: what is wrong with it, and the newsletter, if it is one."""
    if not isinstance(item, dict):
        return ["expected a table with a slug"], None
    unknown = set(item) - {"slug", "name", "sources", "topics", *_NEWSLETTER_KEYS}
    said = [f"unknown key {sorted(unknown)[0]!r} (a typo?)"] if unknown else []
    slug = item.get("slug")
    if not isinstance(slug, str) or not _SLUG.fullmatch(slug):
        return [*said, f"slug: expected 1-40 of a-z, 0-9 and '-', got {slug!r}"], None
    name = item.get("name", slug)
    if checks.one_line_text(name):
        said.append(f"name: expected one line of text, got {name!r}")
    wanted = item.get("sources")
    if wanted is not None and (
        not isinstance(wanted, list) or not all(isinstance(w, str) for w in wanted)
    ):
        said.append("sources: expected a list of [[sources]] names")
        wanted = None
    for missing in [w for w in wanted or () if w not in source_names]:
        said.append(f"sources: no [[sources]] is named {missing!r}")
    for key, check in _NEWSLETTER_KEYS.items():
        if key in item and (expected := check(item[key])):
            said.append(f"{key}: expected {expected}, got {item[key]!r}")
    values = {key: item[key] for key in _NEWSLETTER_KEYS if key in item}
    sources = None if wanted is None else tuple(wanted)
    topics, problem = _topics(item.get("topics", []))
    said += [problem] if problem else []
    return said, Newsletter(slug=slug, name=name, sources=sources, topics=topics, **values)


def _topics(raw: Any) -> tuple[tuple[Topic, ...], str | None]:
    """A newsletter's default topics, each "LABEL: QUERY" or "QUERY" as a reader writes
    them; and what is wrong with them."""
    if not isinstance(raw, list) or not all(isinstance(t, str) for t in raw):
        return (), 'topics: expected a list of topics such as ["Vision: diffusion OR gan"]'
    try:
        return tuple(parse_topic(text) for text in raw), None
    except SubscriberError as e:
        return (), f"topics: {e.message}"


def _source(item: Any, path: Path) -> tuple[list[str], SourceSpec | None]:
    """One ``[[sources]]`` table: what is wrong with it, and the source, if it is one."""
    if not isinstance(item, dict):
        return ["expected a table with a location"], None
    unknown = set(item) - {"name", "location", "format", "calendar"}
    said = [f"unknown key {sorted(unknown)[0]!r} (a typo?)"] if unknown else []
    location = item.get("location")
    if not isinstance(location, str) or not location.strip():
        return [*said, "location: expected a file path or an http(s) URL"], None
    if is_url(location) and not is_web_url(location):
        return [*said, f"location: only http(s) URLs are fetched, got {location!r}"], None
    kind = item.get("format")
    if kind is not None and kind not in FORMATS:
        return [*said, f"format: expected one of {', '.join(FORMATS)}, got {kind!r}"], None
    if not is_url(location) and not Path(location).expanduser().is_absolute():
        location = str((path.parent / location).resolve())
    name = item.get("name", location)
    if checks.one_line_text(name):
        return [*said, f"name: expected one line of text, got {name!r}"], None
    calendar = item.get("calendar", default_calendar(location))
    if calendar not in CALENDARS:
        return [*said, f"calendar: expected one of {', '.join(CALENDARS)}, got {calendar!r}"], None
    return said, SourceSpec(name=name, location=location, format=kind, calendar=calendar)
