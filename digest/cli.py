"""The ``digest`` command: a thin shell that validates input, calls one function
of the library and formats its result.

Errors from digest become one line on stderr plus a hint (a traceback only
with ``-v``).  Exit codes: 0 ok, 1 some items failed, 2 configuration or
storage error.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, BinaryIO, NoReturn, TextIO

import click

from digest import __version__, pipeline
from digest.config import (
    DEFAULT_DATABASE_URL,
    Settings,
    SourceSpec,
    load_settings,
    with_secret_key,
)
from digest.deliver.transports import transport_for
from digest.errors import ConfigError, DigestError
from digest.locking import RUN_LOCK, RunInProgress, describe_holder
from digest.logs import configure_logging, peak_rss_kb
from digest.models import STATES, IngestReport, SourceReport, Subscriber
from digest.plan import Skip, Wait
from digest.render import available_themes
from digest.resources import resource_path
from digest.schedule import next_run
from digest.select.index import EditionIndex
from digest.store import Store
from digest.subscribers import (
    RowProblem,
    SubscriberInput,
    UnreadableCsv,
    check_input,
    check_theme,
    decode_csv,
    format_topics,
    parse_topic,
    read_csv,
    write_csv,
)
from digest.subscriptions import (
    ConsentRefused,
    import_result,
    leaves,
    operator_adds,
    operator_imports,
    pauses,
)
from digest.worker import Worker

EXIT_OK, EXIT_PARTIAL, EXIT_ERROR = 0, 1, 2


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
        for problem in error.problems:
            click.echo(f"digest: config error: {problem}", err=True)
    else:
        click.echo(f"digest: error: {error.message}", err=True)
    if error.hint:
        click.echo(f"hint: {error.hint}", err=True)
    sys.exit(EXIT_ERROR)


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
    settings = app.settings
    specs = [SourceSpec(name=s, location=s) for s in sources] or list(settings.sources)
    if not specs:
        raise DigestError("no sources to ingest", hint="add [[sources]] to the config or name one")
    store = app.open_store()
    started = time.monotonic()
    with _progress(len(specs), "ingesting", enabled=not as_json) as advance:
        report = pipeline.ingest(
            store,
            specs,
            now=datetime.now(UTC),
            zone=settings.zone,
            limits=settings.limits,
            fetch=settings.fetch,
            edition_date=edition_date.date() if edition_date else None,
            on_source_done=lambda _report: advance(),
            stop=_stop_on_signals(),
        )
    seconds = time.monotonic() - started
    total = store.count_entries()
    store.close()
    if as_json:
        click.echo(json.dumps(_ingest_json(report, seconds, total), default=_json_default))
    else:
        _print_ingest(report, seconds, total, store.url)
    for failed in (s for s in report.sources if not s.ok):
        click.echo(f"digest: error: {failed.source}: {failed.error}", err=True)
    sys.exit(EXIT_OK if report.ok else EXIT_PARTIAL)


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
        themes=available_themes(resource_path("templates")),
    )
    if invite:
        _invite(app, item)
        return
    with app.store() as store:
        try:
            amended = store.amend_subscriber(
                item.email, operator_adds(item), now=datetime.now(UTC), channel="cli"
            )
        except ConsentRefused as e:
            _refused(e)
    subscriber = amended.subscriber
    assert subscriber is not None
    verb = "subscribed" if amended.before is None else "updated"
    topic_note = ", ".join(str(t) for t in subscriber.topics) or "every new paper"
    click.echo(f"{verb} {subscriber.email} ({subscriber.state}; topics: {topic_note})")


def _refused(error: ConsentRefused) -> NoReturn:
    click.echo(f"digest: {error.message}", err=True)
    click.echo(f"hint: {error.hint}", err=True)
    sys.exit(EXIT_PARTIAL)


def _invite(app: _App, item: SubscriberInput) -> None:
    settings = app.signing_settings
    with app.store() as store:
        subscriber, mail = pipeline.sign_up(
            store, settings, transport_for(settings), item,
            now=datetime.now(UTC), channel="invite",
        )  # fmt: skip
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
        subscriber = store.amend_subscriber(
            email, leaves, now=datetime.now(UTC), channel="cli"
        ).subscriber
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
        found = store.amend_subscriber(
            email, pauses(paused), now=datetime.now(UTC), channel="cli"
        ).subscriber
    subscriber = _known(found, email)
    if subscriber.status != "active":
        click.echo(f"digest: {subscriber.email} is {subscriber.state}: nothing to change", err=True)
        sys.exit(EXIT_PARTIAL)
    click.echo(f"{subscriber.email} is {subscriber.state}")


def _known(subscriber: Subscriber | None, email: str) -> Subscriber:
    if subscriber is None:
        click.echo(f"digest: error: {email} is not a subscriber", err=True)
        sys.exit(EXIT_PARTIAL)
    return subscriber


@cli.group("subscribers")
def subscribers_group() -> None:
    """List, import and export subscribers."""


@subscribers_group.command("list")
@click.option("--status", type=click.Choice(STATES), help="Only subscribers in this state.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_obj
def subscribers_list(app: _App, status: str | None, as_json: bool) -> None:
    """List subscribers with their state (pending, active, paused, unsubscribed) and topics."""
    with app.store() as store:
        found = list(store.iter_subscribers(state=status))
        counts = store.count_subscribers()
    if as_json:
        payload = {"counts": counts, "subscribers": [_subscriber_json(s) for s in found]}
        click.echo(json.dumps(payload, ensure_ascii=False))
        return
    for subscriber in found:
        topics = format_topics(subscriber.topics) or "(every new paper)"
        click.echo(f"{subscriber.email}\t{subscriber.state}\t{topics}")
    click.echo(", ".join(f"{n} {state}" for state, n in counts.items()), err=True)


@subscribers_group.command("show")
@click.argument("email")
@click.pass_obj
def subscribers_show(app: _App, email: str) -> None:
    """Show one subscriber and every change of their state: when, to what, by which channel."""
    with app.store() as store:
        subscriber = _known(store.get_subscriber(email), email)
        history = store.subscriber_history(subscriber.id)
    topics = format_topics(subscriber.topics) or "(every new paper)"
    click.echo(f"{subscriber.email}\t{subscriber.state}\t{topics}")
    for event in history:
        detail = f" ({event.detail})" if event.detail else ""
        click.echo(f"  {event.at:%Y-%m-%d %H:%M:%S}Z  {event.state:<12} by {event.channel}{detail}")


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
    themes = available_themes(resource_path("templates"))
    try:
        rows, problems = read_csv(decode_csv(csv_file.read()), themes=themes)
    except UnreadableCsv as e:
        raise DigestError(f"{csv_file.name}:{e.line}: {e.reason}; nothing was imported") from e
    with app.store() as store:
        items = [item for _, item in rows]
        amended = store.amend_subscribers(
            [(i.email, operator_imports(i)) for i in items], now=datetime.now(UTC), channel="import"
        )
    result = import_result(items, amended)
    seconds = time.monotonic() - started
    line_of = {item.email: line for line, item in rows}
    problems += [
        RowProblem(line_of[email], f"{email} unsubscribed; left unchanged (only they can opt in "
                   "again: 'digest subscribe --invite')")
        for email in result.refused
    ]  # fmt: skip
    problems.sort(key=lambda p: p.line)
    skipped = [p for p in problems if p.line > 1 or not rows]
    if as_json:
        payload = asdict(result) | {
            "skipped": len(skipped),
            "seconds": round(seconds, 3),
            "problems": [asdict(p) for p in problems],
        }
        click.echo(json.dumps(payload))
    else:
        for problem in problems:
            click.echo(f"{csv_file.name}:{problem.line}: {problem.reason}", err=True)
        click.echo(
            f"import: {result.created} created, {result.updated} updated, "
            f"{result.kept_unsubscribed} kept unsubscribed, {len(skipped)} rows skipped "
            f"in {seconds:.2f}s"
        )
    sys.exit(EXIT_PARTIAL if skipped else EXIT_OK)


@subscribers_group.command("export")
@click.argument(
    "csv_file", type=click.File("w", encoding="utf-8"), default="-", metavar="[FILE.csv]"
)
@click.pass_obj
def subscribers_export(app: _App, csv_file: TextIO) -> None:
    """Write every subscriber (unsubscribed ones included) as CSV that import reads back."""
    with app.store() as store:
        for chunk in write_csv(store.iter_subscribers()):
            csv_file.write(chunk)


@cli.command()
@click.argument("query")
@click.option("--source", "sources", multiple=True, help="Only entries from this source.")
@click.option("--limit", default=20, show_default=True, help="Show at most this many.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_obj
def match(app: _App, query: str, sources: tuple[str, ...], limit: int, as_json: bool) -> None:
    """Show which stored entries a topic query selects, best first, with scores.

    Try a filter here before saving it as a topic.  Syntax: words (all must
    match), "exact phrases", OR, -word or NOT word, (parentheses), prefix*,
    title:word, abstract:word, author:name.
    """
    topic = parse_topic(query)
    with app.store() as store:
        stored = [s for s in store.list_entries() if not sources or s.source in sources]
    with EditionIndex(stored) as index:
        matches = index.search(topic.query)
    if as_json:
        payload = {
            "query": topic.query,
            "searched": len(stored),
            "matched": len(matches),
            "matches": [
                {"score": round(m.score, 4), "title": m.entry.entry.title, "source": m.entry.source}
                for m in matches[:limit]
            ],
        }
        click.echo(json.dumps(payload, ensure_ascii=False))
        return
    for found in matches[:limit]:
        click.echo(f"{found.score:7.2f}  {found.entry.entry.title}")
    click.echo(f"match: {len(matches)} of {len(stored)} entries match {topic.query!r}", err=True)


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
    themes = available_themes(resource_path("templates"))
    subscriber, wanted = None, [parse_topic(t) for t in topics]
    with app.store() as store:
        if email:
            subscriber = store.get_subscriber(email)
            if subscriber is None:
                raise DigestError(
                    f"{email} is not a subscriber", hint="see 'digest subscribers list'"
                )
            wanted = list(subscriber.topics)
            theme = theme or subscriber.theme
        theme = check_theme(theme or settings.theme, themes)
        edition_day = day.date() if day else datetime.now(settings.zone).date()
        rendered, available, decision = pipeline.preview(
            store, settings, day=edition_day, topics=wanted, theme=theme, now=_utc_now(),
            subscriber=subscriber,
        )  # fmt: skip
    html_path = Path(output or f"var/preview/{edition_day.isoformat()}-{theme}.html")
    html_path.parent.mkdir(parents=True, exist_ok=True)
    html_path.write_text(rendered.html, encoding="utf-8")
    text_path = html_path.with_suffix(".txt")
    text_path.write_text(rendered.text, encoding="utf-8")
    click.echo(f"subject: {rendered.subject}")
    click.echo(f"html: {html_path} ({len(rendered.html.encode()):,} bytes)")
    click.echo(f"text: {text_path}")
    click.echo(
        f"preview: {rendered.shown} papers shown, {rendered.cut} more counted, "
        f"of {available} in the edition of {edition_day.isoformat()}",
        err=True,
    )
    if isinstance(decision, Skip):
        click.echo(f"note: 'digest run' would not send it to {email}: {decision.reason}", err=True)
    elif isinstance(decision, Wait):
        click.echo(f"note: {email} gets it at {decision.until:%Y-%m-%d %H:%M %Z}", err=True)


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
    settings = app.signing_settings
    started = time.monotonic()
    edition_day = day.date() if day else None
    with app.store() as store:
        if dry_run:
            report = pipeline.dry_run(store, settings, now=_utc_now, day=edition_day)
        else:
            stop = _stop_on_signals()
            try:
                with _progress_bar("sending", enabled=not as_json) as progress:
                    report = pipeline.run(
                        store,
                        settings,
                        now=_utc_now,
                        transport=transport_for(settings),
                        day=edition_day,
                        ingest_sources=not no_ingest,
                        stop=stop,
                        lock_wait=wait_seconds,
                        on_planned=progress.start,
                        on_delivery=progress.advance,
                    )
            except RunInProgress as e:
                click.echo(f"digest: {e.message}", err=True)
                sys.exit(EXIT_PARTIAL)
    _report_run(report, time.monotonic() - started, as_json=as_json)


def _report_run(report: pipeline.RunReport, seconds: float, *, as_json: bool) -> NoReturn:
    """Print a run's report and failures, and exit with the code it deserves."""
    if as_json:
        click.echo(json.dumps(_run_json(report, seconds), default=_json_default))
    else:
        _print_run(report, seconds)
    if report.delivery.interrupted:
        click.echo("digest: stopped on request; the rest stays queued for the next run", err=True)
        sys.exit(EXIT_OK)
    if report.ingest:
        for failed in (s for s in report.ingest.sources if not s.ok):
            click.echo(f"digest: error: {failed.source}: {failed.error}", err=True)
    if report.delivery.stopped:
        click.echo(f"digest: error: {report.delivery.stopped}", err=True)
    for address, reason in report.delivery.failures[:20]:
        click.echo(f"digest: failed: {address}: {reason}", err=True)
    sys.exit(EXIT_OK if report.ok else EXIT_PARTIAL)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _stop_on_signals() -> threading.Event:
    """Return an event set by the first SIGTERM or SIGINT (a second SIGINT interrupts)."""
    stop = threading.Event()

    def request_stop(signum: int, _frame: Any) -> None:
        stop.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        click.echo(
            f"digest: {signal.Signals(signum).name}: finishing the message in flight", err=True
        )

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    return stop


