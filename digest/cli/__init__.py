"""The ``digest`` command: a thin shell that validates input, calls one function
of the library and formats its result.

Errors from digest become one line on stderr plus a hint (a traceback only
with ``-v``).  Exit codes: 0 ok, 1 some items failed, 2 configuration or
storage error.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO, NoReturn, TextIO

import click

from digest import __version__
from digest.app import (
    RunInProgress,
    Store,
    SubscriberRow,
    accounts,
    available_themes,
    job,
    queries,
    transport_for,
    tryouts,
)
from digest.cli import report
from digest.cli.report import EXIT_PARTIAL, problem
from digest.config import (
    DEFAULT_DATABASE_URL,
    Settings,
    SourceSpec,
    load_settings,
    with_secret_key,
)
from digest.errors import ConfigError, DigestError, StorageError
from digest.likes import typed_likes
from digest.logs import configure_logging
from digest.models import STATES, Subscriber
from digest.resources import resource_path
from digest.subscribers import (
    SubscriberInput,
    UnreadableCsv,
    check_input,
    check_theme,
    decode_csv,
    parse_topic,
    read_csv,
    write_csv,
)
from digest.subscriptions import ConsentRefused
from digest.worker import Worker

#: How far ahead ``run --date --force`` goes without ``--far-ahead``.
MAX_DAYS_AHEAD = 3


class _App:
    """Per-invocation state: global options, settings loaded on first use."""

    def __init__(self, config_path: str | None, verbose: bool) -> None:
        self.config_path = config_path
        self.verbose = verbose
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config_path)
        return self._settings

    @property
    def signing_settings(self) -> Settings:
        """The settings, for a command that signs links: refuses to start without a key."""
        self._settings = with_secret_key(self.settings)
        return self._settings

    def open_store(self) -> Store:
        url = self.settings.database_url
        return Store.open(url, create_folder=url == DEFAULT_DATABASE_URL)

    @contextmanager
    def store(self) -> Iterator[Store]:
        opened = self.open_store()
        try:
            yield opened
        finally:
            opened.close()


class _DigestGroup(click.Group):
    """Turns ``DigestError``, and any other error, into one line on stderr and exit code 2."""

    def invoke(self, ctx: click.Context) -> Any:
        verbose = bool(ctx.params.get("verbose"))
        try:
            return super().invoke(ctx)
        except DigestError as e:
            _fail(e, verbose=verbose)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except BrokenPipeError:
            # Output piped into `head`, say, which has read enough: stop quietly.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise SystemExit(0) from None
        except Exception as e:  # a bug: still one line, the traceback only with -v
            _fail(
                DigestError(
                    f"unexpected {type(e).__name__}: {' '.join(str(e).split())[:300]}",
                    hint="run again with -v to see the traceback, and please report it",
                ),
                verbose=verbose,
            )


def _fail(error: DigestError, *, verbose: bool) -> NoReturn:
    if verbose:
        traceback.print_exc(file=sys.stderr)
    if isinstance(error, ConfigError):
        for each in error.problems:
            click.echo(f"digest: config error: {each}", err=True)
    else:
        click.echo(f"digest: error: {error.message}", err=True)
    if error.hint:
        click.echo(f"hint: {error.hint}", err=True)
    sys.exit(report.EXIT_ERROR)


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
    ctx.obj = _App(config_path, verbose)


@cli.group()
def config() -> None:
    """Inspect and validate the settings."""


@config.command("check")
@click.pass_obj
def config_check(app: _App) -> None:
    """Validate config/digest.toml and the environment; print one line per problem."""
    settings = app.settings
    problems = settings.source_problems() + [p for p in [settings.secret_key_problem()] if p]
    if problems:
        raise ConfigError(problems)
    for note in settings.warnings():
        click.echo(f"warning: {note}", err=True)
    click.echo(
        f"ok: {settings.config_path} ({len(settings.sources)} sources, "
        f"database {settings.database_url_for_display})"
    )


@cli.command()
@click.argument("sources", nargs=-1, metavar="[SOURCE]...")
@click.option(
    "--date",
    "edition_date",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Date of the entries in page dumps (YYYY-MM-DD), instead of the page's date line.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
@click.pass_obj
def ingest(
    app: _App, sources: tuple[str, ...], edition_date: datetime | None, as_json: bool
) -> None:
    """Read the configured sources (or the given paths/URLs) and store new entries.

    Reports per source how many entries were read, new and already seen.
    Exits 0 when every source was read (empty days included), 1 when any
    source failed, 2 on a configuration or storage error.
    """
    settings, started = app.settings, time.monotonic()
    specs = [SourceSpec(name=s, location=s) for s in sources] or list(settings.sources)
    if not specs:
        raise DigestError("no sources to ingest", hint="add [[sources]] to the config or name one")
    with (
        app.store() as store,
        report.progress("ingesting", enabled=not as_json, total=len(specs)) as shown,
    ):
        done = job.ingest(
            store,
            specs,
            now=_utc_now(),
            zone=settings.zone,
            limits=settings.limits,
            fetch=settings.fetch,
            edition_date=edition_date.date() if edition_date else None,
            on_source_done=shown.advance,
            stop=_stop_on_signals(),
        )
        total = store.count_entries()
    sys.exit(report.ingest(done, time.monotonic() - started, total, store.url, as_json=as_json))


@cli.command()
@click.argument("email")
@click.option("--name", help="Display name used in the To: header.")
@click.option(
    "--topic",
    "topics",
    multiple=True,
    metavar="QUERY",
    help='A topic query, or "LABEL: QUERY"; repeat for several. None means every new paper.',
)
@click.option("--theme", help="Email theme (light, dark, compact, ...).")
@click.option("--timezone", help="The subscriber's timezone, such as Europe/Paris.")
@click.option(
    "--like",
    "likes",
    multiple=True,
    metavar="ARXIV_ID",
    help="A paper they like (arXiv id or URL), to learn from; repeat for several.",
)
@click.option(
    "--cadence",
    metavar="CADENCE",
    help="daily (the default), weekly:<day> such as weekly:monday, or threshold:<papers> "
    "(an email once so many new papers match, and at least weekly).",
)
@click.option(
    "--invite",
    is_flag=True,
    help="Mail a confirmation link instead: nothing changes until the person confirms.",
)
@click.pass_obj
def subscribe(
    app: _App,
    email: str,
    name: str | None,
    topics: tuple[str, ...],
    theme: str | None,
    timezone: str | None,
    likes: tuple[str, ...],
    cadence: str | None,
    invite: bool,
) -> None:
    """Add a subscriber (active at once), or update one.

    Options not given leave an existing subscriber's values as they are;
    giving --topic replaces all their topics.  Someone who unsubscribed is
    never brought back this way (exit 1, row unchanged): --invite mails them
    a confirmation link, and they stay unsubscribed until they open it.
    """
    item = check_input(
        email,
        name=name,
        topics=list(topics) if topics else None,
        theme=theme,
        timezone=timezone,
        cadence=cadence,
        themes=_themes(),
    )
    liked, problems = typed_likes(" ".join(likes))
    if problems:
        raise click.BadParameter("; ".join(problems), param_hint="--like")
    if invite:
        return _invite(app, item)
    with app.store() as store:
        try:
            subscriber, created = accounts.add(store, item, now=_utc_now())
        except ConsentRefused as e:
            _refused(e)
        accounts.like(store, subscriber.id, liked, now=_utc_now())
    topic_note = ", ".join(str(t) for t in subscriber.topics) or "every new paper"
    verb = "subscribed" if created else "updated"
    like_note = f"; {len(liked)} liked" if liked else ""
    rhythm = f"; {subscriber.cadence}" if subscriber.cadence != "daily" else ""
    click.echo(
        f"{verb} {subscriber.email} ({subscriber.state}; topics: {topic_note}{rhythm}{like_note})"
    )


def _refused(error: ConsentRefused) -> NoReturn:
    problem(error.message)
    click.echo(f"hint: {error.hint}", err=True)
    sys.exit(EXIT_PARTIAL)


def _invite(app: _App, item: SubscriberInput) -> None:
    settings = app.signing_settings
    with app.store() as store:
        subscriber, mail = accounts.sign_up(
            store, settings, transport_for(settings), item, now=_utc_now(), channel="invite"
        )
    if mail == "withheld":
        problem(
            f"{subscriber.email} was sent a sign-up note recently; not mailed again "
            "(a {subscriber.state} address gets at most one a while, whoever asks)"
        )
        raise SystemExit(EXIT_PARTIAL)
    if mail == "already":
        click.echo(f"{subscriber.email} is {subscriber.state} already; told them so")
    else:
        click.echo(f"invited {subscriber.email}: they stay {subscriber.state} until they confirm")


@cli.command()
@click.argument("email")
@click.pass_obj
def unsubscribe(app: _App, email: str) -> None:
    """Stop mailing a subscriber; the row stays so they are never mailed again."""
    with app.store() as store:
        subscriber = accounts.leave(store, email, now=_utc_now(), channel="cli")
    click.echo(f"unsubscribed {_known(subscriber, email).email}")


@cli.command()
@click.argument("email")
@click.pass_obj
def pause(app: _App, email: str) -> None:
    """Stop mailing an active subscriber for now; 'digest resume' starts again."""
    _set_paused(app, email, paused=True)


@cli.command()
@click.argument("email")
@click.pass_obj
def resume(app: _App, email: str) -> None:
    """Start mailing a paused subscriber again."""
    _set_paused(app, email, paused=False)


def _set_paused(app: _App, email: str, *, paused: bool) -> None:
    with app.store() as store:
        found = accounts.set_paused(store, email, paused=paused, now=_utc_now())
    subscriber = _known(found, email)
    if subscriber.status != "active":
        problem(f"{subscriber.email} is {subscriber.state}: nothing to change")
        sys.exit(EXIT_PARTIAL)
    click.echo(f"{subscriber.email} is {subscriber.state}")


def _known(subscriber: Subscriber | None, email: str) -> Subscriber:
    if subscriber is None:
        problem(f"error: {email} is not a subscriber")
        sys.exit(EXIT_PARTIAL)
    return subscriber


def _named(store: Store, email: str) -> Subscriber:
    subscriber = store.get_subscriber(email)
    if subscriber is None:
        raise DigestError(f"{email} is not a subscriber", hint="see 'digest subscribers list'")
    return subscriber


@cli.group("subscribers")
def subscribers_group() -> None:
    """List, import and export subscribers."""


@subscribers_group.command("list")
@click.option("--status", type=click.Choice(STATES), help="Only subscribers in this state.")
@click.option("--search", default="", help="Only those with this in their address or name.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--csv", "as_csv", is_flag=True, help="Print the table as CSV.")
@click.pass_obj
def subscribers_list(
    app: _App, status: str | None, search: str, as_json: bool, as_csv: bool
) -> None:
    """List subscribers: address, name, state (pending, active, paused, unsubscribed,
    bounced, complained), theme, when they joined, when last mailed, and topics."""
    with app.store() as store:
        found = list(_all_subscribers(store, status, search))
        counts = store.count_subscribers()
    report.subscribers(found, counts, as_json=as_json, as_csv=as_csv)


def _all_subscribers(store: Store, state: str | None, search: str) -> Iterator[SubscriberRow]:
    offset, page = 0, 1000
    while True:
        _, rows = store.find_subscribers(state=state, search=search, offset=offset, limit=page)
        yield from rows
        if len(rows) < page:
            return
        offset += page


@subscribers_group.command("show")
@click.argument("email")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_obj
def subscribers_show(app: _App, email: str, as_json: bool) -> None:
    """Show one subscriber: every change of their state (when, to what, by which
    channel), what came back about their mail (bounces, complaints), their theme,
    timezone and feedback, and every delivery with the server's reply."""
    with app.store() as store:
        reader = _known(store.get_subscriber(email), email)
        found = queries.reader_history(store, app.settings, reader, now=_utc_now())
    report.reader(found, as_json=as_json)


