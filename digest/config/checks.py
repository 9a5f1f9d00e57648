"""Checks of product settings: each returns None when a value is fine, else what is
expected (one phrase for the problem line)."""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from digest.ingest import IpNetwork

Check = Callable[[Any], str | None]


def whole(low: int, high: int) -> Check:
    """A whole number from low to high."""

    def check(value: Any) -> str | None:
        ok = isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
        return None if ok else f"a whole number from {low:,} to {high:,}"

    return check


def number(high: float, *, zero: bool = False) -> Check:
    """A finite number above 0 (or from 0, with ``zero``) up to high."""

    def check(value: Any) -> str | None:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        ok = ok and math.isfinite(value) and (value >= 0 if zero else value > 0) and value <= high
        return None if ok else f"a number {'from 0' if zero else 'above 0'} up to {high:,g}"

    return check


positive_int = whole(1, 1_000_000)


DAY_HOURS, HOUR_SECONDS = 24.0, 3600.0


def optional_address(value: Any) -> str | None:
    """An email address, or "" for off."""
    return None if value == "" else email_address(value)


def boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else "true or false"


def one_line_text(value: Any) -> str | None:
    ok = isinstance(value, str) and value.strip() != "" and "\n" not in value and "\r" not in value
    return None if ok else "one line of text"


def env_name(value: Any) -> str | None:
    ok = isinstance(value, str) and re.fullmatch(r"[A-Z_][A-Z0-9_]{0,63}", value) is not None
    return None if ok else "the name of an environment variable, such as THEORY_SMTP_URLS"


def email_address(value: Any) -> str | None:
    ok = isinstance(value, str) and value.count("@") == 1 and " " not in value.strip()
    ok = ok and all(value.split("@")) and not any(c in value for c in "\r\n<>")
    return None if ok else "an email address such as digest@example.org"


def theme(value: Any) -> str | None:
    from digest.render import shipped_themes

    themes = shipped_themes()
    return None if value in themes else f"one of the themes {', '.join(themes)}"


def timezone(value: Any) -> str | None:
    if not isinstance(value, str):
        return "an IANA timezone name such as Europe/Paris"
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        return "an IANA timezone name such as Europe/Paris"
    return None


def cron(value: Any) -> str | None:
    from digest.schedule import make_trigger

    expected = "a cron expression with five fields (or six, seconds first), such as '0 7 * * *'"
    if not isinstance(value, str):
        return expected
    try:
        make_trigger(value, ZoneInfo("UTC"))
    except ValueError as e:
        return f"{expected} ({e})"
    return None


def rate_limit(value: Any) -> str | None:
    from limits import parse_many

    expected = "a rate such as '10 per hour'"
    if not isinstance(value, str):
        return expected
    try:
        parse_many(value)
    except ValueError:
        return expected
    return None


def quota_list(value: Any) -> str | None:
    expected = "a list of rates such as ['14 per second', '50000 per day']"
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return expected
    if any(rate_limit(v) for v in value):
        return expected
    return None


def quotas(value: list[str]) -> tuple[tuple[int, int], ...]:
    """Each rate as (messages, per so many seconds)."""
    from limits import parse_many

    return tuple((item.amount, item.get_expiry()) for v in value for item in parse_many(v))


def network_list(value: Any) -> str | None:
    expected = "a list of networks such as ['10.0.0.0/8', 'fd00::/8']"
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return expected
    try:
        networks(value)
    except ValueError:
        return expected
    return None


def networks(value: list[str] | None) -> tuple[IpNetwork, ...] | None:
    return None if value is None else tuple(ipaddress.ip_network(v, strict=False) for v in value)


def delivery_mode(value: Any) -> str | None:
    return None if value in ("fixed", "local") else '"fixed" or "local"'


def to_float(value: Any) -> float:
    return float(value)


def is_local_host(url: str, *, private_too: bool = False) -> bool:
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
