"""Commands about readers: subscribe, leave, pause, import, export, likes, admins and
API keys."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from dataclasses import asdict
from typing import BinaryIO, TextIO

import click

from digest.app import (
    Store,
    SubscriberRow,
    accounts,
    admins,
    apikeys,
    queries,
    transport_for,
)
from digest.cli import output, report
from digest.cli.base import App, cli, known, named, newsletter_option, refused, themes, utc_now
from digest.cli.output import EXIT_PARTIAL, problem
from digest.errors import DigestError
from digest.likes import typed_likes
from digest.models import STATES
from digest.subscribers import (
    SubscriberInput,
    UnreadableCsv,
    check_input,
    decode_csv,
    read_csv,
    write_csv,
)
from digest.subscriptions import ConsentRefused


@cli.command()
@newsletter_option
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
    app: App,
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
        themes=themes(),
    )
    liked, problems = typed_likes(" ".join(likes))
    if problems:
        raise click.BadParameter("; ".join(problems), param_hint="--like")
    if invite:
        return _invite(app, item)
    with app.store() as store:
        try:
            subscriber, created = accounts.add(store, item, now=utc_now())
        except ConsentRefused as e:
            refused(e)
        accounts.like(store, subscriber.id, liked, now=utc_now())
    topic_note = ", ".join(str(t) for t in subscriber.topics) or "every new paper"
    verb = "subscribed" if created else "updated"
    like_note = f"; {len(liked)} liked" if liked else ""
    rhythm = f"; {subscriber.cadence}" if subscriber.cadence.gathers else ""
    click.echo(
        f"{verb} {subscriber.email} ({subscriber.state}; topics: {topic_note}{rhythm}{like_note})"
    )


def _invite(app: App, item: SubscriberInput) -> None:
    settings = app.signing_settings
    with app.store() as store:
        subscriber, mail = accounts.sign_up(
            store, settings, transport_for(settings), item, now=utc_now(), channel="invite"
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
@newsletter_option
@click.argument("email")
@click.pass_obj
def unsubscribe(app: App, email: str) -> None:
    """Stop mailing a subscriber; the row stays so they are never mailed again."""
    with app.store() as store:
        subscriber = accounts.leave(store, email, now=utc_now(), channel="cli")
    click.echo(f"unsubscribed {known(subscriber, email).email}")


@cli.command()
@newsletter_option
@click.argument("email")
@click.pass_obj
def pause(app: App, email: str) -> None:
    """Stop mailing an active subscriber for now; 'digest resume' starts again."""
    _set_paused(app, email, paused=True)


@cli.command()
@newsletter_option
@click.argument("email")
@click.pass_obj
def resume(app: App, email: str) -> None:
    """Start mailing a paused subscriber again."""
    _set_paused(app, email, paused=False)


def _set_paused(app: App, email: str, *, paused: bool) -> None:
    with app.store() as store:
        try:
            found = accounts.set_paused(store, email, paused=paused, now=utc_now())
        except accounts.NothingToChange as e:
            problem(e.message)
            sys.exit(EXIT_PARTIAL)
    subscriber = known(found, email)
    click.echo(f"{subscriber.email} is {subscriber.state}")


@cli.group("subscribers")
def subscribers_group() -> None:
    """List, import and export subscribers."""


@subscribers_group.command("list")
@newsletter_option
@click.option("--status", type=click.Choice(STATES), help="Only subscribers in this state.")
@click.option("--search", default="", help="Only those with this in their address or name.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--csv", "as_csv", is_flag=True, help="Print the table as CSV.")
@click.pass_obj
def subscribers_list(
    app: App, status: str | None, search: str, as_json: bool, as_csv: bool
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
@newsletter_option
@click.argument("email")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_obj
def subscribers_show(app: App, email: str, as_json: bool) -> None:
    """Show one subscriber: every change of their state (when, to what, by which
    channel), what came back about their mail (bounces, complaints), their theme,
    timezone and feedback, and every delivery with the server's reply."""
    with app.store() as store:
        reader = known(store.get_subscriber(email), email)
        found = queries.reader_history(store, app.settings, reader, now=utc_now())
    report.reader(found, as_json=as_json)


@subscribers_group.command("import")
@newsletter_option
@click.argument("csv_file", type=click.File("rb"), metavar="FILE.csv")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
@click.pass_obj
def subscribers_import(app: App, csv_file: BinaryIO, as_json: bool) -> None:
    """Import subscribers from CSV (header: email, and optionally name, topics, theme,
    timezone, status, likes, cadence, newsletter: a row's newsletter, else --newsletter's).

    Topics go in one cell, separated by ';', each "LABEL: QUERY" or "QUERY".
    Bad rows are reported by line number and skipped; good rows go in.  New
    addresses are created active (or as the status column says); an address
    that unsubscribed is never brought back: its row is left unchanged and
    reported.  Exits 1 when any row was skipped.
    """
    started = time.monotonic()
    try:
        slugs = [n.slug for n in app.settings.all_newsletters()]
        rows, problems = read_csv(decode_csv(csv_file.read()), themes=themes(), newsletters=slugs)
    except UnreadableCsv as e:
        raise DigestError(f"{csv_file.name}:{e.line}: {e.reason}; nothing was imported") from e
    with app.store() as store:
        done = accounts.import_rows(store, rows, problems, now=utc_now())
    sys.exit(report.imported(done, csv_file.name, time.monotonic() - started, as_json=as_json))