@subscribers_group.command("import")
@click.argument("csv_file", type=click.File("rb"), metavar="FILE.csv")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
@click.pass_obj
def subscribers_import(app: _App, csv_file: BinaryIO, as_json: bool) -> None:
    """Import subscribers from CSV (header: email, and optionally name, topics, theme,
    timezone, status).

    Topics go in one cell, separated by ';', each "LABEL: QUERY" or "QUERY".
    Bad rows are reported by line number and skipped; good rows go in.  New
    addresses are created active (or as the status column says); an address
    that unsubscribed is never brought back: its row is left unchanged and
    reported.  Exits 1 when any row was skipped.
    """
    started = time.monotonic()
    try:
        rows, problems = read_csv(decode_csv(csv_file.read()), themes=_themes())
    except UnreadableCsv as e:
        raise DigestError(f"{csv_file.name}:{e.line}: {e.reason}; nothing was imported") from e
    with app.store() as store:
        done = accounts.import_rows(store, rows, problems, now=_utc_now())
    sys.exit(report.imported(done, csv_file.name, time.monotonic() - started, as_json=as_json))


@cli.group("likes")
def likes_group() -> None:
    """Papers readers like, which their ranking learns from."""


@likes_group.command("import")
@click.argument("email")
@click.argument("library_file", type=click.File("rb"), metavar="FILE.bib|FILE.ris")
@click.pass_obj
def likes_import(app: _App, email: str, library_file: BinaryIO) -> None:
    """Take a reader's library (BibTeX or RIS from Zotero, Mendeley, Google Scholar) as
    papers they like: arXiv ids from eprint, URL and DOI fields, the rest by title."""
    with app.store() as store:
        subscriber = _named(store, email)
        try:
            report = accounts.import_library(
                store, subscriber.id, library_file.read(), now=_utc_now()
            )
        except ValueError as e:
            problem(f"{library_file.name}: {e}")
            raise SystemExit(EXIT_PARTIAL) from e
    for line in report.problems:
        click.echo(f"{library_file.name}: {line}", err=True)
    click.echo(
        f"{subscriber.email}: {report.papers} papers liked from {library_file.name}, "
        f"{report.matched} of them already in digest (the rest count once they arrive)"
    )
    if report.problems:
        raise SystemExit(EXIT_PARTIAL)


