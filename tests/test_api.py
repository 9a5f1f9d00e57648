"""The JSON API: keys and scopes, the same consent rules as every other way in, problem
documents, and every answer checked against the OpenAPI document."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from digest.app import apikeys
from digest.cli import cli
from digest.config import Settings
from digest.store import Store
from digest.web import create_app
from digest.web.openapi import document

from .conftest import NOW, Clock, fill, make_settings, message_text, run

SPECIFIED = document("https://digest.example.org")


def checked(answer: Any, path: str, method: str) -> Any:
    """The answer's JSON, after checking it against the OpenAPI document."""
    status = str(answer.status_code)
    described = SPECIFIED["paths"][path][method]["responses"]
    assert status in described, (path, method, status, answer.get_data(as_text=True))
    content = described[status].get("content")
    if content is None:
        assert not answer.get_data()
        return None
    [(media, shape)] = content.items()
    assert answer.mimetype == media, (answer.mimetype, media)
    body = answer.get_json(force=True)
    Draft202012Validator(SPECIFIED | shape["schema"]).validate(body)
    return body


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(
        tmp_path, None, DIGEST_DATABASE_URL=f"sqlite:///{tmp_path / 'api.sqlite3'}"
    )


@pytest.fixture
def app(settings: Settings) -> Iterator[Flask]:
    app = create_app({"TESTING": True, "DIGEST_SETTINGS": settings, "DIGEST_CLOCK": Clock(NOW)})
    yield app
    app.extensions["digest"].store.close()


@pytest.fixture
def store(app: Flask) -> Store:
    return app.extensions["digest"].store  # type: ignore[no-any-return]


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def key(store: Store, scope: str) -> dict[str, str]:
    _, token = apikeys.create(store, f"{scope} key", scope, now=NOW)
    return {"Authorization": f"Bearer {token}"}


def outbox(tmp_path: Path) -> list[str]:
    return [p.read_text() for p in sorted((tmp_path / "outbox").glob("*.eml"))]


def test_a_reader_made_by_the_api_confirms_by_mail_and_leaves_for_good(
    client: FlaskClient, store: Store, tmp_path: Path
) -> None:
    write = key(store, "write")
    made = client.post("/api/v1/subscribers", json={"email": "Ada@Example.org"}, headers=write)
    reader = checked(made, "/subscribers", "post")
    assert made.status_code == 201 and reader["state"] == "pending"
    [mail] = outbox(tmp_path)
    link = re.search(r"https://digest\.example\.org(/confirm/[^\s\"<>]+)", message_text(mail))
    assert link is not None
    # A person opens the link and presses the button (the page's form, with its token).
    page = client.get(link.group(1)).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token is not None
    assert client.post(link.group(1), data={"csrf_token": token.group(1)}).status_code == 200
    shown = checked(
        client.get(f"/api/v1/subscribers/{reader['id']}", headers=write), "/subscribers/{id}", "get"
    )
    assert shown["state"] == "active" and [e["state"] for e in shown["events"]] == [
        "pending",
        "active",
    ]
    gone = client.delete(f"/api/v1/subscribers/{reader['id']}", headers=write)
    checked(gone, "/subscribers/{id}", "delete")
    assert gone.status_code == 204
    again = client.post("/api/v1/subscribers", json={"email": "ada@example.org"}, headers=write)
    problem = checked(again, "/subscribers", "post")
    assert again.status_code == 409 and problem["errors"][0]["field"] == "email"
    assert "only they can subscribe again" in problem["detail"]
    assert len(outbox(tmp_path)) == 2  # the confirmation and the welcome: nothing to one who left


