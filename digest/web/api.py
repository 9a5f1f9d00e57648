"""The JSON API under /api/v1: the same rules as the CLI and the dashboard, by key.

Every answer is JSON; every error is a problem document (RFC 9457) naming the field
that is wrong.  A key's scope decides what it may do (``digest api-token create``).
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any, NoReturn

from flask import Blueprint, Response, g, request
from werkzeug.exceptions import HTTPException

from digest.address import AddressError, parse_address
from digest.app import PermanentFailure, TemporaryFailure, accounts, apikeys, queries, tryouts
from digest.app.views import (
    as_json,
    edition_json,
    edition_papers_json,
    history_json,
    source_json,
    subscriber_json,
)
from digest.errors import DigestError
from digest.models import STATES, Subscriber
from digest.subscribers import SubscriberError, SubscriberInput, check_input
from digest.subscriptions import Choices, ConsentRefused, has_left
from digest.web.context import context, csrf, limiter, newsletters, use_newsletter
from digest.web.openapi import document

api = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(api)  # a key, not a cookie: nothing a page of another site could send

#: The most readers one page of a list holds.
MAX_PAGE = 200
#: The largest request body the API reads.
MAX_BODY_BYTES = 64 * 1024


class Problem(HTTPException):
    """An error answered as a problem document (RFC 9457)."""

    def __init__(self, status: int, title: str, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.code = status
        body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
        body["detail"] = detail
        if field is not None:
            body["errors"] = [{"field": field, "detail": detail}]
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
        self.response = Response(
            json.dumps(body), status, headers, mimetype="application/problem+json"
        )


def fail(status: int, title: str, detail: str, field: str | None = None) -> NoReturn:
    raise Problem(status, title, detail, field)


def _token_key() -> str:
    header = request.headers.get("Authorization", "")
    return apikeys.token_hash(header.removeprefix("Bearer ").strip())[:16]


@api.before_request
def authenticated() -> None:
    """Every endpoint but the OpenAPI document needs a key."""
    if request.endpoint == "api.openapi":
        return
    header = request.headers.get("Authorization", "")
    site = newsletters()
    key = None
    if header.startswith("Bearer "):
        key = apikeys.authenticate(
            site.store, header.removeprefix("Bearer ").strip(), now=site.clock()
        )
    if key is None:
        fail(401, "Unauthorized", "send an API key: Authorization: Bearer <token>")
    g.api_key = key
    if request.method not in ("GET", "HEAD") and not apikeys.may(key, "write"):
        fail(403, "Forbidden", f"the key {key.name!r} may only read")
    slug = request.args.get("newsletter")
    if slug is not None:
        if slug not in {n.slug for n in site.installation.all_newsletters()}:
            fail(404, "Not Found", f"no newsletter {slug[:40]!r}", "newsletter")
        use_newsletter(slug)


limiter.limit(lambda: newsletters().installation.web.api_limit_per_token, key_func=_token_key)(api)


@api.errorhandler(HTTPException)
def problem_for(error: HTTPException) -> Any:
    """Every error of the API as a problem document."""
    if not isinstance(error, Problem):
        error = Problem(error.code or 500, error.name, error.description or error.name)
    return error.response


def _json(payload: Any, status: int = 200) -> Response:
    return Response(as_json(payload), status, mimetype="application/json")


def _body() -> dict[str, Any]:
    if (request.content_length or 0) > MAX_BODY_BYTES:
        fail(413, "Content Too Large", f"a request body holds at most {MAX_BODY_BYTES} bytes")
    found = request.get_json(silent=True)
    if not isinstance(found, dict):
        fail(400, "Bad Request", "send a JSON object (Content-Type: application/json)")
    return found


def _text(body: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            fail(422, "Unprocessable Content", f"{name} is required", name)
        return None
    if not isinstance(value, str):
        fail(422, "Unprocessable Content", f"{name} must be a string", name)
    return value


def _reader(subscriber_id: int) -> Subscriber:
    """A reader by id (the request is then about their newsletter); 404 for none."""
    reader = newsletters().store.get_subscriber_by_id(subscriber_id)
    if reader is None:
        fail(404, "Not Found", f"no reader {subscriber_id}")
    use_newsletter(reader.newsletter)
    return reader


@api.get("/openapi.json")
def openapi() -> Response:
    """The OpenAPI 3.1 document of this API."""
    return _json(document(newsletters().installation.base_url))


@api.get("/subscribers")
def list_subscribers() -> Response:
    """A page of the newsletter's readers, in one state if asked."""
    state = request.args.get("state")
    if state is not None and state not in STATES:
        fail(422, "Unprocessable Content", f"state is one of {', '.join(STATES)}", "state")
    page = _whole("page", 1, 1, 1_000_000)
    per_page = _whole("per_page", 50, 1, MAX_PAGE)
    found = context()
    total, rows = found.store.find_subscribers(
        state=state, offset=(page - 1) * per_page, limit=per_page
    )
    items = [subscriber_json(row.subscriber) for row in rows]
    newsletter = found.settings.newsletter
    return _json(
        {
            "newsletter": newsletter,
            "total": total,
            "page": page,
            "per_page": per_page,
            "items": items,
        }
    )


