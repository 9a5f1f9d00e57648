"""The operator's dashboard under /admin: who got what, sources, test sends, and the
reader actions an operator may take, behind a sign-in.

Nothing here is reachable without an admin session: its cookie (HttpOnly,
SameSite=Strict, Secure except on loopback) carries a random token whose hash
names a row of ``admin_sessions``, so signing out ends it everywhere.  A
reader's link token opens nothing here.  Every form carries a CSRF token, and
sign-in attempts are rate-limited per client and per address.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, abort, flash, g, redirect, request, url_for
from werkzeug.wrappers import Response

from digest.address import AddressError, parse_address
from digest.app import (
    PermanentFailure,
    TemporaryFailure,
    accounts,
    admins,
    queries,
    tryouts,
)
from digest.cadence import read_cadence
from digest.errors import DigestError
from digest.models import STATES, Subscriber
from digest.subscribers import format_topics
from digest.subscriptions import has_left
from digest.text import first_control
from digest.web.chart import STACKED, deliveries_chart
from digest.web.context import context, limiter, newsletters, page, use_newsletter
from digest.web.forms import address_key

admin = Blueprint("admin", __name__, url_prefix="/admin")

ADMIN_COOKIE = "digest_admin"
PAGE_SIZE = 50
_LOOPBACK = {"localhost", "127.0.0.1", "::1"}


@admin.before_request
def _newsletter_asked() -> None:
    """``?newsletter=<slug>``: the dashboard shows that newsletter (404 for none such)."""
    slug = request.args.get("newsletter")
    if slug is not None:
        newsletters().of(slug[:40])
        use_newsletter(slug[:40])


@admin.url_defaults
def _same_newsletter(_: str, values: dict[str, Any]) -> None:
    """The dashboard's links stay on the newsletter it shows."""
    if "newsletter" not in values and g.get("newsletter") is not None:
        values["newsletter"] = g.newsletter


@admin.context_processor
def _switcher() -> dict[str, Any]:
    """The newsletters the dashboard can show, the one it shows marked."""
    shown = context().settings.newsletter
    return {
        "newsletter_menu": [
            {"slug": n.slug, "name": n.name, "current": n.slug == shown}
            for n in newsletters().installation.all_newsletters()
        ]
    }


@admin.before_request
def signed_in() -> Response | None:
    """Every admin page and action but signing in needs a session."""
    if request.endpoint in ("admin.login", "admin.sign_in"):
        return None
    token = request.cookies.get(ADMIN_COOKIE, "")[:200]
    found = context()
    who = admins.signed_in(found.store, token, now=found.clock())
    if who is None:
        if request.method in ("GET", "HEAD"):
            return redirect(url_for("admin.login", next=request.path), 303)
        abort(403, description="Please sign in to the dashboard first.")
    g.admin = who
    return None


@admin.get("/login")
def login() -> tuple[str, int]:
    """The sign-in form."""
    return page("admin/login.html", form={"email": ""}, next=_safe_next())


def _failed_sign_in(response: Response) -> bool:
    return response.status_code == 401


@admin.post("/login")
# Only a failed sign-in counts: the right password never locks its owner out.
@limiter.limit(lambda: context().settings.web.admin_login_limit_per_ip, deduct_when=_failed_sign_in)
@limiter.limit(
    lambda: context().settings.web.admin_login_limit_per_address,
    key_func=lambda: "admin-" + address_key(request.form),
    deduct_when=_failed_sign_in,
)
def sign_in() -> Response | tuple[str, int]:
    """Check the address and password; on success open a session and go on."""
    found = context()
    email = (request.form.get("email") or "")[:320]
    password = request.form.get("password") or ""
    hours = found.settings.web.admin_session_hours
    token = admins.sign_in(found.store, email, password, now=found.clock(), hours=hours)
    if token is None:
        return page(
            "admin/login.html",
            401,
            form={"email": email[:254]},
            next=_safe_next(),
            errors=["That address and password do not match an admin."],
        )
    response = redirect(_safe_next() or url_for("admin.overview"), 303)
    response.set_cookie(
        ADMIN_COOKIE,
        token,
        max_age=int(hours * 3600),
        path="/admin",
        httponly=True,
        samesite="Strict",
        secure=_secure_cookie(),
    )
    return response