@subscribers_group.command("export")
@click.argument(
    "csv_file", type=click.File("w", encoding="utf-8"), default="-", metavar="[FILE.csv]"
)
@click.pass_obj
def subscribers_export(app: _App, csv_file: TextIO) -> None:
    """Write every subscriber (unsubscribed ones included) as CSV that import reads back."""
    with app.store() as store:
        for chunk in write_csv(accounts.with_likes(store, store.iter_subscribers())):
            csv_file.write(chunk)


@cli.command()
@click.argument("query")
@click.option("--source", "sources", multiple=True, help="Only entries from this source.")
@click.option("--days", default=30, show_default=True, help="Search the papers of so many days.")
@click.option("--limit", default=20, show_default=True, help="Show at most this many.")
@click.option("--email", help="Order as this reader's digest would, with why their model agrees.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_obj
def match(
    app: _App,
    query: str,
    sources: tuple[str, ...],
    days: int,
    limit: int,
    email: str | None,
    as_json: bool,
) -> None:
    """Show which stored entries a topic query selects, best first, with scores.

    Try a filter here before saving it as a topic.  Syntax: words (all must
    match), "exact phrases", OR, -word or NOT word, (parentheses), prefix*,
    title:word, abstract:word, author:name.  A query that starts with "-"
    goes after "--", so that it is not taken for an option:
    digest match -- "-survey diffusion".
    """
    topic = parse_topic(query)
    since = _utc_now() - timedelta(days=days)
    with app.store() as store:
        reader = _named(store, email) if email else None
        searched, found = tryouts.match(
            store,
            app.settings,
            topic.query,
            since=since,
            sources=sources or None,
            subscriber=reader,
        )
    report.matches(topic.query, searched, found, limit, as_json=as_json)


@cli.command()
@click.option("--email", help="Render what this subscriber would get (topics and theme).")
@click.option("--topic", "topics", multiple=True, metavar="QUERY", help="Topics to try instead.")
@click.option(
    "--theme", help="Theme to render with (default: the subscriber's, else the config's)."
)
@click.option(
    "--date",
    "day",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Edition date (default: today; before that edition exists, the papers not yet sent).",
)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False), help="HTML file to write (.txt beside it)."
)
@click.pass_obj
def preview(
    app: _App,
    email: str | None,
    topics: tuple[str, ...],
    theme: str | None,
    day: datetime | None,
    output: str | None,
) -> None:
    """Render a digest to files without sending it, and print their paths."""
    if email and topics:
        raise click.UsageError("give --email or --topic, not both")
    settings = app.signing_settings
    with app.store() as store:
        subscriber = _named(store, email) if email else None
        wanted = list(subscriber.topics) if subscriber else [parse_topic(t) for t in topics]
        look = check_theme(theme or (subscriber and subscriber.theme) or settings.theme, _themes())
        found = tryouts.preview(
            store,
            settings,
            day=day.date() if day else _utc_now().astimezone(settings.zone).date(),
            topics=wanted,
            now=_utc_now(),
            subscriber=subscriber,
            theme=look,
        )
    rendered = tryouts.render_preview(settings, found, theme=look, subscriber=subscriber)
    html = Path(output or f"var/preview/{found.day.isoformat()}-{look}.html")
    html.parent.mkdir(parents=True, exist_ok=True)
    html.write_text(rendered.html, encoding="utf-8")
    html.with_suffix(".txt").write_text(rendered.text, encoding="utf-8")
    report.preview(found, rendered, str(html), str(html.with_suffix(".txt")), email)