def _whole(name: str, default: int, low: int, high: int) -> int:
    text = request.args.get(name)
    if text is None:
        return default
    if not text.isdigit() or not low <= int(text) <= high:
        fail(422, "Unprocessable Content", f"{name} is a whole number from {low} to {high}", name)
    return int(text)


@api.get("/subscribers/<int:subscriber_id>")
def show_subscriber(subscriber_id: int) -> Response:
    """A reader with every change of state, what came back and every delivery."""
    reader = _reader(subscriber_id)
    found = context()
    return _json(
        history_json(queries.reader_history(found.store, found.settings, reader, now=found.clock()))
    )


@api.post("/subscribers")
def create_subscriber() -> Response:
    """A new reader: pending, with a confirmation mail (or, for a key of scope import
    asking ``"confirmed": true``, active at once).  Never someone who left."""
    body = _body()
    confirmed = body.get("confirmed", False)
    if not isinstance(confirmed, bool):
        fail(422, "Unprocessable Content", "confirmed must be true or false", "confirmed")
    if confirmed and not apikeys.may(g.api_key, "import"):
        fail(403, "Forbidden", "only a key of scope import may add confirmed readers", "confirmed")
    item = _input(body, required=True)
    found = context()
    known = found.store.get_subscriber(item.email)
    if known is not None:
        why = "left; only they can subscribe again" if has_left(known) else "is a reader already"
        fail(409, "Conflict", f"{item.email} {why} (reader {known.id})", "email")
    try:
        if confirmed:
            reader, _ = accounts.add(found.store, item, now=found.clock())
        else:
            reader, _ = accounts.sign_up(
                found.store,
                found.settings,
                found.make_transport(),
                item,
                now=found.clock(),
                channel="api",
            )
    except ConsentRefused as e:
        fail(409, "Conflict", e.message, "email")
    except (TemporaryFailure, PermanentFailure) as e:
        fail(503, "Service Unavailable", f"the confirmation mail did not go out: {e}")
    return _json(subscriber_json(reader), 201)


def _input(body: dict[str, Any], *, required: bool) -> SubscriberInput:
    """The reader's fields of a request, checked as every other way in checks them, each
    on its own first so that a problem names its field."""
    topics = body.get("topics")
    if topics is not None and (
        not isinstance(topics, list) or not all(isinstance(t, str) for t in topics)
    ):
        fail(422, "Unprocessable Content", "topics is a list of strings", "topics")
    email = _text(body, "email", required=required) or _STAND_IN
    fields: dict[str, Any] = {n: _text(body, n) for n in ("name", "theme", "timezone", "cadence")}
    themes = context().themes
    for name, value in [("email", email), ("topics", topics), *fields.items()]:
        if value is None:
            continue
        alone = {} if name == "email" else {name: value}
        try:
            check_input(email if name == "email" else _STAND_IN, themes=themes, **alone)
        except SubscriberError as e:
            fail(422, "Unprocessable Content", e.message, name)
    return check_input(email, topics=topics, themes=themes, **fields)


