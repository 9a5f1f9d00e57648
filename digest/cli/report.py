"""How the ``digest`` command shows its results: text for people, JSON for scripts,
and one progress display.

The words for one thing (a run's summary, a reader, a failure) are written
once, here; the status commands print theirs beside them (``cli.queries``),
and the shapes (JSON, tables, progress) are ``cli.output``'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import click

from digest.app import (
    Match,
    RenderedEmail,
    Skip,
    SubscriberRow,
    Wait,
)
from digest.app.accounts import ImportReport
from digest.app.job import Planned, RunReport
from digest.app.queries import ReaderHistory
from digest.app.tryouts import Preview
from digest.app.views import history_json, subscriber_json
from digest.cli.output import (
    EXIT_OK,
    EXIT_PARTIAL,
    counted,
    echo_json,
    problem,
    table,
)
from digest.logs import peak_rss_kb
from digest.models import (
    IngestReport,
    SourceReport,
    Subscriber,
)
from digest.subscribers import format_topics

# -- ingest and run


def ingest(report: IngestReport, seconds: float, total: int, url: str, *, as_json: bool) -> int:
    """Show an ingest; return its exit code."""
    if as_json:
        echo_json(_ingest_json(report, seconds, total))
    else:
        for source in report.sources:
            _source_line(source)
        failed = sum(1 for s in report.sources if not s.ok)
        click.echo(
            f"ingest: {counted(len(report.sources), 'source')}, {report.total('read')} read, "
            f"{report.total('new')} new, {report.total('seen')} already seen, {failed} failed "
            f"in {seconds:.2f}s; {total} papers in {url}"
        )
    _source_failures(report)
    return EXIT_OK if report.ok else EXIT_PARTIAL


def _source_line(source: SourceReport) -> None:
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
    # A failed source is told once, on stderr (_source_failures), where errors go.


def _source_failures(report: IngestReport) -> None:
    for failed in (s for s in report.sources if not s.ok):
        problem(f"error: {failed.source}: {failed.error}")


def run(report: RunReport, seconds: float, *, as_json: bool, told: bool = False) -> int:
    """Show a run's report and failures (``told``: its plan was shown already, by
    ``planned``); return the exit code it deserves."""
    if as_json:
        echo_json(_run_json(report, seconds))
    else:
        if not told:
            planned(Planned(report.day, report.ingest, report.edition, 0))
        _run_text(report, seconds)
    if report.delivery.interrupted:
        problem("stopped on request; the rest stays queued for the next run")
        return EXIT_OK
    if report.ingest:
        _source_failures(report.ingest)
    if report.delivery.stopped:
        problem(f"error: {report.delivery.stopped}")
    for holder, until, count in report.held_elsewhere:
        problem(
            f"{count} deliveries are held by another sender ({holder}) until "
            f"{until:%H:%M:%S} UTC: it sends them, or the next run after that"
        )
    for address, reason in report.delivery.failures[:20]:
        problem(f"failed: {address}: {reason}")
    return EXIT_OK if report.ok else EXIT_PARTIAL


def planned(plan: Planned) -> None:
    """What a run ingested and which edition it built, as soon as it knows."""
    if plan.ingest:
        ingested = plan.ingest
        click.echo(
            f"ingest: {ingested.total('new')} new of {ingested.total('read')} read "
            f"from {counted(len(ingested.sources), 'source')}"
        )
    if plan.edition is not None:
        click.echo(f"edition {plan.day}: {counted(plan.edition.entry_count, 'paper')}")
    elif plan.ingest is not None:  # 'digest send' builds no edition: nothing to say
        read = [s for s in plan.ingest.sources if s.ok]
        if plan.ingest.sources and not read:
            why = "no source could be read (see the errors), so there is nothing new"
        else:
            why = "nothing new since the last edition"
        click.echo(f"edition {plan.day}: none built: {why}")


def _run_text(report: RunReport, seconds: float) -> None:
    rate = report.delivery.sent / seconds if seconds > 0 else 0.0
    pace = "" if report.dry_run else f" ({rate:.1f} messages/s)"
    click.echo(
        f"run{' (dry run)' if report.dry_run else ''}: {report.summary()} in {seconds:.1f}s{pace}"
    )


def _run_json(report: RunReport, seconds: float) -> dict[str, Any]:
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
        "held_elsewhere": [
            {"holder": h, "until": u.isoformat(), "deliveries": n}
            for h, u, n in report.held_elsewhere
        ],
        "stopped": delivery.stopped,
        "failures": [{"email": a, "reason": r} for a, r in delivery.failures],
        "messages_per_second": round(delivery.sent / seconds, 2) if seconds > 0 else None,
        "stage_seconds": {stage: round(t, 3) for stage, t in delivery.seconds.items()},
        # This process and the composing child (when there was one), together.
        "peak_rss_mb": round((peak_rss_kb() + delivery.composer_peak_rss_kb) / 1024, 1),
    }


def _ingest_json(report: IngestReport, seconds: float, total: int | None) -> dict[str, Any]:
    return {
        "ok": report.ok,
        "started": report.started,
        "seconds": round(seconds, 3),
        "totals": {name: report.total(name) for name in ("read", "new", "seen", "skipped")}
        | {"failed": sum(1 for s in report.sources if not s.ok), "stored": total},
        "sources": [asdict(s) | {"warnings": list(s.warnings)} for s in report.sources],
    }


# -- subscribers


def subscriber_line(subscriber: Subscriber) -> None:
    topics = format_topics(subscriber.topics) or "(every new paper)"
    click.echo(f"{subscriber.email}\t{subscriber.state}\t{topics}")


def subscribers(
    found: Sequence[SubscriberRow], counts: dict[str, int], *, as_json: bool, as_csv: bool
) -> None:
    if as_json:
        echo_json(
            {
                "counts": counts,
                "subscribers": [
                    subscriber_json(r.subscriber)
                    | {"created_at": r.created_at, "last_sent": r.last_sent}
                    for r in found
                ],
            }
        )
        return
    table(
        ["email", "name", "state", "theme", "cadence", "joined", "last sent", "topics"],
        [
            (
                r.subscriber.email,
                r.subscriber.name,
                r.subscriber.state,
                r.subscriber.theme,
                str(r.subscriber.cadence),
                r.created_at,
                r.last_sent,
                format_topics(r.subscriber.topics) or "(every new paper)",
            )
            for r in found
        ],
        as_csv=as_csv,
        coloured=2,
    )
    click.echo(", ".join(f"{n} {state}" for state, n in counts.items()), err=True)


def reader(found: ReaderHistory, *, as_json: bool) -> None:
    """One reader, their history and every delivery to them."""
    subscriber = found.subscriber
    if as_json:
        echo_json(history_json(found))
        return
    subscriber_line(subscriber)
    for event in found.events:
        detail = f" ({event.detail})" if event.detail else ""
        click.echo(f"  {event.at:%Y-%m-%d %H:%M:%S}Z  {event.state:<12} by {event.channel}{detail}")
    for at, kind, detail in found.came_back:
        why = f" ({detail})" if detail else ""
        click.echo(f"  {at:%Y-%m-%d %H:%M:%S}Z  came back: {kind}{why}")
    click.echo(
        f"  theme: {subscriber.theme or '(the default)'}; "
        f"timezone: {subscriber.timezone or '(the default)'}"
    )
    click.echo(
        f"  cadence: {subscriber.cadence.describe()}; next email: "
        + (
            f"{found.next_email:%Y-%m-%d %H:%M %Z}"
            if found.next_email
            else "none (not being mailed)"
        )
    )
    liked = sum(1 for m in found.marks if m.vote > 0)
    if found.marks:
        click.echo(f"  feedback: {liked} more like this or liked, {len(found.marks) - liked} less")
    for day, delivery in found.deliveries:
        said = f": {delivery.detail}" if delivery.detail else ""
        again = f"  resent {delivery.resends}x" if delivery.resends else ""
        click.echo(
            f"  {day}  {delivery.status:<8} attempts {delivery.attempts}{again}  "
            f"{delivery.message_id or '-'}{said}"
        )


def imported(report: ImportReport, file_name: str, seconds: float, *, as_json: bool) -> int:
    """Show an import; return its exit code (1 when a row was skipped)."""
    result = report.result
    if as_json:
        echo_json(
            asdict(result)
            | {
                "skipped": report.skipped,
                "seconds": round(seconds, 3),
                "problems": [asdict(p) for p in report.problems],
            }
        )
    else:
        for found in report.problems:
            click.echo(f"{file_name}:{found.line}: {found.reason}", err=True)
        click.echo(
            f"import: {result.created} created, {result.updated} updated, "
            f"{result.kept_unsubscribed} kept unsubscribed, "
            f"{counted(report.skipped, 'row')} skipped in {seconds:.2f}s"
        )
    return EXIT_PARTIAL if report.skipped else EXIT_OK


# -- what a query or a reader gets


def matches(query: str, searched: int, found: list[Match], limit: int, *, as_json: bool) -> None:
    if as_json:
        echo_json(
            {
                "query": query,
                "searched": searched,
                "matched": len(found),
                "matches": [
                    {
                        "rank": rank,
                        "bm25": round(m.score, 4),
                        "wanted": None if m.wanted is None else round(m.wanted, 4),
                        "title": m.entry.entry.title,
                        "source": m.entry.source,
                        "because": m.reason or None,
                    }
                    for rank, m in enumerate(found[:limit], start=1)
                ],
            }
        )
        return
    modelled = any(m.wanted is not None for m in found)
    click.echo(click.style("rank   bm25" + ("  wanted" if modelled else "") + "  title", bold=True))
    for rank, match in enumerate(found[:limit], start=1):
        because = f"  (because: {match.reason})" if match.reason else ""
        wanted = f"  {match.wanted:6.0%}" if match.wanted is not None else ""
        click.echo(f"{rank:4}  {match.score:5.2f}{wanted}  {match.entry.entry.title}{because}")
    order = (
        "in the reader's order (bm25's and their model's, fused)" if modelled else "best bm25 first"
    )
    click.echo(f"match: {len(found)} of {searched} entries match {query!r}, {order}", err=True)


def preview(
    found: Preview, rendered: RenderedEmail, html: str, text: str, email: str | None
) -> None:
    click.echo(f"subject: {rendered.subject}")
    click.echo(f"html: {html} ({len(rendered.html.encode()):,} bytes)")
    click.echo(f"text: {text}")
    click.echo(
        f"preview: {rendered.shown} papers shown, {rendered.cut} more counted, "
        f"of {found.available} in the edition of {found.day.isoformat()}",
        err=True,
    )
    if isinstance(found.decision, Skip):
        click.echo(
            f"note: 'digest run' would not send it to {email}: {found.decision.reason}", err=True
        )
    elif isinstance(found.decision, Wait):
        click.echo(f"note: {email} gets it at {found.decision.until:%Y-%m-%d %H:%M %Z}", err=True)