@cli.command("run")
@click.option(
    "--date",
    "day",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Edition date (default: today in the configured timezone).",
)
@click.option("--dry-run", is_flag=True, help="Plan and render without sending or storing.")
@click.option("--no-ingest", is_flag=True, help="Do not read the sources first.")
@click.option(
    "--force",
    is_flag=True,
    help=f"Accept a --date after today, up to {MAX_DAYS_AHEAD} days (to prepare one).",
)
@click.option(
    "--far-ahead",
    is_flag=True,
    help=f"With --force, accept a --date more than {MAX_DAYS_AHEAD} days ahead too.",
)
@click.option(
    "--wait",
    "wait_seconds",
    default=0.0,
    metavar="SECONDS",
    help="If another run is in progress, wait this long for it (default: exit at once).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
@click.pass_obj
def run_command(
    app: _App,
    day: datetime | None,
    dry_run: bool,
    no_ingest: bool,
    force: bool,
    far_ahead: bool,
    wait_seconds: float,
    as_json: bool,
) -> None:
    """Ingest the sources, build the edition, and deliver every subscriber's digest.

    Safe to rerun at any moment: nobody gets the same edition twice, and
    deliveries left queued (server down, killed run) are sent by the next run.
    One run at a time: while another process runs, this one exits 1 without
    sending (or waits, with --wait).  SIGTERM or Ctrl-C finishes the message
    in flight and leaves the rest queued (exit 0).  Exits 0 when everything
    was delivered, 1 when some deliveries failed or are still queued (or a
    source failed), 2 on a configuration, storage or mail-server login error.
    """
    edition_day = day.date() if day else None
    today = _utc_now().astimezone(app.settings.zone).date()
    if edition_day is not None and edition_day > today and not force:
        raise click.BadParameter(
            f"{edition_day} is after today ({today}): an edition is for a day that has come; "
            "add --force to build it anyway",
            param_hint="--date",
        )
    if edition_day is not None and (edition_day - today).days > MAX_DAYS_AHEAD and not far_ahead:
        # A typo (2027 for 2026) would move every weekly and threshold reader's period
        # a year ahead, and the editions between would gather into emails without them.
        raise click.BadParameter(
            f"{edition_day} is {(edition_day - today).days} days after today ({today}): a "
            f"typo? --force goes up to {MAX_DAYS_AHEAD} days; add --far-ahead if you mean it",
            param_hint="--date",
        )
    if dry_run:
        with app.store() as store:
            started = time.monotonic()
            done = job.dry_run(store, app.signing_settings, now=_utc_now, day=edition_day)
        sys.exit(report.run(done, time.monotonic() - started, as_json=as_json))
    _run(
        app, as_json=as_json, day=edition_day, ingest_sources=not no_ingest, lock_wait=wait_seconds
    )


def _run(app: _App, *, as_json: bool, **options: Any) -> NoReturn:
    """Run the job (``digest run`` and ``digest send``), showing its progress, and exit."""
    settings, started = app.signing_settings, time.monotonic()

    with app.store() as store, report.progress("sending", enabled=not as_json) as shown:

        def planned(plan: job.Planned) -> None:
            if not as_json:
                report.planned(plan)
            shown.start(plan.queued)

        try:
            done = job.run(
                store,
                settings,
                now=_utc_now,
                transport=transport_for(settings),
                stop=_stop_on_signals(),
                on_planned=planned,
                on_delivery=shown.advance,
                **options,
            )
        except RunInProgress as e:
            problem(e.message)
            sys.exit(EXIT_PARTIAL)
    sys.exit(report.run(done, time.monotonic() - started, as_json=as_json, told=True))


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _themes() -> list[str]:
    return available_themes(resource_path("templates"))


def _stop_on_signals() -> threading.Event:
    """Return an event set by the first SIGTERM or SIGINT (a second SIGINT interrupts)."""
    stop = threading.Event()

    def request_stop(signum: int, _frame: Any) -> None:
        stop.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        problem(f"{signal.Signals(signum).name}: finishing the message in flight")

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    return stop


@cli.group()
def db() -> None:
    """Manage the database schema."""


@db.command("upgrade")
@click.pass_obj
def db_upgrade(app: _App) -> None:
    """Apply the pending schema migrations (Alembic); back the database up first."""
    store = Store.open(app.settings.database_url, upgrade=True)
    revision = store.schema_revision()
    store.close()
    click.echo(f"database {app.settings.database_url_for_display} is at schema revision {revision}")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
@click.pass_obj
def send(app: _App, as_json: bool) -> None:
    """Send the queued deliveries without reading sources or building an edition.

    For operators who scale the send phase separately: on PostgreSQL, run it
    on as many machines as needed; they share the queue.  Exit codes as for
    'digest run'.
    """
    _run(app, as_json=as_json, plan=False)


@cli.command()
@click.pass_obj
def worker(app: _App) -> None:
    """Run the job on the configured schedule until stopped (the Procfile's worker).

    Catches up a run missed while it was down (within misfire_grace_hours),
    never runs at the same time as another worker or a cron 'digest run',
    and on SIGTERM or SIGINT finishes the message in flight and exits 0.
    """
    settings = app.signing_settings
    app.open_store().close()  # fail now, not at 07:00, on a bad database URL
    Worker(settings, app.open_store).serve()


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, help="Port to listen on.")
@click.option("--debug", is_flag=True, help="Reload on code changes and show debug pages.")
@click.pass_obj
def serve(app: _App, host: str, port: int, debug: bool) -> None:
    """Serve the web pages for development (use gunicorn in production, see the Procfile)."""
    from digest.web import create_app

    settings = app.signing_settings
    if not settings.smtp.host:
        problem(
            f"serve: SMTP_HOST is not set: confirmation mails are written as .eml files "
            f"to {settings.outbox_dir}/"
        )
    create_app({"DIGEST_SETTINGS": settings}).run(host=host, port=port, debug=debug)