#: An address that passes every check, for checking the other fields on their own.
_STAND_IN = "reader@example.org"


@api.patch("/subscribers/<int:subscriber_id>")
def update_subscriber(subscriber_id: int) -> Response:
    """Change a reader's topics, theme, timezone, cadence, pause or exploration, as
    their preferences page does; someone who left stays as they left."""
    reader = _reader(subscriber_id)
    body = _body()
    changeable = {"topics", "theme", "timezone", "cadence", "paused", "explore"}
    unknown = sorted(set(body) - changeable)
    if unknown:
        fail(422, "Unprocessable Content", f"{unknown[0]} cannot be changed here", unknown[0])
    paused = body.get("paused", reader.paused)
    explore = body.get("explore", reader.explore)
    for name, value in (("paused", paused), ("explore", explore)):
        if not isinstance(value, bool):
            fail(422, "Unprocessable Content", f"{name} must be true or false", name)
    if has_left(reader):
        fail(409, "Conflict", f"reader {reader.id} is {reader.state}: only they can come back")
    item = _input({"email": reader.email, **body}, required=False)
    found = context()
    choices = Choices(
        topics=item.topics if item.topics is not None else reader.topics,
        theme=item.theme or reader.theme or found.settings.theme,
        timezone=item.timezone if "timezone" in body else reader.timezone,
        paused=paused,
        cadence=item.cadence or reader.cadence,
        explore=explore,
    )
    chosen = accounts.choose(found.store, reader.id, choices, now=found.clock())
    return _json(subscriber_json(chosen or reader))


@api.delete("/subscribers/<int:subscriber_id>")
def delete_subscriber(subscriber_id: int) -> Response:
    """Unsubscribe a reader from their newsletter (kept, as someone who left)."""
    reader = _reader(subscriber_id)
    found = context()
    accounts.leave(found.store, reader.id, now=found.clock(), channel="api")
    return Response(status=204)


@api.get("/editions")
def list_editions() -> Response:
    """The newsletter's latest editions, newest first, with their deliveries by state."""
    limit = _whole("limit", 30, 1, 366)
    store = context().store
    rows = [queries.edition_status(store, e) for e in store.recent_editions(limit)]
    return _json({"items": [edition_json(r) for r in rows]})


@api.get("/editions/<day>")
def show_edition(day: str) -> Response:
    """One edition, its papers, deliveries, bounce and complaint rates."""
    try:
        wanted = date.fromisoformat(day)
    except ValueError:
        fail(422, "Unprocessable Content", "the day is YYYY-MM-DD", "day")
    store = context().store
    edition = store.get_edition(wanted)
    if edition is None:
        fail(404, "Not Found", f"no edition of {wanted}")
    row = queries.edition_status(store, edition)
    return _json(edition_papers_json(row, store.edition_entries(edition.id)))


@api.get("/sources")
def list_sources() -> Response:
    """Each configured source, with its last read and health."""
    found = context()
    day, health = queries.sources(found.store, found.settings, now=found.clock())
    return _json({"last_edition": day, "items": [source_json(h) for h in health]})


@api.post("/send-test")
def send_test() -> Response:
    """Mail an address the latest digest, with "[test]" in the subject."""
    body = _body()
    address = _text(body, "email", required=True) or ""
    try:
        recipient = parse_address(address)
    except AddressError as e:
        fail(422, "Unprocessable Content", str(e), "email")
    found = context()
    try:
        said = tryouts.send_test(
            found.store,
            found.settings,
            found.make_transport(),
            tryouts.TestSend(recipient, None, None),
            now=found.clock(),
        )
    except tryouts.SendTestRefused as e:
        fail(409, "Conflict", e.message, "email")
    except (TemporaryFailure, PermanentFailure, DigestError) as e:
        fail(503, "Service Unavailable", f"the test did not go out: {e}")
    return _json({"sent": said})