def _print_run(report: pipeline.RunReport, seconds: float) -> None:
    if report.ingest:
        ingested = report.ingest
        click.echo(
            f"ingest: {ingested.total('new')} new of {ingested.total('read')} read "
            f"from {len(ingested.sources)} sources"
        )
    if report.edition is not None:
        click.echo(f"edition {report.day}: {report.edition.entry_count} papers")
    elif report.ingest is not None:  # 'digest send' builds no edition: nothing to say
        click.echo(f"edition {report.day}: nothing new since the last edition")
    delivery = report.delivery
    rate = delivery.sent / seconds if seconds > 0 else 0.0
    summary = report.summary()
    if report.dry_run:
        summary = "would " + summary.split(", still queued")[0]
    click.echo(
        f"run{' (dry run)' if report.dry_run else ''}: {summary} "
        f"in {seconds:.1f}s ({rate:.1f} messages/s)"
    )


def _run_json(report: pipeline.RunReport, seconds: float) -> dict[str, Any]:
    delivery = report.delivery
    return {
        "ok": report.ok,
        "dry_run": report.dry_run,
        "day": report.day,
        "seconds": round(seconds, 3),
        "ingest": _ingest_json(report.ingest, seconds, None) if report.ingest else None,
        "edition": asdict(report.edition) if report.edition else None,
        "sent": delivery.sent,
        "failed": delivery.failed,
        "skipped": delivery.skipped,
        "deferred": delivery.deferred,
        "expired": delivery.expired,
        "waiting": delivery.waiting,
        "interrupted": delivery.interrupted,
        "still_queued": report.still_queued,
        "stopped": delivery.stopped,
        "failures": [{"email": a, "reason": r} for a, r in delivery.failures],
        "messages_per_second": round(delivery.sent / seconds, 2) if seconds > 0 else None,
        "stage_seconds": {stage: round(t, 3) for stage, t in delivery.seconds.items()},
        # This process and the composing child (when there was one), together.
        "peak_rss_mb": round((peak_rss_kb() + delivery.composer_peak_rss_kb) / 1024, 1),
    }