def test_keys_and_scopes(client: FlaskClient, store: Store) -> None:
    for headers in ({}, {"Authorization": "Bearer dgt_nope"}, {"Authorization": "Basic x"}):
        answer = client.get("/api/v1/subscribers", headers=headers)
        assert checked(answer, "/subscribers", "get")["status"] == 401
        assert answer.headers["WWW-Authenticate"] == "Bearer"
    read = key(store, "read")
    refused = client.post("/api/v1/subscribers", json={"email": "bob@example.org"}, headers=read)
    assert checked(refused, "/subscribers", "post")["status"] == 403
    write = key(store, "write")
    vouched = {"email": "bob@example.org", "confirmed": True}
    assert client.post("/api/v1/subscribers", json=vouched, headers=write).status_code == 403
    imported = client.post("/api/v1/subscribers", json=vouched, headers=key(store, "import"))
    assert checked(imported, "/subscribers", "post")["state"] == "active"
    page = checked(
        client.get("/api/v1/subscribers?state=active", headers=read), "/subscribers", "get"
    )
    assert [r["email"] for r in page["items"]] == ["bob@example.org"]
    listed = CliRunner().invoke(
        cli, ["api-token", "list", "--json"], env={"DIGEST_DATABASE_URL": store.url}
    )
    names = [k["name"] for k in json.loads(listed.output)["api_tokens"]]
    assert names == ["read key", "write key", "import key"]
    assert "dgt_" not in listed.output  # a token is shown once, when it is made
    revoked = CliRunner().invoke(
        cli, ["api-token", "revoke", "read key"], env={"DIGEST_DATABASE_URL": store.url}
    )
    assert revoked.exit_code == 0
    assert client.get("/api/v1/subscribers", headers=read).status_code == 401


def test_problems_name_the_field(client: FlaskClient, store: Store) -> None:
    write = key(store, "write")
    for body, field in (
        ({"email": "not an address"}, "email"),
        ({}, "email"),
        ({"email": "eve@example.org", "topics": ["title:("]}, "topics"),
        ({"email": "eve@example.org", "theme": "neon"}, "theme"),
        ({"email": "eve@example.org", "timezone": "Mars/Olympus"}, "timezone"),
        ({"email": "eve@example.org", "cadence": "hourly"}, "cadence"),
        ({"email": "eve@example.org", "topics": "x"}, "topics"),
        ({"email": "eve@example.org", "confirmed": "yes"}, "confirmed"),
    ):
        answer = client.post("/api/v1/subscribers", json=body, headers=write)
        problem = checked(answer, "/subscribers", "post")
        assert answer.status_code == 422 and problem["errors"][0]["field"] == field, body
    not_json = client.post("/api/v1/subscribers", data="email=x", headers=write)
    assert checked(not_json, "/subscribers", "post")["status"] == 400
    made = checked(
        client.post("/api/v1/subscribers", json={"email": "eve@example.org"}, headers=write),
        "/subscribers",
        "post",
    )
    path = f"/api/v1/subscribers/{made['id']}"
    changed = client.patch(
        path, json={"topics": ["Vision: diffusion"], "paused": False}, headers=write
    )
    assert checked(changed, "/subscribers/{id}", "patch")["topics"][0]["label"] == "Vision"
    # Exploration stays as the reader left it unless the change names it.
    off = checked(
        client.patch(path, json={"explore": False}, headers=write), "/subscribers/{id}", "patch"
    )
    assert off["explore"] is False
    kept = client.patch(path, json={"theme": "dark"}, headers=write)
    assert checked(kept, "/subscribers/{id}", "patch")["explore"] is False
    wrong = client.patch(path, json={"explore": "no"}, headers=write)
    assert checked(wrong, "/subscribers/{id}", "patch")["errors"][0]["field"] == "explore"
    unknown = client.patch(path, json={"email": "x@example.org"}, headers=write)
    assert checked(unknown, "/subscribers/{id}", "patch")["errors"][0]["field"] == "email"
    nobody = client.get("/api/v1/subscribers/999", headers=write)
    assert checked(nobody, "/subscribers/{id}", "get")["status"] == 404


