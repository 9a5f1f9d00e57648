"""Load settings once, at the edge: ``config/digest.toml``, the environment and ``.env``.

This is the only package that reads the environment or the config file.
Everything below receives a typed ``Settings`` (or the parts it needs), so
tests build settings from plain dicts with ``load_settings(environ=...)``.
The settings are declared in ``settings``, the TOML keys in ``toml``, the
environment variables in ``environment``, and their checks in ``checks``.
"""

from __future__ import annotations

import os
import secrets
import tomllib
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from digest.config.environment import (
    ENV_SETTINGS,
    newsletter_relays,
    read_env,
    webhook_secrets,
)
from digest.config.settings import (
    DEFAULT_DATABASE_URL,
    LOCAL_SECRET_KEY_FILE,
    MIN_SECRET_KEY_CHARS,
    DeliverySettings,
    DkimSettings,
    InboundSettings,
    LearningSettings,
    Newsletter,
    Settings,
    SmtpSettings,
    SourceSpec,
    WebSettings,
)
from digest.config.toml import (
    TOML_SETTINGS,
    TomlReader,
    read_newsletters,
    read_sources,
    read_webhooks,
)
from digest.errors import ConfigError
from digest.ingest import FetchPolicy, SourceLimits
from digest.resources import resource_path


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
    data = _read_toml(path)
    env_problems: list[str] = []
    from_env = read_env(env, env_problems)
    toml = TomlReader(data, path, problems)
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
        **_arrays_of_tables(data, env, path, problems),
    )
    toml.report_unknown_keys(known_tables={"sources", "newsletters", "webhooks"})
    problems += _local_delivery_problems(settings_from_toml, path)
    problems += env_problems
    if problems:
        raise ConfigError(problems)
    top = from_env.get(Settings, {})
    settings = Settings(
        config_path=path,
        fetch=FetchPolicy(contact=top.get("base_url", Settings.base_url), **fetch),
        smtp=SmtpSettings(**from_env.get(SmtpSettings, {})),
        dkim=DkimSettings(**from_env.get(DkimSettings, {})),
        **settings_from_toml,
        **top,
    )
    return replace(settings, newsletters=tuple(map(settings.completed, settings.newsletters)))


def _arrays_of_tables(
    data: dict[str, Any], env: Mapping[str, str], path: Path, problems: list[str]
) -> dict[str, Any]:
    """``[[sources]]``, ``[[newsletters]]`` and ``[[webhooks]]``, each checked, with the
    secrets the latter two name read from the environment."""
    sources = read_sources(data.get("sources", []), path, problems)
    declared = read_newsletters(data.get("newsletters", []), sources, path, problems)
    hooks = read_webhooks(data.get("webhooks", []), path, problems)
    return {
        "sources": sources,
        "newsletters": newsletter_relays(declared, env, path, problems),
        "webhooks": webhook_secrets(hooks, env, path, problems),
    }


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            [f"{path}: config file not found (set DIGEST_CONFIG or --config)"]
        ) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError([f"{path}: cannot read the config file: {e}"]) from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError([f"{path}: invalid TOML: {e}"]) from e


def _local_delivery_problems(read: Mapping[str, Any], path: Path) -> list[str]:
    """Delivery at each reader's local time needs a cron with one minute and one hour."""
    if read["delivery_mode"] != "local":
        return []
    cron = read["schedule"].split()
    if all(f.isdigit() for f in cron[-5:-3]):
        return []
    return [
        f'{path}: [schedule] delivery = "local" needs a cron with one minute and '
        f"one hour, such as '0 7 * * *', got {read['schedule']!r}"
    ]


__all__ = [
    "DEFAULT_DATABASE_URL",
    "ENV_SETTINGS",
    "TOML_SETTINGS",
    "DeliverySettings",
    "DkimSettings",
    "InboundSettings",
    "LearningSettings",
    "Newsletter",
    "Settings",
    "SmtpSettings",
    "SourceSpec",
    "WebSettings",
    "load_settings",
    "read_environment",
    "with_secret_key",
]