@cli.group()
def db() -> None:
    """Manage the database schema."""


@db.command("upgrade")
@click.pass_obj
def db_upgrade(app: _App) -> None:
    """Apply the pending schema migrations (Alembic); back the database up first."""
    url = app.settings.database_url
    store = Store.open(url, upgrade=True)
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
    settings = app.signing_settings
    started = time.monotonic()
    stop = _stop_on_signals()
    with app.store() as store:
        try:
            report = pipeline.run(
                store, settings, now=_utc_now, transport=transport_for(settings),
                plan=False, stop=stop,
            )  # fmt: skip
        except RunInProgress as e:
            click.echo(f"digest: {e.message}", err=True)
            sys.exit(EXIT_PARTIAL)
    _report_run(report, time.monotonic() - started, as_json=as_json)


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

    create_app({"DIGEST_SETTINGS": app.signing_settings}).run(host=host, port=port, debug=debug)


@cli.command()
@click.option("--editions", default=7, show_default=True, help="How many recent editions.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_obj
def status(app: _App, editions: int, as_json: bool) -> None:
    """Show recent editions with their deliveries by state, and the failures with reasons."""
    with app.store() as store:
        rows = []
        for edition in store.recent_editions(editions):
            counts = store.delivery_counts(edition.id)
            failures = [
                {"email": email, "reason": reason} for email, reason in store.failures(edition.id)
            ]
            rows.append({"edition": asdict(edition), "deliveries": counts, "failures": failures})
        subscribers = store.count_subscribers()
        last_runs = store.recent_runs(1)
        running = store.lock_holder(RUN_LOCK, now=_utc_now())
    settings = app.settings
    upcoming = next_run(settings.schedule, settings.zone, _utc_now())
    last = asdict(last_runs[0]) if last_runs else None
    if as_json:
        payload = {
            "subscribers": subscribers,
            "next_run": upcoming,
            "running": describe_holder(running) if running else None,
            "last_run": last,
            "editions": rows,
        }
        click.echo(json.dumps(payload, default=_json_default))
        return
    click.echo("subscribers: " + ", ".join(f"{n} {state}" for state, n in subscribers.items()))
    click.echo(
        f"schedule: {settings.schedule!r} in {settings.timezone}; next run "
        f"{upcoming.isoformat() if upcoming else 'never'}"
    )
    if running:
        click.echo(f"running now: {describe_holder(running)}")
    if last:
        click.echo(
            f"last run: {last['outcome']} at {last['started_at']:%Y-%m-%d %H:%M:%S %Z}"
            + (f": {last['summary']}" if last["summary"] else "")
        )
    if not rows:
        click.echo("no editions yet: run 'digest run'")
    for row in rows:
        edition, counts = row["edition"], row["deliveries"]
        click.echo(
            f"{edition['day']}: {edition['entry_count']} papers; "
            + ", ".join(f"{n} {state}" for state, n in counts.items())
        )
        for failure in row["failures"]:
            click.echo(f"  failed: {failure['email']}: {failure['reason']}")


def _subscriber_json(subscriber: Subscriber) -> dict[str, Any]:
    moments = {
        name: moment.isoformat() if moment else None
        for name, moment in (
            ("unsubscribed_at", subscriber.unsubscribed_at),
            ("updated_at", subscriber.updated_at),
        )
    }
    return (
        asdict(subscriber)
        | moments
        | {
            "state": subscriber.state,
            "topics": [asdict(t) for t in subscriber.topics],
        }
    )


def _print_ingest(report: IngestReport, seconds: float, total: int, url: str) -> None:
    for source in report.sources:
        if source.unchanged:
            click.echo(f"{source.source}: unchanged since the last fetch")
        elif source.ok:
            click.echo(
                f"{source.source}: {source.format}, read {source.read}, new {source.new}, "
                f"already seen {source.seen}"
                + (f", skipped {source.skipped} re-announcements" if source.skipped else "")
                + (f", {len(source.warnings)} warnings" if source.warnings else "")
            )
            for warning in source.warnings:
                click.echo(f"  warning: {warning}")
        else:
            click.echo(f"{source.source}: FAILED: {source.error}")
    failed = sum(1 for s in report.sources if not s.ok)
    click.echo(
        f"ingest: {len(report.sources)} sources, {report.total('read')} read, "
        f"{report.total('new')} new, {report.total('seen')} already seen, {failed} failed "
        f"in {seconds:.2f}s; {total} papers in {url}"
    )


def _ingest_json(report: IngestReport, seconds: float, total: int | None) -> dict[str, Any]:
    return {
        "ok": report.ok,
        "started": report.started,
        "seconds": round(seconds, 3),
        "totals": {name: report.total(name) for name in ("read", "new", "seen", "skipped")}
        | {"failed": sum(1 for s in report.sources if not s.ok), "stored": total},
        "sources": [_source_json(s) for s in report.sources],
    }


def _source_json(source: SourceReport) -> dict[str, Any]:
    data = asdict(source)
    data["warnings"] = list(source.warnings)
    return data


def _json_default(value: Any) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {value!r}")


class _Progress:
    """A delivery progress bar on stderr, shown only on a terminal (never under cron)."""

    def __init__(self, label: str, enabled: bool) -> None:
        self.label = label
        self.enabled = enabled and sys.stderr.isatty()
        self.bar: Any = None

    def start(self, total: int) -> None:
        if self.enabled and total > 1:
            self.bar = click.progressbar(length=total, label=self.label, file=sys.stderr)
            self.bar.__enter__()

    def advance(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def finish(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


@contextmanager
def _progress_bar(label: str, *, enabled: bool) -> Iterator[_Progress]:
    progress = _Progress(label, enabled)
    try:
        yield progress
    finally:
        progress.finish()


@contextmanager
def _progress(length: int, label: str, *, enabled: bool = True) -> Iterator[Callable[[], None]]:
    """Yield a step function that advances a progress bar on stderr when it is a terminal."""
    if not (enabled and length > 1 and sys.stderr.isatty()):
        yield lambda: None
        return
    with click.progressbar(length=length, label=label, file=sys.stderr) as bar:
        yield lambda: bar.update(1)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``digest`` console script."""
    cli.main(args=argv, prog_name="digest")
