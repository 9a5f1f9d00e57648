"""How the ``digest`` command shows its results: text for people, JSON for scripts,
and one progress display.

Everything a command prints goes through here, so the words for one thing
(a run's summary, a failure) are written once.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from datetime import date, datetime
from typing import Any

import click

from digest.app import (
    Match,
    RenderedEmail,
    RunRecord,
    Skip,
    SubscriberRow,
    Wait,
    cadence_of,
    describe_holder,
)
from digest.app.accounts import ImportReport
from digest.app.job import Planned, RunReport
from digest.app.queries import EditionStatus, ReaderHistory, SourceHealth, Status
from digest.app.tryouts import Preview
from digest.logs import peak_rss_kb
from digest.models import (
    IngestReport,
    SourceReport,
    StoredEntry,
    Subscriber,
)
from digest.subscribers import format_topics, neutralise_cell
from digest.text import printable

EXIT_OK, EXIT_PARTIAL, EXIT_ERROR = 0, 1, 2


class Progress:
    """A progress bar on stderr, shown only on a terminal (never under cron or --json)."""

    def __init__(self, label: str, enabled: bool) -> None:
        self.label = label
        self.enabled = enabled and sys.stderr.isatty()
        self.bar: Any = None

    def start(self, total: int) -> None:
        if self.enabled and total > 1:
            self.bar = click.progressbar(
                length=total, label=self.label, file=sys.stderr, show_pos=True, show_eta=True
            )
            self.bar.__enter__()

    def advance(self, *_done: object) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def finish(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


@contextmanager
def progress(label: str, *, enabled: bool = True, total: int = 0) -> Iterator[Progress]:
    """A progress display for the ``with`` block; ``total`` starts it at once."""
    shown = Progress(label, enabled)
    shown.start(total)
    try:
        yield shown
    finally:
        shown.finish()


def echo_json(payload: Any) -> None:
    click.echo(json.dumps(payload, default=_json_default, ensure_ascii=False))


def counted(count: int, word: str) -> str:
    """``1 row``, ``2 rows``: a count with its noun."""
    return f"{count:,} {word}{'' if count == 1 else 's'}"


#: How a state looks on a terminal (click leaves the colour out anywhere else).
STATE_COLOURS = {
    "active": "green",
    "ok": "green",
    "sent": "green",
    "pending": "cyan",
    "queued": "cyan",
    "unchanged": "bright_black",
    "skipped": "bright_black",
    "paused": "yellow",
    "unsubscribed": "red",
    "bounced": "red",
    "complained": "red",
    "failed": "red",
}


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    as_csv: bool = False,
    coloured: int | None = None,
) -> None:
    """Rows under their headers: aligned for people (column ``coloured`` in its state's
    colour), or CSV for a spreadsheet."""
    cells = [["" if v is None else _cell(v) for v in row] for row in rows]
    if as_csv:
        text = io.StringIO()
        out = csv.writer(text, lineterminator="\n")
        out.writerow(headers)
        out.writerows([neutralise_cell(v) for v in row] for row in cells)  # feed text in it
        click.echo(text.getvalue(), nl=False)
        return
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    click.echo(
        click.style(
            "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip(), bold=True
        )
    )
    for row in cells:
        shown = [v.ljust(w) for v, w in zip(row, widths, strict=True)]
        if coloured is not None:
            shown[coloured] = click.style(shown[coloured], fg=STATE_COLOURS.get(row[coloured]))
        click.echo("  ".join(shown).rstrip())


def _cell(value: Any) -> str:
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M}"
    return printable(value, 10_000)  # rows stored before the gates may hold controls


def problem(text: str) -> None:
    """One line on stderr, as every problem is told: nothing in it steers a terminal."""
    click.echo(f"digest: {printable(text, 10_000)}", err=True)


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
        click.echo(f"edition {plan.day}: nothing new since the last edition")


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
                    _subscriber_json(r.subscriber)
                    | {"created_at": r.created_at, "last_sent": r.last_sent}
                    for r in found
                ],
            }
        )
        return
    table(
        ["email", "name", "state", "theme", "cadence", "created", "last sent", "topics"],
        [
            (
                r.subscriber.email,
                r.subscriber.name,
                r.subscriber.state,
                r.subscriber.theme,
                r.subscriber.cadence,
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
        echo_json(
            _subscriber_json(subscriber)
            | {
                "events": [asdict(e) for e in found.events],
                "came_back": [
                    {"at": at, "kind": kind, "detail": detail}
                    for at, kind, detail in found.came_back
                ],
                "feedback": [asdict(m) for m in found.marks],
                "deliveries": [asdict(d) | {"day": day} for day, d in found.deliveries],
                "next_email": found.next_email,
            }
        )
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
        f"  cadence: {cadence_of(subscriber).describe()}; next email: "
        f"{found.next_email or 'none (not being mailed)'}"
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
        | {"state": subscriber.state, "topics": [asdict(t) for t in subscriber.topics]}
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
                        "score": round(m.score, 4),
                        "title": m.entry.entry.title,
                        "source": m.entry.source,
                        "because": m.reason or None,
                    }
                    for m in found[:limit]
                ],
            }
        )
        return
    for match in found[:limit]:
        because = f"  (because: {match.reason})" if match.reason else ""
        click.echo(f"{match.score:7.2f}  {match.entry.entry.title}{because}")
    click.echo(f"match: {len(found)} of {searched} entries match {query!r}", err=True)


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


# -- status


def status(found: Status, schedule: str, timezone: str, *, as_json: bool) -> None:
    running = describe_holder(found.running) if found.running else None
    if as_json:
        echo_json(
            {
                "subscribers": found.subscribers,
                "next_run": found.next_run,
                "running": running,
                "last_run": asdict(found.last_run) if found.last_run else None,
                "failed_run": asdict(found.failed_run) if found.failed_run else None,
                "editions": [_edition_json(e) for e in found.editions],
                "cadences": found.cadences,
                "weekly_next": found.weekly_next,
            }
        )
        return
    click.echo("subscribers: " + ", ".join(f"{n} {s}" for s, n in found.subscribers.items()))
    upcoming = found.next_run.isoformat() if found.next_run else "never"
    click.echo(f"schedule: {schedule!r} in {timezone}; next run {upcoming}")
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


def _edition_json(row: EditionStatus) -> dict[str, Any]:
    return {
        "day": row.edition.day,
        "papers": row.edition.entry_count,
        "deliveries": row.deliveries,
        "came_back": row.inbound,
        "bounce_rate": round(row.rate("hard", "soft"), 4),
        "complaint_rate": round(row.rate("complaint"), 4),
        "failures": [{"email": email, "reason": reason} for email, reason in row.failures],
    }


def editions(rows: Sequence[EditionStatus], *, as_json: bool, as_csv: bool = False) -> None:
    if as_json:
        echo_json({"editions": [_edition_json(r) for r in rows]})
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


def sources(
    day: date | None, found: Sequence[SourceHealth], *, as_json: bool, as_csv: bool
) -> None:
    """Each configured source with its last check and what it brought to the last edition."""
    if as_json:
        echo_json({"last_edition": day, "sources": [_source_json(h) for h in found]})
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
                h.check.outcome if h.check else "never",
                h.check and h.check.checked_at,
                h.check and h.check.read,
                h.check and h.check.new,
                h.in_last_edition,
                h.check and h.check.detail,
                h.spec.location,
            )
            for h in found
        ],
        as_csv=as_csv,
        coloured=1,
    )


def _source_json(health: SourceHealth) -> dict[str, Any]:
    return {
        "name": health.spec.name,
        "location": health.spec.location,
        "format": health.spec.format,
        "last_check": asdict(health.check) if health.check else None,
        "in_last_edition": health.in_last_edition,
    }


def edition(row: EditionStatus, papers: Sequence[StoredEntry], *, as_json: bool) -> None:
    if as_json:
        echo_json(
            _edition_json(row)
            | {
                "entries": [
                    {"title": s.entry.title, "arxiv_id": s.entry.arxiv_id, "source": s.source}
                    for s in papers
                ]
            }
        )
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


def _json_default(value: Any) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {value!r}")
