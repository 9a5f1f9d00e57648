"""The long-running worker: APScheduler runs the job on the configured schedule.

A thin shell over ``job.run``: the same code path as ``digest run``,
so the outbox and the run lock give the same guarantees.  Runs missed while
the worker was down are caught up at start within the grace window.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from threading import Event
from types import FrameType

from apscheduler.events import EVENT_SCHEDULER_STARTED
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from prometheus_client import start_http_server

from digest.app import RunInProgress, Store, hooks, job, transport_for
from digest.app.metrics import registry_for
from digest.config import Settings
from digest.errors import DigestError
from digest.logs import log_event
from digest.schedule import last_due_run, make_trigger, next_run

log = logging.getLogger("digest.worker")


def utc_now() -> datetime:
    return datetime.now(UTC)


class Worker:
    """Runs editions on schedule; ``stop`` ends the run in progress after its message in flight."""

    def __init__(
        self,
        settings: Settings,
        open_store: Callable[[], Store],
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.settings = settings
        self.open_store = open_store
        self.clock = clock
        self.stop = Event()
        self.grace = timedelta(hours=settings.misfire_grace_hours)

    def run_job(self, plan: bool = True, settings: Settings | None = None) -> job.RunReport | None:
        """Run the job once (for the newsletters ``settings`` sends: by default every one);
        log its outcome; never raise (the scheduler keeps going)."""
        settings = settings or self.settings
        store = self.open_store()
        try:
            report = job.run(
                store,
                settings,
                job.Runtime(now=self.clock, transport=transport_for(settings), stop=self.stop),
                job.RunOptions(plan=plan),
            )
        except RunInProgress as e:
            log_event(log, "run_skipped", reason=e.message)
            return None
        except DigestError as e:
            log_event(log, "run_failed", logging.ERROR, error=e.message)
            return None
        except Exception:
            log.exception("run_crashed")
            return None
        finally:
            store.close()
        delivery = report.delivery
        log_event(
            log,
            "run_finished",
            day=report.day,
            outcome=report.outcome,
            sent=delivery.sent,
            failed=delivery.failed,
            skipped=delivery.skipped,
            still_queued=report.still_queued,
            stopped=delivery.stopped or "",
        )
        return report

    def poll_job(self) -> None:
        """Read the inbound mailbox once; log what came back; never raise."""
        from digest.app import from_mailbox

        store = self.open_store()
        try:
            polled = from_mailbox(store, self.settings, now=self.clock())
        except DigestError as e:
            log_event(log, "inbound_failed", logging.ERROR, error=e.message)
            return
        except Exception:
            log.exception("inbound_crashed")
            return
        finally:
            store.close()
        if polled.handled or polled.unreadable or polled.left:
            log_event(
                log,
                "inbound_polled",
                handled=polled.handled,
                unreadable=polled.unreadable,
                left=polled.left,
            )

    def webhooks_job(self) -> None:
        """Post what the webhooks are due; log what an endpoint did not take; never raise."""
        store = self.open_store()
        try:
            done = hooks.dispatch(store, self.settings, now=self.clock, budget_seconds=25)
        except Exception:
            log.exception("webhooks_crashed")
            return
        finally:
            store.close()
        if done.failures:
            log_event(log, "webhooks_not_taken", logging.WARNING, failures=len(done.failures))

    def due_now(self, now: datetime, settings: Settings | None = None) -> datetime | None:
        """Return the scheduled time of a run that is due but not done, within the grace
        window (for the newsletters ``settings`` sends: by default every one)."""
        settings = settings or self.settings
        due = last_due_run(settings.schedule, settings.zone, now, self.grace)
        if due is None:
            return None
        store = self.open_store()
        try:
            day = due.astimezone(settings.zone).date()
            if all(_done(store.scoped(n.slug), day) for n in settings.newsletters_sent()):
                return None
            latest = store.recent_editions(1)
            if latest and (day - latest[0].day).days > 1:
                log_event(
                    log,
                    "missed_editions",
                    first=latest[0].day + timedelta(days=1),
                    last=day - timedelta(days=1),
                    note="their papers are in the catch-up edition; nothing is lost",
                )
        finally:
            store.close()
        return due

    def serve(self) -> None:
        """Block running the schedule until SIGTERM or SIGINT."""
        settings = self.settings
        scheduler = BlockingScheduler(timezone=settings.zone)
        now = self.clock()
        self._add_jobs(scheduler, now)

        def shut_down(signum: int, _frame: FrameType | None) -> None:
            log_event(log, "worker_stopping", signal=signal.Signals(signum).name)
            self.stop.set()
            if scheduler.running:  # else it stops the moment it starts (below)
                scheduler.shutdown(wait=True)

        def started(_event: object) -> None:
            if self.stop.is_set():  # a signal came before the scheduler ran
                scheduler.shutdown(wait=False)
                return
            log_event(
                log,
                "worker_started",
                schedule="; ".join(each.schedule for _, each in self.schedules()),
                timezone=settings.timezone,
                delivery=settings.delivery_mode,
                next_run=min(
                    next_run(each.schedule, each.zone, now) or now for _, each in self.schedules()
                ).isoformat(),
            )

        scheduler.add_listener(started, EVENT_SCHEDULER_STARTED)
        signal.signal(signal.SIGTERM, shut_down)
        signal.signal(signal.SIGINT, shut_down)
        with self._metrics_served():
            scheduler.start()
        log_event(log, "worker_stopped")

    @contextmanager
    def _metrics_served(self) -> Iterator[None]:
        """With METRICS_PORT set, the metrics on that port (METRICS_BIND) while it runs."""
        web = self.settings.web
        if web.metrics_port is None:
            yield
            return
        store = self.open_store()
        registry = registry_for(self.settings, lambda: store)
        server, thread = start_http_server(web.metrics_port, web.metrics_bind, registry)
        log_event(log, "metrics_served", address=f"{web.metrics_bind}:{web.metrics_port}")
        try:
            yield
        finally:
            server.shutdown()
            server.server_close()
            thread.join()
            store.close()

    def _add_jobs(self, scheduler: BlockingScheduler, now: datetime) -> None:
        """The edition on its cron, local-time sends, the inbox poll, and a catch-up."""
        settings = self.settings
        common = {
            "coalesce": True,
            "max_instances": 1,
            "misfire_grace_time": int(self.grace.total_seconds()),
        }
        for name, each in self.schedules():
            trigger = make_trigger(each.schedule, each.zone)
            kwargs = {"settings": each}
            scheduler.add_job(self.run_job, trigger, id=name, kwargs=kwargs, **common)
            due = self.due_now(now, each)
            if due is not None:
                log_event(log, "catching_up", scheduled=due.isoformat(), late_by=str(now - due))
                scheduler.add_job(
                    self.run_job,
                    "date",
                    run_date=now,
                    id=f"catch-up {name}",
                    kwargs=kwargs,
                    **common,
                )
        if settings.delivery_mode == "local":
            minute = settings.local_delivery_time[1]
            every_half_hour = f"{minute},{(minute + 30) % 60}"
            scheduler.add_job(
                self.run_job,
                CronTrigger(minute=every_half_hour, timezone=UTC),
                id="local",
                kwargs={"plan": False},
                **common,
            )
        if settings.inbound.imap_url:
            minutes = settings.inbound.imap_poll_minutes
            scheduler.add_job(self.poll_job, "interval", id="inbound", minutes=minutes, **common)
        if settings.webhooks:
            scheduler.add_job(self.webhooks_job, "interval", id="webhooks", seconds=30, **common)

    def schedules(self) -> list[tuple[str, Settings]]:
        """One job a schedule: its name, and the settings of a run that sends the
        newsletters made on it ("edition" when they all share one, as without newsletters)."""
        groups: dict[str, list[str]] = {}
        for newsletter in self.settings.all_newsletters():
            cron = self.settings.for_newsletter(newsletter).schedule
            groups.setdefault(cron, []).append(newsletter.slug)
        return [
            (
                "edition" if len(groups) == 1 else f"edition {' '.join(slugs)}",
                replace(self.settings, schedule=cron, sends=tuple(slugs)),
            )
            for cron, slugs in groups.items()
        ]


def _done(store: Store, day: date) -> bool:
    """Whether the store's newsletter has its edition of ``day``, with nothing queued."""
    edition = store.get_edition(day)
    return edition is not None and not store.count_queued([edition.id])
