"""Commands that run the job: ingest, run, send, the worker, the web server, inbound mail."""

from __future__ import annotations

import signal
import sys
import threading
import time
from dataclasses import asdict
from datetime import datetime
from typing import Any, NoReturn

import click

from digest.app import (
    RunInProgress,
    hooks,
    job,
    transport_for,
)
from digest.cli import output, report
from digest.cli.base import MAX_DAYS_AHEAD, App, cli, newsletter_option, utc_now
from digest.cli.output import EXIT_PARTIAL, problem
from digest.config import (
    SourceSpec,
)
from digest.errors import DigestError, StorageError
from digest.worker import Worker

#: sendmail's exit code for "try again later": the MTA keeps the message and retries.
EX_TEMPFAIL = 75
#: sendmail's exit code for "this message is refused": too big to read.
EX_DATAERR = 65


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
    app: App, sources: tuple[str, ...], edition_date: datetime | None, as_json: bool
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
        output.progress("ingesting", enabled=not as_json, total=len(specs)) as shown,
    ):
        done = job.ingest(
            store,
            specs,
            job.Reading(
                now=utc_now(),
                zone=settings.zone,
                limits=settings.limits,
                fetch=settings.fetch,
                edition_date=edition_date.date() if edition_date else None,
                stop=stop_on_signals(),
            ),
            on_source_done=shown.advance,
        )
        total = store.count_entries()
    sys.exit(report.ingest(done, time.monotonic() - started, total, store.url, as_json=as_json))


@cli.command("run")
@newsletter_option
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
    app: App,
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
    today = utc_now().astimezone(app.settings.zone).date()
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
            done = job.dry_run(store, app.signing_settings, now=utc_now, day=edition_day)
        sys.exit(report.run(done, time.monotonic() - started, as_json=as_json))
    options = job.RunOptions(edition_day, ingest_sources=not no_ingest, lock_wait=wait_seconds)
    run_and_exit(app, options, as_json=as_json)


def run_and_exit(app: App, options: job.RunOptions, *, as_json: bool) -> NoReturn:
    """Run the job (``digest run`` and ``digest send``), showing its progress, and exit."""
    settings, started = app.signing_settings, time.monotonic()

    with app.store() as store, output.progress("sending", enabled=not as_json) as shown:

        def planned(plan: job.Planned) -> None:
            if not as_json:
                report.planned(plan)
            shown.start(plan.queued)

        try:
            runtime = job.Runtime(
                utc_now,
                transport_for(settings),
                stop=stop_on_signals(),
                on_planned=planned,
                on_delivery=shown.advance,
            )
            done = job.run(store, settings, runtime, options)
        except RunInProgress as e:
            problem(e.message)
            sys.exit(EXIT_PARTIAL)
    sys.exit(report.run(done, time.monotonic() - started, as_json=as_json, told=True))


def stop_on_signals() -> threading.Event:
    """Return an event set by the first SIGTERM or SIGINT (a second SIGINT interrupts)."""
    stop = threading.Event()

    def request_stop(signum: int, _frame: Any) -> None:
        stop.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        problem(f"{signal.Signals(signum).name}: finishing the message in flight")

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    return stop


@cli.command()
@newsletter_option
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
@click.pass_obj
def send(app: App, as_json: bool) -> None:
    """Send the queued deliveries without reading sources or building an edition.

    For operators who scale the send phase separately: on PostgreSQL, run it
    on as many machines as needed; they share the queue.  Exit codes as for
    'digest run'.
    """
    run_and_exit(app, job.RunOptions(plan=False), as_json=as_json)


@cli.command()
@click.pass_obj
def worker(app: App) -> None:
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
def serve(app: App, host: str, port: int, debug: bool) -> None:
    """Serve the web pages for development (use gunicorn in production, see the Procfile)."""
    from digest.web import create_app

    settings = app.signing_settings
    if not settings.smtp.host:
        problem(
            f"serve: SMTP_HOST is not set: confirmation mails are written as .eml files "
            f"to {settings.outbox_dir}/"
        )
    create_app({"DIGEST_SETTINGS": settings}).run(host=host, port=port, debug=debug)


@cli.command()
@click.option("--recipient", help="The address the message was delivered to (the MTA's).")
@click.option("--imap", is_flag=True, help="Read the INBOUND_IMAP_URL mailbox instead of stdin.")
@click.pass_obj
def inbound(app: App, recipient: str | None, imap: bool) -> None:
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
            polled = from_mailbox(store, settings, now=utc_now())
        click.echo(
            f"inbound: {polled.handled} handled, {polled.unreadable} unreadable, "
            f"{polled.left} left for the next poll"
        )
        raise SystemExit(EXIT_PARTIAL if polled.left else 0)

    data = sys.stdin.buffer.read(MAX_MESSAGE_BYTES + 1)
    try:
        with app.store() as store:
            said, line = verdict(store, settings, data, recipient=recipient, now=utc_now())
    except StorageError as e:  # the database cannot even be opened
        said, line = "retry", f"{e.message}; the mail server will try again"
    if said in ("retry", "refused"):
        problem(f"inbound: {line}")
        raise SystemExit(EX_TEMPFAIL if said == "retry" else EX_DATAERR)
    click.echo(f"inbound: {line}")


@cli.group("webhooks")
def webhooks_group() -> None:
    """Endpoints told of what happens ([[webhooks]] in the config)."""


@webhooks_group.command("send")
@click.pass_obj
def webhooks_send(app: App) -> None:
    """Post what each webhook is due (the worker does this every half minute); exit 1
    when an endpoint did not take something (it is tried again later)."""
    with app.store() as store:
        done = hooks.dispatch(store, app.settings, now=utc_now)
    for failure in done.failures:
        problem(f"webhooks: {failure}")
    click.echo(
        f"webhooks: {done.taken} taken, {done.retrying} to try again, {done.given_up} given up"
    )
    if done.failures:
        sys.exit(EXIT_PARTIAL)


@webhooks_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_obj
def webhooks_list(app: App, as_json: bool) -> None:
    """Each webhook: its URL, its events, what waits, what was given up, its last tries."""
    with app.store() as store:
        found = [(w, store.webhook_state(w.url)) for w in app.settings.webhooks]
    if as_json:
        output.echo_json(
            {"webhooks": [{"url": w.url, "events": w.events} | asdict(state) for w, state in found]}
        )
        return
    if not found:
        click.echo("no webhooks: add [[webhooks]] to the config (docs/webhooks.md)")
    for webhook, state in found:
        click.echo(
            f"{webhook.url}: {len(webhook.events)} events; {state.waiting} waiting, "
            f"{state.given_up} given up"
        )
        for at, kind, status in state.last:
            click.echo(f"  {at:%Y-%m-%d %H:%M:%S}Z  {kind}: {status}")
