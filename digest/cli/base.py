"""The ``digest`` group, its per-invocation state, and what every command shares."""

from __future__ import annotations

import logging
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, NoReturn, TypeVar

import click

from digest import __version__
from digest.app import PermanentFailure, Store, TemporaryFailure, shipped_themes
from digest.cli import output
from digest.cli.output import EXIT_PARTIAL, problem
from digest.config import (
    DEFAULT_DATABASE_URL,
    Settings,
    load_settings,
    with_secret_key,
)
from digest.errors import ConfigError, DigestError
from digest.logs import configure_logging
from digest.models import Subscriber
from digest.subscriptions import ConsentRefused

F = TypeVar("F", bound=Callable[..., Any])

#: How far ahead ``run --date --force`` goes without ``--far-ahead``.
MAX_DAYS_AHEAD = 3


class App:
    """Per-invocation state: global options, settings loaded on first use."""

    def __init__(self, config_path: str | None, verbose: bool) -> None:
        self.config_path = config_path
        self.verbose = verbose
        #: The newsletter a command is about (``--newsletter``; None: the first).
        self.newsletter: str | None = None
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        """The settings, as the newsletter the command is about has them."""
        if self._settings is None:
            loaded = load_settings(self.config_path)
            try:
                self._settings = loaded.narrowed_to(self.newsletter)
            except ValueError as e:
                raise DigestError(str(e), hint="see `digest newsletters list`") from None
        return self._settings

    @property
    def signing_settings(self) -> Settings:
        """The settings, for a command that signs links: refuses to start without a key."""
        self._settings = with_secret_key(self.settings)
        return self._settings

    def open_store(self) -> Store:
        """The database, as the newsletter the command is about sees it."""
        settings = self.settings
        url = settings.database_url
        store = Store.open(url, create_folder=url == DEFAULT_DATABASE_URL)
        newsletter = settings.newsletter_named(settings.newsletter)
        return store.scoped(newsletter.slug, newsletter.sources)

    @contextmanager
    def store(self) -> Iterator[Store]:
        opened = self.open_store()
        try:
            yield opened
        finally:
            opened.close()


def newsletter_option(command: F) -> F:
    """``--newsletter SLUG``: the newsletter a command is about (default: the first)."""

    def remember(ctx: click.Context, _: click.Parameter, value: str | None) -> None:
        if value is not None:
            ctx.ensure_object(App).newsletter = value

    return click.option(
        "--newsletter",
        metavar="SLUG",
        expose_value=False,
        callback=remember,
        help="The newsletter (default: the first of [[newsletters]]; see `newsletters list`).",
    )(command)


class _DigestGroup(click.Group):
    """Turns ``DigestError``, and any other error, into one line on stderr and exit code 2."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # -v works anywhere on the line ("digest run -v"), as the hints ask for it.
        verbose = [a for a in args if a in ("-v", "--verbose")]
        if verbose and "--" not in args:
            args = ["-v", *(a for a in args if a not in ("-v", "--verbose"))]
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        verbose = bool(ctx.params.get("verbose"))
        try:
            return super().invoke(ctx)
        except DigestError as e:
            fail(e, verbose=verbose)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except (TemporaryFailure, PermanentFailure) as e:  # the relay is down or said no
            fail(
                DigestError(
                    f"the mail server: {' '.join(str(e).split())[:300]}",
                    hint="check SMTP_HOST, SMTP_PORT and SMTP_SECURITY (in .env); nothing was "
                    "recorded as sent, so running again is safe",
                ),
                verbose=verbose,
            )
        except BrokenPipeError:
            # Output piped into `head`, say, which has read enough: stop quietly.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise SystemExit(0) from None
        except Exception as e:  # a bug: still one line, the traceback only with -v
            fail(
                DigestError(
                    f"unexpected {type(e).__name__}: {' '.join(str(e).split())[:300]}",
                    hint="run again with -v to see the traceback, and please report it",
                ),
                verbose=verbose,
            )


def fail(error: DigestError, *, verbose: bool) -> NoReturn:
    if verbose:
        traceback.print_exc(file=sys.stderr)
    if isinstance(error, ConfigError):
        for each in error.problems:
            click.echo(f"digest: config error: {each}", err=True)
    else:
        click.echo(f"digest: error: {error.message}", err=True)
    if error.hint:
        click.echo(f"hint: {error.hint}", err=True)
    sys.exit(output.EXIT_ERROR)


@click.group(cls=_DigestGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    metavar="FILE",
    help="Product settings file (default: $DIGEST_CONFIG, else config/digest.toml).",
)
@click.option("-v", "--verbose", is_flag=True, help="Log more, and show tracebacks on errors.")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Log lines on stderr as key=value text or as JSON objects.",
)
@click.version_option(__version__, prog_name="digest")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, verbose: bool, log_format: str) -> None:
    """digest: a daily research-digest newsletter.

    Reads new papers from feeds and page dumps, keeps a seen-list so each
    paper counts once, and mails each subscriber the papers on their topics.
    """
    quiet = ctx.invoked_subcommand != "worker"
    configure_logging(
        level=logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO,
        json_format=log_format == "json",
    )
    ctx.obj = App(config_path, verbose)


@cli.group()
def config() -> None:
    """Inspect and validate the settings."""


@config.command("check")
@click.pass_obj
def config_check(app: App) -> None:
    """Validate config/digest.toml and the environment; print one line per problem."""
    settings = app.settings
    problems = settings.source_problems() + [p for p in [settings.secret_key_problem()] if p]
    problems += [p for p in [Store.unreachable(settings.database_url)] if p]
    if problems:
        raise ConfigError(problems)
    for note in settings.warnings():
        click.echo(f"warning: {note}", err=True)
    click.echo(
        f"ok: {settings.config_path} ({len(settings.sources)} sources, "
        f"database {settings.database_url_for_display})"
    )


def refused(error: ConsentRefused) -> NoReturn:
    problem(error.message)
    click.echo(f"hint: {error.hint}", err=True)
    sys.exit(EXIT_PARTIAL)


def known(subscriber: Subscriber | None, email: str) -> Subscriber:
    """The subscriber an action found; for an address that is none, one line and exit 1
    (the one code for "not a subscriber": the command ran, the reader named is not there)."""
    if subscriber is None:
        problem(f"error: {email} is not a subscriber")
        click.echo("hint: see 'digest subscribers list'", err=True)
        sys.exit(EXIT_PARTIAL)
    return subscriber


def named(store: Store, email: str) -> Subscriber:
    """The subscriber with this address (``known`` when there is none)."""
    return known(store.get_subscriber(email), email)


def utc_now() -> datetime:
    return datetime.now(UTC)


def themes() -> list[str]:
    return shipped_themes()


@cli.group()
def db() -> None:
    """Manage the database schema."""


@db.command("upgrade")
@click.pass_obj
def db_upgrade(app: App) -> None:
    """Apply the pending schema migrations (Alembic); back the database up first."""
    url = app.settings.database_url
    store = Store.open(url, upgrade=True, create_folder=url == DEFAULT_DATABASE_URL)
    before, revision = store.opened_at_revision, store.schema_revision()
    store.close()
    where = f"database {app.settings.database_url_for_display}"
    if before is None:
        click.echo(f"{where}: created the schema (revision {revision})")
    elif before != revision:
        click.echo(f"{where}: upgraded from schema revision {before} to {revision}")
    else:
        click.echo(f"{where} is at schema revision {revision}: nothing to do")
