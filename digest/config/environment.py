"""Deployment and secrets from the environment and ``.env``: each variable declared
once, parsed, and checked."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from digest.config import checks
from digest.config.settings import (
    DEFAULT_DATABASE_URL,
    MAKE_A_KEY,
    MIN_SECRET_KEY_CHARS,
    SMTP_SECURITY_PORTS,
    DkimSettings,
    InboundSettings,
    Newsletter,
    RelayAddress,
    Settings,
    SmtpSettings,
    Webhook,
    WebSettings,
)
from digest.models import MAX_SMTP_CONNECTIONS
from digest.text import is_web_url


def database_problem(url: str) -> str | None:
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
        extra = "; pip install -e '.[postgres]' installs psycopg" if backend == "postgresql" else ""
        return f"the driver for {parsed.drivername!r} is not installed ({e}){extra}"
    if backend == "sqlite" and parsed.database not in (None, "", ":memory:"):
        folder = Path(parsed.database).expanduser().parent
        if not folder.is_dir():
            return f"the folder of the SQLite database does not exist: {folder}"
    return None


def _env_text(value: str) -> str:
    return value


def _env_seconds(value: str) -> float:
    """Seconds above 0, up to an hour."""
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if checks.number(checks.HOUR_SECONDS)(seconds):
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


def _env_relays(text: str) -> tuple[RelayAddress, ...]:
    """Fallback relays as URLs, comma-separated: smtp://user:password@host:587 (STARTTLS),
    smtps://…:465 (TLS from the start), smtp://host:25?security=none (plain)."""
    from urllib.parse import parse_qs, unquote

    relays = []
    for url in (u.strip() for u in text.split(",") if u.strip()):
        parts = urlsplit(url)
        security = parse_qs(parts.query).get(
            "security", ["ssl" if parts.scheme == "smtps" else "starttls"]
        )[0]
        if (
            parts.scheme not in ("smtp", "smtps")
            or not parts.hostname
            or security not in SMTP_SECURITY_PORTS
        ):
            raise ValueError(
                "relay URLs such as smtp://user:password@relay.example.org:587, separated by commas"
            )
        try:
            port = parts.port or SMTP_SECURITY_PORTS[security]
        except ValueError as e:
            raise ValueError("relay URLs with a port number (1-65535)") from e
        relays.append(
            RelayAddress(
                parts.hostname,
                port,
                security,
                unquote(parts.username) if parts.username else None,
                unquote(parts.password) if parts.password else None,
            )
        )
    return tuple(relays)


def _env_file(value: str) -> Path:
    if not Path(value).is_file():
        raise ValueError("an existing file")
    return Path(value)


def _env_base_url(value: str) -> str:
    if not is_web_url(value):
        raise ValueError("an http(s) URL")
    return value.rstrip("/")


class SaidInFull(ValueError):
    """A problem with a variable that is a whole sentence, not what was expected."""


def _env_database_url(value: str) -> str:
    problem = database_problem(value) if value != DEFAULT_DATABASE_URL else None
    if problem:
        raise SaidInFull(problem)
    return value


def _env_secret_key(value: str) -> str:
    if len(value) < MIN_SECRET_KEY_CHARS:
        raise ValueError(
            f"at least {MIN_SECRET_KEY_CHARS} characters, got {len(value)}; {MAKE_A_KEY}"
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
    EnvVar("SMTP_FALLBACK_URLS", SmtpSettings, "fallbacks", _env_relays, raw=True, secret=True),
    EnvVar("DKIM_PRIVATE_KEY_FILE", DkimSettings, "private_key_file", _env_file),
    EnvVar("DKIM_SELECTOR", DkimSettings, "selector", _env_text),
    EnvVar("DKIM_DOMAIN", DkimSettings, "domain", _env_text),
    EnvVar("DIGEST_RATELIMIT_STORAGE", WebSettings, "ratelimit_storage", _env_text),
    EnvVar("METRICS_TOKEN", WebSettings, "metrics_token", _env_text, raw=True, secret=True),
    EnvVar("METRICS_PORT", WebSettings, "metrics_port", _env_port),
    EnvVar("METRICS_BIND", WebSettings, "metrics_bind", _env_text),
    EnvVar("INBOUND_IMAP_URL", InboundSettings, "imap_url", _env_imap_url, raw=True, secret=True),
)


def read_env(env: Mapping[str, str], problems: list[str]) -> dict[type, dict[str, Any]]:
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
        except SaidInFull as e:
            problems.append(f"{var.name}: {e}")
        except ValueError as e:
            problems.append(f"{var.name}: expected {e}" + ("" if var.secret else f", got {text!r}"))
    smtp = found.setdefault(SmtpSettings, {})
    smtp.setdefault("port", SMTP_SECURITY_PORTS[smtp.get("security", "starttls")])
    base_url = found.get(Settings, {}).get("base_url", Settings.base_url)
    if "SMTP_EHLO_NAME" not in given:
        smtp["ehlo_name"] = public_host(base_url)
    dkim = found.get(DkimSettings, {})
    if dkim.get("private_key_file") and not dkim.get("selector"):
        problems.append("DKIM_SELECTOR: required when DKIM_PRIVATE_KEY_FILE is set")
    return found


def newsletter_relays(
    newsletters: Sequence[Newsletter], env: Mapping[str, str], path: Path, problems: list[str]
) -> tuple[Newsletter, ...]:
    """Each newsletter with the relays its ``relay_env`` variable names (first the one it
    sends through, then its fallbacks), read as SMTP_FALLBACK_URLS is."""
    found = []
    for newsletter in newsletters:
        name = newsletter.relay_env
        if name is not None:
            where = f"{path}: [[newsletters]] {newsletter.slug!r}: relay_env: {name}"
            relays: tuple[RelayAddress, ...] = ()
            try:
                relays = _env_relays(env.get(name, ""))
            except ValueError as e:
                problems.append(f"{where}: expected {e}")
            else:
                if not relays:
                    problems.append(f"{where}: not set (a relay URL such as smtp://host:587)")
            newsletter = replace(newsletter, relays=relays)
        found.append(newsletter)
    return tuple(found)


def webhook_secrets(
    webhooks: Sequence[Webhook], env: Mapping[str, str], path: Path, problems: list[str]
) -> tuple[Webhook, ...]:
    """Each webhook with the secret its ``secret_env`` variable holds (``whsec_`` and
    base64, as Standard Webhooks secrets are)."""
    import base64
    import binascii

    found = []
    for webhook in webhooks:
        secret = env.get(webhook.secret_env, "").strip()
        try:
            ok = len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) >= 24
        except (binascii.Error, ValueError):
            ok = False
        if not ok:
            problems.append(
                f"{path}: [[webhooks]] {webhook.url!r}: secret_env: {webhook.secret_env}: "
                "expected "
                'whsec_ and at least 24 bytes in base64 (make one with: python3 -c "import '
                "base64, secrets; print('whsec_' + base64.b64encode(secrets.token_bytes(32))"
                '.decode())")'
            )
        found.append(replace(webhook, secret=secret))
    return tuple(found)


def public_host(base_url: str) -> str | None:
    """The base URL's host when it is public, for EHLO (else None: this machine's FQDN)."""
    host = (urlsplit(base_url).hostname or "").lower()
    if checks.is_local_host(base_url, private_too=True) or "." not in host:
        return None
    from digest.address import AddressError, ascii_domain

    try:
        return ascii_domain(host)
    except AddressError:
        return None
