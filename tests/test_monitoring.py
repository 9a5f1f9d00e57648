"""Monitoring: /metrics in the Prometheus format, counted from the database; health."""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from digest.config import Settings
from digest.models import InboundRecord
from digest.store import Store
from digest.web import create_app
from digest.worker import Worker

from .conftest import NOW, Clock, fill, make_settings, run

TOKEN = "a-scrapers-token-0123456789"


def samples(body: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, by name and labels, as Prometheus' own parser reads it."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, None, DIGEST_DATABASE_URL=f"sqlite:///{tmp_path / 'm.sqlite3'}")


def site(settings: Settings) -> Flask:
    return create_app({"TESTING": True, "DIGEST_SETTINGS": settings})


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    opened = Store.open(settings.database_url)
    yield opened
    opened.close()


def test_the_counters_match_what_a_run_reported(settings: Settings, store: Store) -> None:
    fill(store, 5)
    report = run(store, settings)
    store.record_inbound(InboundRecord("complaint", NOW, 1, None, None, "<x@y>", "spam"))
    app = site(settings)
    body = app.test_client().get("/metrics").get_data(as_text=True)
    found = samples(body)
    sent = found[("digest_messages_total", (("newsletter", "main"), ("status", "sent")))]
    assert sent == report.delivery.sent == 5
    assert found[("digest_readers", (("newsletter", "main"), ("state", "active")))] == 5
    assert found[("digest_last_run_ok", (("outcome", "ok"),))] == 1.0
    assert found[("digest_inbound_messages_total", (("kind", "complaint"),))] == 1
    assert ("digest_last_run_duration_seconds", ()) in found
    # The web app counts what it answered (this scrape's 200 comes after it was taken).
    again = samples(app.test_client().get("/metrics").get_data(as_text=True))
    assert again[("digest_http_requests_total", (("status", "200"),))] >= 1


def test_metrics_need_the_token_or_this_machine(settings: Settings) -> None:
    open_site = site(settings).test_client()
    assert open_site.get("/metrics").status_code == 200  # loopback, no proxy
    far = {"REMOTE_ADDR": "203.0.113.7"}
    assert open_site.get("/metrics", environ_base=far).status_code == 404
    proxied = {"X-Forwarded-For": "203.0.113.7"}
    assert open_site.get("/metrics", headers=proxied).status_code == 404
    guarded = site(replace(settings, web=replace(settings.web, metrics_token=TOKEN))).test_client()
    assert guarded.get("/metrics").status_code == 401
    wrong = {"Authorization": "Bearer not-it"}
    assert guarded.get("/metrics", headers=wrong, environ_base=far).status_code == 401
    right = {"Authorization": f"Bearer {TOKEN}"}
    assert guarded.get("/metrics", headers=right, environ_base=far).status_code == 200


def test_ready_means_the_database_answers_at_the_current_revision(
    settings: Settings, store: Store
) -> None:
    client = site(settings).test_client()
    assert client.get("/healthz").get_json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0012'"))
    answer = client.get("/readyz")
    assert answer.status_code == 503 and "digest db upgrade" in answer.get_json()["reason"]
    assert client.get("/healthz").status_code == 200  # alive, not ready


def test_the_worker_serves_its_metrics_on_its_port(settings: Settings, store: Store) -> None:
    fill(store, 2)
    run(store, settings)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = replace(settings, web=replace(settings.web, metrics_port=port))
    worker = Worker(settings, lambda: Store.open(settings.database_url), clock=Clock(NOW))
    with worker._metrics_served():
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as response:
            body = response.read().decode()
    sent = samples(body)[("digest_messages_total", (("newsletter", "main"), ("status", "sent")))]
    assert sent == 2