@cli.command("send-test")
@click.argument("address")
@click.option("--as", "as_email", metavar="EMAIL", help="Send what this reader would get.")
@click.option(
    "--date",
    "day",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Edition date (default: the latest; before the first, the papers waiting).",
)
@click.pass_obj
def send_test(app: _App, address: str, as_email: str | None, day: datetime | None) -> None:
    """Mail ADDRESS the real digest as a reader would get it (or a reader without
    topics), with "[test]" in the subject: to check it in your own inbox first.

    ADDRESS need not be on the list; nothing is recorded as a delivery, and its
    links change no reader.  Refused for an address that left or bounced.
    """
    from digest.address import parse_address

    settings = app.signing_settings
    recipient = parse_address(address)  # a bad one: one line, exit 2
    with app.store() as store:
        reader = _named(store, as_email) if as_email else None
        try:
            said = tryouts.send_test(
                store,
                settings,
                transport_for(settings),
                recipient,
                as_reader=reader,
                day=day.date() if day else None,
                now=_utc_now(),
            )
        except tryouts.SendTestRefused as e:
            problem(e.message)
            raise SystemExit(EXIT_PARTIAL) from e
    click.echo(f"send-test: {said}")


@cli.command()
@click.argument("email")
@click.option(
    "--date",
    "day",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    required=True,
    help="The edition to send again.",
)
@click.option("--now", "send_now", is_flag=True, help="Send it at once instead of at the next run.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (without --now).")
@click.pass_obj
def resend(app: _App, email: str, day: datetime, send_now: bool, as_json: bool) -> None:
    """Queue one reader's digest of DATE again, on purpose (say, a filter ate it).

    It goes as a new message with a Message-ID of its own, recorded as a
    resend; the next run sends it, or --now sends the queue at once.  Refused
    for a reader who unsubscribed, bounced, complained or paused.
    """
    with app.store() as store:
        try:
            queued = tryouts.resend(store, _named(store, email), day.date(), now=_utc_now())
        except tryouts.ResendRefused as e:
            problem(e.message)
            raise SystemExit(EXIT_PARTIAL) from e
    if as_json and not send_now:
        report.echo_json(
            {
                "email": email,
                "day": day.date(),
                "delivery": queued.id,
                "resends": queued.resends,
                "status": queued.status,
            }
        )
        return
    click.echo(f"resend: queued {email}'s digest of {day.date()} again (resend {queued.resends})")
    if send_now:
        _run(app, as_json=False, plan=False)


