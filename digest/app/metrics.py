"""What an operator's monitoring reads: digest's state in the Prometheus text format.

Read from the database at each scrape, so that every process that sends (a cron
``digest run``, the worker, several ``digest send``) counts, whichever one is scraped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from digest.app import queries
from digest.config import Settings
from digest.store import SCHEMA_REVISION, Store

#: The Content-Type of what ``exposition`` returns.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: Delivery states a counter counts (a queued delivery is the queue's depth instead).
_DONE = ("sent", "failed", "skipped", "folded")
#: Source checks that found the source well (it answered, new entries or none).
_SOURCE_OK = ("ok", "unchanged")


class DigestCollector:
    """Collects digest's metrics from the database each time it is asked."""

    def __init__(self, settings: Settings, store: Callable[[], Store]) -> None:
        self.settings = settings
        self.store = store

    def collect(self) -> Iterator[Metric]:
        store = self.store()
        yield from _deliveries(store)
        yield from _readers(store, self.settings)
        yield from _runs(store)
        yield from _sources(store, self.settings)
        inbound = CounterMetricFamily(
            "digest_inbound_messages", "Mail that came back, by kind.", labels=["kind"]
        )
        for kind, count in sorted(store.inbound_totals().items()):
            inbound.add_metric([kind], count)
        yield inbound


def registry_for(settings: Settings, store: Callable[[], Store]) -> CollectorRegistry:
    """A registry holding digest's collector (a process adds its own metrics to it)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DigestCollector(settings, store))
    return registry


def exposition(registry: CollectorRegistry) -> bytes:
    """The registry's metrics in the text format a Prometheus server scrapes."""
    return generate_latest(registry)


def readiness(store: Store) -> str | None:
    """Why this process cannot serve (the database is unreachable or out of date), or
    None when it can."""
    try:
        revision = store.schema_revision()
    except Exception as e:  # noqa: BLE001 - any failure to read it is the answer
        return f"the database does not answer: {type(e).__name__}"
    if revision != SCHEMA_REVISION:
        return f"the database is at revision {revision}, not {SCHEMA_REVISION}: digest db upgrade"
    return None


def _deliveries(store: Store) -> Iterator[Metric]:
    done = CounterMetricFamily(
        "digest_messages",
        "Deliveries of every edition by what became of them.",
        labels=["newsletter", "status"],
    )
    queued = GaugeMetricFamily(
        "digest_queue_depth", "Deliveries still queued, by newsletter.", labels=["newsletter"]
    )
    for (newsletter, status), count in sorted(store.delivery_totals().items()):
        if status == "queued":
            queued.add_metric([newsletter], count)
        elif status in _DONE:
            done.add_metric([newsletter, status], count)
    yield done
    yield queued


def _readers(store: Store, settings: Settings) -> Iterator[Metric]:
    readers = GaugeMetricFamily(
        "digest_readers", "Readers by newsletter and state.", labels=["newsletter", "state"]
    )
    counts = store.count_by_newsletter()
    for newsletter in settings.all_newsletters():
        for state, count in counts.get(newsletter.slug, {}).items():
            readers.add_metric([newsletter.slug, state], count)
    yield readers


def _runs(store: Store) -> Iterator[Metric]:
    finished = [run for run in store.recent_runs(10) if run.finished_at is not None]
    if not finished:
        return
    last = finished[0]
    assert last.finished_at is not None
    yield GaugeMetricFamily(
        "digest_last_run_timestamp_seconds",
        "When the last run finished.",
        value=last.finished_at.timestamp(),
    )
    yield GaugeMetricFamily(
        "digest_last_run_duration_seconds",
        "How long the last run took.",
        value=(last.finished_at - last.started_at).total_seconds(),
    )
    outcome = GaugeMetricFamily(
        "digest_last_run_ok", "1 when the last run's outcome was ok.", labels=["outcome"]
    )
    outcome.add_metric([last.outcome], 1.0 if last.outcome == "ok" else 0.0)
    yield outcome


def _sources(store: Store, settings: Settings) -> Iterator[Metric]:
    checked = GaugeMetricFamily(
        "digest_source_last_check_timestamp_seconds",
        "When each source was last read.",
        labels=["source"],
    )
    healthy = GaugeMetricFamily(
        "digest_source_ok", "1 when a source's last read went well.", labels=["source"]
    )
    stale = GaugeMetricFamily(
        "digest_source_stale",
        "1 when a source brought nothing new past an announcement day of its calendar.",
        labels=["source"],
    )
    for name, check in sorted(store.source_checks().items()):
        checked.add_metric([name], check.checked_at.timestamp())
        healthy.add_metric([name], 1.0 if check.outcome in _SOURCE_OK else 0.0)
    _, health = queries.sources(store, settings, now=datetime.now(UTC))
    for each in health:
        stale.add_metric([each.spec.name], 1.0 if each.stale else 0.0)
    yield checked
    yield healthy
    yield stale
