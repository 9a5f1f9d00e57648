"""Commands that report: status, editions and sources."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import asdict
from datetime import date, datetime

import click

from digest.app import (
    RunRecord,
    describe_holder,
    doctor,
    queries,
)
from digest.app.queries import EditionStatus, SourceHealth, Status
from digest.app.views import edition_json, edition_papers_json, source_json
from digest.cli.base import App, cli, newsletter_option, utc_now
from digest.cli.output import (
    EXIT_PARTIAL,
    STATE_COLOURS,
    counted,
    echo_json,
    problem,
    table,
)
from digest.models import StoredEntry
from digest.text import printable


@cli.command("doctor")
@click.option(
    "--dns-server",
    metavar="HOST[:PORT]",
    help="Ask this DNS server instead of the system's resolver (to see past a local view).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_obj
def doctor_command(app: App, dns_server: str | None, as_json: bool) -> None:
    """Check everything digest needs to send: the configuration, the database, the relay
    (TLS, login, what it offers), the DNS of the sender's domain (SPF, DKIM, DMARC, the
    bounce MX), the web site, each source and the inbound mailbox.  One line per finding
    with what to do; exit 0 when nothing failed, 1 when a check failed, 2 when the
    configuration or database stops everything."""
    found = doctor.examine(
        app.config_path,
        now=utc_now(),
        dns_server=dns_server,
        on_finding=None if as_json else show_finding,
    )
    if as_json:
        echo_json({"exit_code": found.exit_code, "findings": [asdict(f) for f in found.findings]})
    else:
        click.echo(
            f"doctor: {found.count('ok')} ok, {counted(found.count('warn'), 'warning')}, "
            f"{found.count('fail')} failed"
        )
    sys.exit(found.exit_code)


def show_finding(finding: doctor.Finding) -> None:
    status = click.style(finding.status.ljust(4), fg=STATE_COLOURS.get(finding.status, "red"))
    click.echo(f"{status}  {finding.area.ljust(8)}  {printable(finding.message, 1000)}")
    if finding.hint:
        click.echo(f"{' ' * 16}hint: {printable(finding.hint, 1000)}")


@cli.group("editions")
def editions_group() -> None:
    """The editions: what each carried, and how its delivery went."""


@editions_group.command("list")
@newsletter_option
@click.option("--limit", default=30, show_default=True, help="How many, newest first.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--csv", "as_csv", is_flag=True, help="Print the table as CSV.")
@click.pass_obj
def editions_list(app: App, limit: int, as_json: bool, as_csv: bool) -> None:
    """Each edition with its papers, deliveries by state, bounces and complaints."""
    with app.store() as store:
        rows = [queries.edition_status(store, e) for e in store.recent_editions(limit)]
    show_editions(rows, as_json=as_json, as_csv=as_csv)


@cli.group("newsletters")
def newsletters_group() -> None:
    """The newsletters this installation sends."""


@newsletters_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_obj
def newsletters_list(app: App, as_json: bool) -> None:
    """Each newsletter: its slug, name, sender, sources, readers by state, next run."""
    with app.store() as store:
        found = queries.newsletters(store, app.settings, now=utc_now())
    if as_json:
        echo_json(
            {
                "newsletters": [
                    {
                        "slug": n.newsletter.slug,
                        "name": n.newsletter.name,
                        "from": n.sender,
                        "sources": n.newsletter.sources,
                        "readers": n.readers,
                        "next_run": n.next_run,
                    }
                    for n in found
                ]
            }
        )
        return
    rows = [
        (
            n.newsletter.slug,
            n.newsletter.name,
            n.sender,
            ", ".join(n.newsletter.sources) if n.newsletter.sources is not None else "all",
            ", ".join(f"{count} {state}" for state, count in n.readers.items() if count) or "none",
            n.next_run,
        )
        for n in found
    ]
    table(["slug", "name", "from", "sources", "readers", "next run"], rows)


@cli.group("sources")
def sources_group() -> None:
    """The configured sources and their health."""


@sources_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--csv", "as_csv", is_flag=True, help="Print the table as CSV.")
@click.pass_obj
def sources_list(app: App, as_json: bool, as_csv: bool) -> None:
    """Each configured source: its last fetch, its status (ok, unchanged, failed with
    the reason, never) and the entries it brought to the last edition; exit 1 when a
    source failed its last fetch."""
    with app.store() as store:
        day, found = queries.sources(store, app.settings, now=utc_now())
    show_sources(day, found, as_json=as_json, as_csv=as_csv)
    if any(h.stale or (h.check is not None and h.check.outcome == "failed") for h in found):
        sys.exit(EXIT_PARTIAL)  # cron can tell: a source failed its last fetch, or is stale


@editions_group.command("show")
@newsletter_option
@click.argument("day", type=click.DateTime(formats=["%Y-%m-%d"]), metavar="DATE")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_obj
def editions_show(app: App, day: datetime, as_json: bool) -> None:
    """One edition: its papers, its deliveries by state, and every failure with its reason."""
    with app.store() as store:
        edition = store.get_edition(day.date())
        if edition is None:
            problem(f"no edition for {day.date()} (see 'digest editions list')")
            raise SystemExit(EXIT_PARTIAL)
        shown = queries.edition_status(store, edition)
        papers = store.edition_entries(edition.id)
    show_edition(shown, papers, as_json=as_json)


@cli.command()
@newsletter_option
@click.option("--editions", default=7, show_default=True, help="How many recent editions.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_obj
def status(app: App, editions: int, as_json: bool) -> None:
    """Show recent editions with their deliveries by state, and the failures with reasons."""
    settings = app.settings
    with app.store() as store:
        found = queries.status(store, settings, editions=editions, now=utc_now())
    show_status(found, settings.schedule, settings.timezone, as_json=as_json)


# -- what they print


def show_status(found: Status, schedule: str, timezone: str, *, as_json: bool) -> None:
    running = describe_holder(found.running) if found.running else None
    if as_json:
        echo_json(
            {
                "subscribers": found.subscribers,
                "next_run": found.next_run,
                "running": running,
                "last_run": asdict(found.last_run) if found.last_run else None,
                "failed_run": asdict(found.failed_run) if found.failed_run else None,
                "editions": [edition_json(e) for e in found.editions],
                "cadences": found.cadences,
                "weekly_next": found.weekly_next,
                "quiet": [{"run": at, "why": why} for at, why in found.quiet],
            }
        )
        return
    click.echo("subscribers: " + ", ".join(f"{n} {s}" for s, n in found.subscribers.items()))
    upcoming = found.next_run.isoformat() if found.next_run else "never"
    click.echo(f"schedule: {schedule!r} in {timezone}; next run {upcoming}")
    for at, why in found.quiet:
        click.echo(f"no email on {at:%A %Y-%m-%d}: {why}")
    if set(found.cadences) - {"daily"}:
        shown = [
            f"{n} {c}"
            + (f" (next {found.weekly_next[c]:%a %Y-%m-%d})" if c in found.weekly_next else "")
            for c, n in found.cadences.items()
        ]
        click.echo("readers by cadence: " + ", ".join(shown))
    if running:
        click.echo(f"running now: {running}")
    _runs(found.last_run, found.failed_run)
    _editions_in_status(found.editions, found.editions_total)


def _runs(last: RunRecord | None, failed: RunRecord | None) -> None:
    if last:
        click.echo(
            f"last run: {last.outcome} at {last.started_at:%Y-%m-%d %H:%M:%S %Z}"
            + (f": {last.summary}" if last.summary else "")
        )
    if failed:
        click.echo(
            f"a recent run failed at {failed.started_at:%Y-%m-%d %H:%M:%S %Z}: "
            f"{failed.summary or failed.outcome}"
        )


def _editions_in_status(rows: Sequence[EditionStatus], total: int) -> None:
    if not rows and not total:
        click.echo("no editions yet: run 'digest run'")
    elif len(rows) < total:
        click.echo(f"editions: {total} in all, the last {len(rows)} below")
    for row in rows:
        came_back = ""
        if row.inbound:
            came_back = (
                f"; bounces {row.rate('hard', 'soft'):.1%}, complaints {row.rate('complaint'):.2%}"
            )
        click.echo(
            f"{row.edition.day}: {row.edition.entry_count} papers; "
            + ", ".join(f"{n} {state}" for state, n in row.deliveries.items())
            + came_back
        )
        for email, reason in row.failures:
            click.echo(f"  failed: {email}: {reason}")


def show_editions(rows: Sequence[EditionStatus], *, as_json: bool, as_csv: bool = False) -> None:
    if as_json:
        echo_json({"editions": [edition_json(r) for r in rows]})
        return
    if not rows and not as_csv:
        click.echo("no editions yet: run 'digest run'")
        return
    table(
        ["date", "papers", "sent", "failed", "skipped", "queued", "bounces", "complaints"],
        [
            (
                r.edition.day,
                r.edition.entry_count,
                *(r.deliveries.get(s, 0) for s in ("sent", "failed", "skipped", "queued")),
                f"{r.rate('hard', 'soft'):.1%}",
                f"{r.rate('complaint'):.2%}",
            )
            for r in rows
        ],
        as_csv=as_csv,
    )


def show_sources(
    day: date | None, found: Sequence[SourceHealth], *, as_json: bool, as_csv: bool
) -> None:
    """Each configured source with its last check and what it brought to the last edition."""
    if as_json:
        echo_json({"last_edition": day, "sources": [source_json(h) for h in found]})
        return
    if not found and not as_csv:
        click.echo("no sources configured: add [[sources]] to the config")
        return
    table(
        [
            "name",
            "status",
            "last fetch",
            "read",
            "new",
            f"in {day or 'last edition'}",
            "detail",
            "location",
        ],
        [
            (
                h.spec.name,
                h.state,
                h.check and h.check.checked_at,
                h.check and h.check.read,
                h.check and h.check.new,
                h.in_last_edition,
                h.stale or (h.check and h.check.detail),
                h.spec.location,
            )
            for h in found
        ],
        as_csv=as_csv,
        coloured=1,
    )


def show_edition(row: EditionStatus, papers: Sequence[StoredEntry], *, as_json: bool) -> None:
    if as_json:
        echo_json(edition_papers_json(row, papers))
        return
    click.echo(f"edition {row.edition.day}: {counted(row.edition.entry_count, 'paper')}")
    click.echo(
        "deliveries: "
        + (", ".join(f"{n} {state}" for state, n in row.deliveries.items()) or "none")
    )
    if row.inbound:
        click.echo("came back: " + ", ".join(f"{n} {kind}" for kind, n in row.inbound.items()))
    for email, reason in row.failures:
        click.echo(f"  failed: {email}: {reason}")
    for stored in papers:
        click.echo(
            f"  * {stored.entry.title}"
            + (f" (arXiv:{stored.entry.arxiv_id})" if stored.entry.arxiv_id else "")
        )