@admin.post("/logout")
def logout() -> Response:
    """End this session, here and in the database."""
    admins.sign_out(context().store, request.cookies.get(ADMIN_COOKIE, "")[:200])
    response = redirect(url_for("admin.login"), 303)
    response.delete_cookie(
        ADMIN_COOKIE, path="/admin", httponly=True, samesite="Strict", secure=_secure_cookie()
    )
    return response


@admin.get("/")
def overview() -> tuple[str, int]:
    """The next and the last run, subscribers by state, recent editions with a chart."""
    found = context()
    status = queries.status(found.store, found.settings, editions=14, now=found.clock())
    _, sources = queries.sources(found.store, found.settings, now=found.clock())
    chart = deliveries_chart([(e.edition.day, e.deliveries) for e in status.editions])
    failing = [s for s in sources if s.check and s.check.outcome == "failed"]
    cadences = [(read_cadence(c).describe(), n) for c, n in status.cadences.items()]
    return _page(
        "admin/overview.html",
        installation=status,
        chart=chart,
        states=STACKED,
        failing=failing,
        cadences=cadences,
    )


@admin.get("/subscribers")
def subscribers() -> tuple[str, int]:
    """Subscribers, searched by address or name and filtered by state, a page at a time."""
    found = context()
    search = (request.args.get("q") or "")[:200]
    if first_control(search) is not None:
        abort(400, description="A search is text without control characters.")
    state = request.args.get("state") or None
    if state not in (None, *STATES):
        abort(400, description="No such state.")
    number = max(1, min(_int_arg("page", 1), 1_000_000))
    total, rows = found.store.find_subscribers(
        state=state, search=search, offset=(number - 1) * PAGE_SIZE, limit=PAGE_SIZE
    )
    return _page(
        "admin/subscribers.html",
        rows=rows,
        total=total,
        search=search,
        state=state,
        states=STATES,
        number=number,
        pages=max(1, -(-total // PAGE_SIZE)),
        counts=found.store.count_subscribers(),
    )


@admin.get("/subscribers/<id:subscriber_id>")
def subscriber(subscriber_id: int) -> tuple[str, int]:
    """One reader: their choices, every change of state, what came back, every delivery."""
    reader = _reader(subscriber_id)
    found = context()
    history = queries.reader_history(found.store, found.settings, reader, now=found.clock())
    return _page(
        "admin/subscriber.html",
        history=history,
        topics=format_topics(reader.topics),
        left=has_left(reader),
        cadence=reader.cadence.describe(),
    )


@admin.post("/subscribers/<id:subscriber_id>/<any(pause, resume, unsubscribe):action>")
def act_on(subscriber_id: int, action: str) -> Response:
    """Pause, resume or unsubscribe a reader.  Nothing here brings back someone who
    left: only they can, by confirming again."""
    reader = _reader(subscriber_id)
    found = context()
    if action == "unsubscribe":
        accounts.leave(found.store, reader.id, now=found.clock(), channel="admin")
        flash(f"{reader.email} is unsubscribed.")
    else:
        try:
            accounts.set_paused(
                found.store, reader.id, paused=action == "pause", now=found.clock(), channel="admin"
            )
            flash(f"{reader.email} is {'paused' if action == 'pause' else 'active again'}.")
        except accounts.NothingToChange:
            flash(f"{reader.email} is {reader.state}: nothing to {action}.")
    return redirect(url_for("admin.subscriber", subscriber_id=reader.id), 303)


@admin.post("/subscribers/<id:subscriber_id>/resend")
def resend(subscriber_id: int) -> Response:
    """Queue one delivery again, as ``digest resend`` does; the next run sends it."""
    reader = _reader(subscriber_id)
    found = context()
    day = _date(request.form.get("day"))
    if day is None:
        abort(400, description="Which edition? Give its date as YYYY-MM-DD.")
    try:
        queued = tryouts.resend(found.store, reader, day, now=found.clock())
    except tryouts.ResendRefused as e:
        flash(e.message)
    else:
        flash(
            f"{reader.email}'s digest of {day} is queued again (resend {queued.resends}); "
            "the next run sends it."
        )
    return redirect(url_for("admin.subscriber", subscriber_id=reader.id), 303)


@admin.get("/editions")
def editions() -> tuple[str, int]:
    """Every recent edition with its deliveries by state, bounces and complaints."""
    store = context().store
    rows = [queries.edition_status(store, e) for e in store.recent_editions(60)]
    chart = deliveries_chart([(r.edition.day, r.deliveries) for r in rows[:30]])
    return _page("admin/editions.html", rows=rows, chart=chart, states=STACKED)


@admin.get("/editions/<day>")
def edition(day: str) -> tuple[str, int]:
    """One edition: its papers, deliveries by state and every failure with its reason."""
    store = context().store
    wanted = _date(day)
    found = store.get_edition(wanted) if wanted else None
    if found is None:
        abort(404, description=f"There is no edition for {day[:20]}.")
    return _page(
        "admin/edition.html",
        row=queries.edition_status(store, found),
        papers=store.edition_entries(found.id),
    )


@admin.get("/webhooks")
def webhooks() -> tuple[str, int]:
    """Each webhook: its events, what waits, what was given up, its last attempts."""
    found = context()
    installation = newsletters().installation
    hooks = [(w, found.store.webhook_state(w.url, last=10)) for w in installation.webhooks]
    return _page("admin/webhooks.html", webhooks=hooks)


@admin.get("/sources")
def sources() -> tuple[str, int]:
    """Each configured source: its last fetch and status, and what it brought."""
    found = context()
    day, health = queries.sources(found.store, found.settings, now=found.clock())
    return _page("admin/sources.html", day=day, sources=health)


@admin.route("/test-send", methods=["GET", "POST"])
def test_send() -> tuple[str, int]:
    """Mail the real digest, as a reader would get it, to any address (not recorded)."""
    found = context()
    form = {name: (request.form.get(name) or "").strip()[:320] for name in ("address", "as", "day")}
    errors: list[str] = []
    if request.method == "POST":
        reader = found.store.get_subscriber(form["as"]) if form["as"] else None
        day = _date(form["day"]) if form["day"] else None
        if form["as"] and reader is None:
            errors.append(f"{form['as']} is not a subscriber.")
        if form["day"] and day is None:
            errors.append("The date is YYYY-MM-DD, or empty for the latest edition.")
        try:
            recipient = parse_address(form["address"])
        except AddressError as e:
            errors.append(f"Not an address digest can mail: {e.reason}")
        if not errors:
            try:
                said = tryouts.send_test(
                    found.store,
                    found.settings,
                    found.make_transport(),
                    tryouts.TestSend(recipient, reader, day),
                    now=found.clock(),
                )
            except (DigestError, TemporaryFailure, PermanentFailure) as e:
                errors.append(str(getattr(e, "message", e)))
            else:
                flash(said[:1].upper() + said[1:] + ".")
    return _page("admin/test_send.html", 400 if errors else 200, form=form, errors=errors)


def _page(template: str, status: int = 200, **values: Any) -> tuple[str, int]:
    return page(template, status, admin=g.admin, **values)


def _reader(subscriber_id: int) -> Subscriber:
    """A reader by id; the request is then about their newsletter."""
    reader = context().store.get_subscriber_by_id(subscriber_id)
    if reader is None:
        abort(404, description="There is no such subscriber.")
    use_newsletter(reader.newsletter)
    return reader


def _date(text: str | None) -> date | None:
    try:
        return datetime.strptime((text or "")[:10], "%Y-%m-%d").date()
    except ValueError:
        return None


def _int_arg(name: str, default: int) -> int:
    try:
        return int((request.args.get(name) or "")[:9] or default)
    except ValueError:
        return default


def _safe_next() -> str | None:
    """Where to go after signing in: only a path of this dashboard, never another site."""
    wanted = (request.values.get("next") or "")[:500]
    parts = urlsplit(wanted)
    # Browsers drop tabs and newlines from a URL and read a backslash as "/": none pass.
    ok = wanted.startswith("/admin") and not parts.scheme and not parts.netloc
    ok = ok and wanted.isprintable() and not any(c in wanted for c in " \\")
    return wanted if ok else None


def _secure_cookie() -> bool:
    """Secure, except for a site served on loopback over plain HTTP (development)."""
    local = urlsplit("//" + request.host).hostname in _LOOPBACK
    return context().settings.base_url.startswith("https://") or not local