@cli.group("likes")
def likes_group() -> None:
    """Papers readers like, which their ranking learns from."""


@likes_group.command("import")
@click.argument("email")
@click.argument("library_file", type=click.File("rb"), metavar="FILE.bib|FILE.ris")
@click.pass_obj
def likes_import(app: App, email: str, library_file: BinaryIO) -> None:
    """Take a reader's library (BibTeX or RIS from Zotero, Mendeley, Google Scholar) as
    papers they like: arXiv ids from eprint, URL and DOI fields, the rest by title."""
    with app.store() as store:
        subscriber = named(store, email)
        try:
            report = accounts.import_library(
                store, subscriber.id, library_file.read(), now=utc_now()
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
@newsletter_option
@click.argument(
    "csv_file", type=click.File("w", encoding="utf-8"), default="-", metavar="[FILE.csv]"
)
@click.pass_obj
def subscribers_export(app: App, csv_file: TextIO) -> None:
    """Write every subscriber (unsubscribed ones included) as CSV that import reads back."""
    with app.store() as store:
        for chunk in write_csv(accounts.with_likes(store, store.iter_subscribers())):
            csv_file.write(chunk)


@cli.group("admin")
def admin_group() -> None:
    """The accounts that may sign in to the dashboard under /admin."""


@admin_group.command("add")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin (scripts).")
@click.pass_obj
def admin_add(app: App, email: str, password_stdin: bool) -> None:
    """Make EMAIL an admin, asking for a password (at least 12 characters); for an
    admin already there, set a new password and end their sessions."""
    from digest.subscribers import SubscriberError, normalize_email

    try:
        address = normalize_email(email)
    except SubscriberError as e:
        raise click.BadParameter(e.message, param_hint="EMAIL") from e
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True, err=True)
    with app.store() as store:
        try:
            new = admins.add_admin(store, address, password, now=utc_now())
        except admins.PasswordRefused as e:
            problem(f"admin add: refused: {e.message}")
            raise SystemExit(EXIT_PARTIAL) from e
    click.echo(f"admin {address}: " + ("added" if new else "new password; their sessions ended"))


@admin_group.command("remove")
@click.argument("email")
@click.pass_obj
def admin_remove(app: App, email: str) -> None:
    """Take EMAIL's admin account away; their sessions end at once."""
    with app.store() as store:
        removed = admins.remove_admin(store, email)
    if not removed:
        problem(f"admin remove: {email} is not an admin (see 'digest admin list')")
        raise SystemExit(EXIT_PARTIAL)
    click.echo(f"admin {email}: removed; their sessions ended")


@admin_group.command("list")
@click.pass_obj
def admin_list(app: App) -> None:
    """Every admin, with when they last signed in."""
    with app.store() as store:
        found = admins.list_admins(store)
    output.table(
        ["email", "added", "last sign-in"],
        [(a.email, a.created_at, a.last_login_at or "never") for a in found],
    )


@cli.group("api-token")
def api_token_group() -> None:
    """Keys for the JSON API (/api/v1): make, list, revoke."""


@api_token_group.command("create")
@click.argument("name")
@click.option(
    "--scope",
    type=click.Choice(["read", "write", "import"]),
    default="read",
    show_default=True,
    help="read; write (change readers as the dashboard may); import (also add confirmed).",
)
@click.pass_obj
def api_token_create(app: App, name: str, scope: str) -> None:
    """Make a key named NAME and print its token, this once: digest keeps only a hash."""
    with app.store() as store:
        key, token = apikeys.create(store, name, scope, now=utc_now())
    click.echo(token)
    click.echo(
        f"api key {key.name!r} ({key.scope}): keep the token; it is not shown again", err=True
    )


@api_token_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_obj
def api_token_list(app: App, as_json: bool) -> None:
    """Every key: its name, scope, when it was made and last used (never its token)."""
    with app.store() as store:
        found = store.api_tokens()
    if as_json:
        output.echo_json({"api_tokens": [asdict(key) for key in found]})
        return
    output.table(
        ["name", "scope", "made", "last used"],
        [(k.name, k.scope, k.created_at, k.last_used_at or "never") for k in found],
    )


@api_token_group.command("revoke")
@click.argument("name")
@click.pass_obj
def api_token_revoke(app: App, name: str) -> None:
    """Revoke the key named NAME: its token stops working at once."""
    with app.store() as store:
        if not store.revoke_api_token(name):
            problem(f"api-token revoke: no key named {name!r} (see 'digest api-token list')")
            raise SystemExit(EXIT_PARTIAL)
    click.echo(f"api key {name!r}: revoked")