@cli.group("admin")
def admin_group() -> None:
    """The accounts that may sign in to the dashboard under /admin."""


@admin_group.command("add")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin (scripts).")
@click.pass_obj
def admin_add(app: _App, email: str, password_stdin: bool) -> None:
    """Make EMAIL an admin, asking for a password (at least 12 characters); for an
    admin already there, set a new password and end their sessions."""
    from digest.passwords import hash_password, password_problem
    from digest.subscribers import SubscriberError, normalize_email

    try:
        address = normalize_email(email)
    except SubscriberError as e:
        raise click.BadParameter(e.message, param_hint="EMAIL") from e
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True, err=True)
    if why := password_problem(password):
        problem(f"admin add: refused: {why}")
        raise SystemExit(EXIT_PARTIAL)
    with app.store() as store:
        _, new = store.save_admin(address, hash_password(password), now=_utc_now())
    click.echo(f"admin {address}: " + ("added" if new else "new password; their sessions ended"))


@admin_group.command("remove")
@click.argument("email")
@click.pass_obj
def admin_remove(app: _App, email: str) -> None:
    """Take EMAIL's admin account away; their sessions end at once."""
    with app.store() as store:
        removed = store.remove_admin(email)
    if not removed:
        problem(f"admin remove: {email} is not an admin (see 'digest admin list')")
        raise SystemExit(EXIT_PARTIAL)
    click.echo(f"admin {email}: removed; their sessions ended")