def test_editions_sources_and_a_test_send(
    client: FlaskClient, store: Store, settings: Settings, tmp_path: Path
) -> None:
    fill(store, 3)
    run(store, settings)
    read = key(store, "read")
    editions = checked(client.get("/api/v1/editions", headers=read), "/editions", "get")
    [edition] = editions["items"]
    assert edition["deliveries"]["sent"] == 3
    one = checked(
        client.get(f"/api/v1/editions/{edition['day']}", headers=read), "/editions/{day}", "get"
    )
    assert one["papers"] == len(one["entries"]) > 0
    for day, status in (("2001-01-01", 404), ("yesterday", 422)):
        answer = client.get(f"/api/v1/editions/{day}", headers=read)
        assert checked(answer, "/editions/{day}", "get")["status"] == status
    checked(client.get("/api/v1/sources", headers=read), "/sources", "get")
    before = len(outbox(tmp_path))
    sent = client.post(
        "/api/v1/send-test", json={"email": "me@example.org"}, headers=key(store, "write")
    )
    assert "a test of 2026-11-28" in checked(sent, "/send-test", "post")["sent"]
    assert len(outbox(tmp_path)) == before + 1


def test_each_key_has_its_own_rate_limit(settings: Settings) -> None:
    limited = replace(settings, web=replace(settings.web, api_limit_per_token="3 per minute"))
    app = create_app({"TESTING": True, "DIGEST_SETTINGS": limited, "DIGEST_CLOCK": Clock(NOW)})
    client = app.test_client()
    store = app.extensions["digest"].store
    first, second = key(store, "read"), key(store, "write")
    codes = [client.get("/api/v1/sources", headers=first).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    assert checked(client.get("/api/v1/sources", headers=first), "/sources", "get")["status"] == 429
    assert client.get("/api/v1/sources", headers=second).status_code == 200
    store.close()


def test_the_openapi_document_is_served_without_a_key(client: FlaskClient) -> None:
    served = client.get("/api/v1/openapi.json").get_json()
    assert served["openapi"] == "3.1.0" and "/subscribers" in served["paths"]
    assert served["servers"] == [{"url": "https://digest.example.org/api/v1"}]


_FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "email": st.one_of(st.text(max_size=40), st.emails(), st.integers(), st.none()),
        "name": st.one_of(st.text(max_size=30), st.integers()),
        "topics": st.one_of(st.lists(st.text(max_size=20), max_size=4), st.text(max_size=10)),
        "theme": st.one_of(
            st.sampled_from(["light", "dark", "compact", "neon"]), st.text(max_size=5)
        ),
        "timezone": st.one_of(st.sampled_from(["Europe/Paris", "UTC"]), st.text(max_size=10)),
        "cadence": st.one_of(
            st.sampled_from(["daily", "weekly:monday", "threshold:5"]), st.text(max_size=8)
        ),
        "paused": st.one_of(st.booleans(), st.text(max_size=3)),
        "confirmed": st.one_of(st.booleans(), st.integers()),
    },
)


@hypothesis_settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=_FIELDS, query=st.text(max_size=30))
def test_no_input_makes_the_api_fail(
    client: FlaskClient, store: Store, body: dict[str, Any], query: str
) -> None:
    _, token = apikeys.create(store, f"fuzz {uuid4().hex}", "import", now=NOW)
    headers = {"Authorization": f"Bearer {token}"}
    made = client.post("/api/v1/subscribers", json=body, headers=headers)
    reader = checked(made, "/subscribers", "post")
    target = reader["id"] if made.status_code == 201 else 1
    patched = client.patch(f"/api/v1/subscribers/{target}", json=body, headers=headers)
    checked(patched, "/subscribers/{id}", "patch")
    asked = {"state": query, "page": query, "newsletter": query}
    checked(
        client.get("/api/v1/subscribers", query_string=asked, headers=headers),
        "/subscribers",
        "get",
    )
