"""Webhooks: events kept with their change, signed as Standard Webhooks are, posted until
taken (at least once, the same webhook-id), and never by a send."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from digest.app import apikeys, hooks
from digest.config import Settings, load_settings
from digest.errors import ConfigError
from digest.passwords import hash_password
from digest.store import Store
from digest.web import create_app
from digest.webhooks import signature

from .conftest import NOW, SAMPLE_DUMP, Clock, fill, message_text, run, wait_until

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()


def verified(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """Standard Webhooks' reference check: HMAC-SHA256 of id.timestamp.body, keyed by the
    secret's bytes, against each v1 signature the header lists."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    given = [s.partition(",")[2] for s in headers["webhook-signature"].split()]
    return any(hmac.compare_digest(expected, s) for s in given)


class Receiver:
    """An endpoint of our own: records each POST; answers ``status``; holds while asked."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.status = 200
        self.holding = threading.Event()
        self.held = threading.Event()
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                if receiver.holding.is_set():  # the sender is killed while it waits
                    receiver.held.set()
                    receiver.release.wait(60)
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def events(self) -> list[tuple[str, dict[str, Any], dict[str, str]]]:
        return [(json.loads(b)["type"], json.loads(b)["data"], h) for h, b in self.received]


@contextmanager
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    thread = threading.Thread(target=found.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield found
    finally:
        found.server.shutdown()
        found.server.server_close()


def configured(tmp_path: Path, url: str, events: str = '["*"]') -> Settings:
    config = tmp_path / "digest.toml"
    config.write_text(
        f'[sender]\naddress = "digest@example.org"\n[[sources]]\nname = "hf"\n'
        f'location = "{SAMPLE_DUMP}"\n'
        f'[[webhooks]]\nurl = "{url}"\nevents = {events}\nsecret_env = "HOOK_SECRET"\n',
        encoding="utf-8",
    )
    return load_settings(
        config,
        environ={
            "DIGEST_DATABASE_URL": f"sqlite:///{tmp_path / 'hooks.sqlite3'}",
            "DIGEST_BASE_URL": "https://digest.example.org",
            "SECRET_KEY": "test-secret-key-for-digest-tests-0123456789",
            "DIGEST_OUTBOX_DIR": str(tmp_path / "outbox"),
            "HOOK_SECRET": SECRET,
        },
    )


def test_the_signature_is_standard_webhooks() -> None:
    # The test vector Standard Webhooks publishes with its reference libraries.
    body = b'{"test": 2432232314}'
    said = signature(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body
    )
    assert said == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_a_reader_from_the_api_is_told_of_when_confirmed_and_when_gone(tmp_path: Path) -> None:
    with receiver() as endpoint:
        settings = configured(
            tmp_path, endpoint.url, '["subscriber.confirmed", "subscriber.unsubscribed"]'
        )
        app = create_app({"TESTING": True, "DIGEST_SETTINGS": settings, "DIGEST_CLOCK": Clock(NOW)})
        client = app.test_client()
        store: Store = app.extensions["digest"].store
        hooks.dispatch(store, settings, now=Clock(NOW))  # the webhook starts from now
        _, token = apikeys.create(store, "onboarding", "write", now=NOW)
        made = client.post(
            "/api/v1/subscribers",
            json={"email": "ada@example.org"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert made.status_code == 201
        [mail] = sorted((tmp_path / "outbox").glob("*.eml"))
        link = re.search(
            r"https://digest\.example\.org(/confirm/[^\s\"<>]+)", message_text(mail.read_text())
        )
        assert link is not None
        page = client.get(link.group(1)).get_data(as_text=True)
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert csrf is not None
        assert client.post(link.group(1), data={"csrf_token": csrf.group(1)}).status_code == 200
        assert hooks.dispatch(store, settings, now=Clock(NOW)).taken == 1
        [(kind, data, headers)] = endpoint.events()
        assert (kind, data["email"], data["state"]) == (
            "subscriber.confirmed",
            "ada@example.org",
            "active",
        )
        assert verified(SECRET, headers, endpoint.received[0][1])
        assert not verified(
            "whsec_" + base64.b64encode(b"x" * 32).decode(), headers, endpoint.received[0][1]
        )
        # One-click unsubscribe from the welcome mail's header, then the event.
        welcome = sorted((tmp_path / "outbox").glob("*.eml"))[-1].read_text()
        one_click = re.search(r"List-Unsubscribe: <https://digest\.example\.org([^>]+)>", welcome)
        assert one_click is not None
        assert (
            client.post(one_click.group(1), data={"List-Unsubscribe": "One-Click"}).status_code
            == 200
        )
        hooks.dispatch(store, settings, now=Clock(NOW))
        assert [k for k, _, _ in endpoint.events()] == [
            "subscriber.confirmed",
            "subscriber.unsubscribed",
        ]
        again = client.post(
            "/api/v1/subscribers",
            json={"email": "ada@example.org"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert again.status_code == 409
        store.close()


def test_an_endpoint_that_fails_is_tried_again_with_the_same_id(tmp_path: Path) -> None:
    with receiver() as endpoint:
        settings = configured(tmp_path, endpoint.url)
        store = Store.open(settings.database_url)
        clock = Clock(NOW)
        hooks.dispatch(store, settings, now=clock)
        fill(store, 2)
        run(store, settings)
        endpoint.status = 503
        first = hooks.dispatch(store, settings, now=clock)
        assert first.taken == 0 and first.retrying == len(endpoint.received) > 0
        assert hooks.dispatch(store, settings, now=clock).retrying == 0  # not due yet
        endpoint.status = 204
        clock.now += timedelta(seconds=6)
        again = hooks.dispatch(store, settings, now=clock)
        assert again.taken == first.retrying
        ids = [h["webhook-id"] for h, _ in endpoint.received]
        half = len(ids) // 2
        assert ids[:half] == ids[half:]  # the same events, the same ids
        kinds = {k for k, _, _ in endpoint.events()}
        assert {
            "subscriber.created",
            "subscriber.confirmed",
            "edition.created",
            "edition.sent",
        } <= kinds
        store.save_admin("root@example.org", hash_password("a long enough password 1"), now=NOW)
        store.close()
    site = create_app({"TESTING": True, "DIGEST_SETTINGS": settings, "WTF_CSRF_ENABLED": False})
    login = {"email": "root@example.org", "password": "a long enough password 1"}
    client = site.test_client()
    assert client.post("/admin/login", data=login).status_code in (302, 303)
    page = client.get("/admin/webhooks").get_data(as_text=True)
    assert endpoint.url in page and "204 No Content" in page and "0 given up" in page


def test_webhooks_are_checked_with_one_line_each(tmp_path: Path) -> None:
    config = tmp_path / "digest.toml"
    config.write_text(
        '[[webhooks]]\nurl = "ftp://example.org"\nsecret_env = "S"\n'
        '[[webhooks]]\nurl = "https://example.org/a"\nevents = ["reader.vanished"]\n'
        'secret_env = "S"\n'
        '[[webhooks]]\nurl = "https://example.org/b"\nsecret_env = "NOT_SET"\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as raised:
        load_settings(config, environ={"S": SECRET})
    said = "\n".join(raised.value.problems)
    assert "[[webhooks]] #1: url: expected an http(s) URL" in said
    assert "[[webhooks]] #2: events: no event 'reader.vanished'" in said
    assert "[[webhooks]] 'https://example.org/b': secret_env: NOT_SET: expected whsec_" in said


@pytest.mark.slow
def test_a_killed_sender_posts_again_only_what_was_in_flight(tmp_path: Path) -> None:
    with receiver() as endpoint:
        settings = configured(tmp_path, endpoint.url)
        store = Store.open(settings.database_url)
        hooks.dispatch(store, settings, now=Clock(NOW))
        fill(store, 5)  # ten events: five created, five confirmed
        store.close()
        env = os.environ | {
            "DIGEST_CONFIG": str(tmp_path / "digest.toml"),
            "DIGEST_DATABASE_URL": settings.database_url,
            "SECRET_KEY": "test-secret-key-for-digest-tests-0123456789",
            "HOOK_SECRET": SECRET,
        }
        command = [sys.executable, "-m", "digest", "webhooks", "send"]
        endpoint.holding.set()
        victim = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_until(endpoint.held.is_set)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        endpoint.holding.clear()
        endpoint.release.set()
        finished = subprocess.run(command, env=env, capture_output=True, text=True)
        assert finished.returncode == 0, finished.stderr
    ids = [h["webhook-id"] for h, _ in endpoint.received]
    assert len(set(ids)) == 10
    repeated = [i for i in set(ids) if ids.count(i) > 1]
    assert len(repeated) <= 1 and len(ids) <= 11  # the one in flight at the kill, same id
