"""Commands to try things out: match a query, preview an email, send a test, resend."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import click

from digest.app import job, transport_for, tryouts
from digest.cli import output, report
from digest.cli.base import App, cli, named, newsletter_option, themes, utc_now
from digest.cli.output import EXIT_PARTIAL, problem
from digest.cli.running import run_and_exit
from digest.subscribers import (
    check_theme,
    parse_topic,
)


@cli.command()
@click.argument("query")
@click.option("--source", "sources", multiple=True, help="Only entries from this source.")
@click.option("--days", default=30, show_default=True, help="Search the papers of so many days.")
@click.option("--limit", default=20, show_default=True, help="Show at most this many.")
@click.option("--email", help="Order as this reader's digest would, with why their model agrees.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_obj
def match(
    app: App,
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
    since = utc_now() - timedelta(days=days)
    with app.store() as store:
        reader = named(store, email) if email else None
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
@newsletter_option
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
    app: App,
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
        subscriber = named(store, email) if email else None
        wanted = list(subscriber.topics) if subscriber else [parse_topic(t) for t in topics]
        look = check_theme(theme or (subscriber and subscriber.theme) or settings.theme, themes())
        reader = replace(subscriber, theme=look) if subscriber else tryouts.tried_out(wanted, look)
        edition_day = day.date() if day else utc_now().astimezone(settings.zone).date()
        found = tryouts.preview(store, settings, reader, day=edition_day, now=utc_now())
    rendered = tryouts.render_preview(settings, found, theme=look, subscriber=subscriber)
    html = Path(output or f"var/preview/{found.day.isoformat()}-{look}.html")
    html.parent.mkdir(parents=True, exist_ok=True)
    html.write_text(rendered.html, encoding="utf-8")
    html.with_suffix(".txt").write_text(rendered.text, encoding="utf-8")
    report.preview(found, rendered, str(html), str(html.with_suffix(".txt")), email)


@cli.command("send-test")
@newsletter_option
@click.argument("address")
@click.option("--as", "as_email", metavar="EMAIL", help="Send what this reader would get.")
@click.option(
    "--date",
    "day",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Edition date (default: the latest; before the first, the papers waiting).",
)
@click.pass_obj
def send_test(app: App, address: str, as_email: str | None, day: datetime | None) -> None:
    """Mail ADDRESS the real digest as a reader would get it (or a reader without
    topics), with "[test]" in the subject: to check it in your own inbox first.

    ADDRESS need not be on the list; nothing is recorded as a delivery, and its
    links change no reader.  Refused for an address that left or bounced.
    """
    from digest.address import parse_address

    settings = app.signing_settings
    recipient = parse_address(address)  # a bad one: one line, exit 2
    with app.store() as store:
        reader = named(store, as_email) if as_email else None
        try:
            said = tryouts.send_test(
                store,
                settings,
                transport_for(settings),
                tryouts.TestSend(recipient, reader, day.date() if day else None),
                now=utc_now(),
            )
        except tryouts.SendTestRefused as e:
            problem(e.message)
            raise SystemExit(EXIT_PARTIAL) from e
    click.echo(f"send-test: {said}")


@cli.command()
@newsletter_option
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
def resend(app: App, email: str, day: datetime, send_now: bool, as_json: bool) -> None:
    """Queue one reader's digest of DATE again, on purpose (say, a filter ate it).

    It goes as a new message with a Message-ID of its own, recorded as a
    resend; the next run sends it, or --now sends the queue at once.  Refused
    for a reader who unsubscribed, bounced, complained or paused.
    """
    with app.store() as store:
        try:
            queued = tryouts.resend(store, named(store, email), day.date(), now=utc_now())
        except tryouts.ResendRefused as e:
            problem(e.message)
            raise SystemExit(EXIT_PARTIAL) from e
    if as_json and not send_now:
        output.echo_json(
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
        run_and_exit(app, job.RunOptions(plan=False), as_json=False)