@admin_group.command("list")
@click.pass_obj
def admin_list(app: _App) -> None:
    """Every admin, with when they last signed in."""
    with app.store() as store:
        found = store.list_admins()
    report.table(
        ["email", "created", "last sign-in"],
        [(a.email, a.created_at, a.last_login_at or "never") for a in found],
    )


@cli.group("editions")
def editions_group() -> None:
    """The editions: what each carried, and how its delivery went."""


@editions_group.command("list")
@click.option("--limit", default=30, show_default=True, help="How many, newest first.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--csv", "as_csv", is_flag=True, help="Print the table as CSV.")
@click.pass_obj
def editions_list(app: _App, limit: int, as_json: bool, as_csv: bool) -> None:
    """Each edition with its papers, deliveries by state, bounces and complaints."""
    with app.store() as store:
        rows = [queries.edition_status(store, e) for e in store.recent_editions(limit)]
    report.editions(rows, as_json=as_json, as_csv=as_csv)


@cli.group("sources")
def sources_group() -> None:
    """The configured sources and their health."""


@sources_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--csv", "as_csv", is_flag=True, help="Print the table as CSV.")
@click.pass_obj
def sources_list(app: _App, as_json: bool, as_csv: bool) -> None:
    """Each configured source: its last fetch, its status (ok, unchanged, failed with
    the reason, never) and the entries it brought to the last edition."""
    with app.store() as store:
        day, found = queries.sources(store, app.settings)
    report.sources(day, found, as_json=as_json, as_csv=as_csv)


@editions_group.command("show")
@click.argument("day", type=click.DateTime(formats=["%Y-%m-%d"]), metavar="DATE")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_obj
def editions_show(app: _App, day: datetime, as_json: bool) -> None:
    """One edition: its papers, its deliveries by state, and every failure with its reason."""
    with app.store() as store:
        edition = store.get_edition(day.date())
        if edition is None:
            problem(f"no edition for {day.date()} (see 'digest editions list')")
            raise SystemExit(EXIT_PARTIAL)
        shown = queries.edition_status(store, edition)
        papers = store.edition_entries(edition.id)
    report.edition(shown, papers, as_json=as_json)


#: sendmail's exit code for "try again later": the MTA keeps the message and retries.
EX_TEMPFAIL = 75
#: sendmail's exit code for "this message is refused": too big to read.
EX_DATAERR = 65


@cli.command()
@click.option("--recipient", help="The address the message was delivered to (the MTA's).")
@click.option("--imap", is_flag=True, help="Read the INBOUND_IMAP_URL mailbox instead of stdin.")
@click.pass_obj
def inbound(app: _App, recipient: str | None, imap: bool) -> None:
    """Read one message that came back (a bounce, a complaint, a mailto unsubscribe) on
    stdin, as an MTA's pipe delivers it, and act on it; or with --imap every message
    in the INBOUND_IMAP_URL mailbox, filing each in digest-processed or
    digest-unreadable.

    Exits 0 when the message was handled or ignored, whatever it holds (a
    message it cannot read is logged with its Message-ID, never bounced back);
    65 (EX_DATAERR) for a message over the size cap; and 75 (EX_TEMPFAIL) only
    when the database cannot be reached, so that the MTA tries again later.
    """
    from digest.app import MAX_MESSAGE_BYTES, from_mailbox, verdict

    settings = app.signing_settings
    if imap:
        if not settings.inbound.imap_url:
            raise click.UsageError("--imap needs INBOUND_IMAP_URL (see .env.example)")
        with app.store() as store:
            polled = from_mailbox(store, settings, now=_utc_now())
        click.echo(
            f"inbound: {polled.handled} handled, {polled.unreadable} unreadable, "
            f"{polled.left} left for the next poll"
        )
        raise SystemExit(EXIT_PARTIAL if polled.left else 0)

    data = sys.stdin.buffer.read(MAX_MESSAGE_BYTES + 1)
    try:
        with app.store() as store:
            said, line = verdict(store, settings, data, recipient=recipient, now=_utc_now())
    except StorageError as e:  # the database cannot even be opened
        said, line = "retry", f"{e.message}; the mail server will try again"
    if said in ("retry", "refused"):
        problem(f"inbound: {line}")
        raise SystemExit(EX_TEMPFAIL if said == "retry" else EX_DATAERR)
    click.echo(f"inbound: {line}")


@cli.command()
@click.option("--editions", default=7, show_default=True, help="How many recent editions.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_obj
def status(app: _App, editions: int, as_json: bool) -> None:
    """Show recent editions with their deliveries by state, and the failures with reasons."""
    settings = app.settings
    with app.store() as store:
        found = queries.status(store, settings, editions=editions, now=_utc_now())
    report.status(found, settings.schedule, settings.timezone, as_json=as_json)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``digest`` console script."""
    cli.main(args=argv, prog_name="digest")
