"""Joining and leaving: the home page and its form, the confirmation link, and the
unsubscribe page with RFC 8058 one-click.

Only POST changes anything: mail scanners open (GET) every link.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, jsonify, request, url_for

from digest.app import PermanentFailure, TemporaryFailure, accounts, long_date
from digest.models import Subscriber
from digest.subscriptions import may_confirm
from digest.tokens import ConfirmRequest, TokenError, read_confirm_token
from digest.web.archive import latest_papers
from digest.web.context import (
    context,
    csrf,
    limiter,
    message_page,
    newsletter_choices,
    newsletters,
    page,
    subscriber_from,
    use_newsletter,
)
from digest.web.forms import address_key, sign_up_form, topic_lines

subscription = Blueprint("subscription", __name__)


@subscription.get("/")
def index() -> tuple[str, int]:
    """What the digest is, a sample of the latest edition, and the subscribe form."""
    day, sample = latest_papers(5)
    form = {"email": "", "topics": "", "theme": context().settings.theme}
    return page("index.html", sample=sample, sample_day=long_date(day) if day else None, form=form)


@subscription.post("/subscribe")
@limiter.limit(lambda: context().settings.web.subscribe_limit_per_ip)
@limiter.limit(
    lambda: context().settings.web.subscribe_limit_per_address,
    key_func=lambda: address_key(request.form),
)
def subscribe() -> tuple[str, int]:
    """Create a pending subscriber and mail the confirmation link.

    The answer is the same whether or not the address was known, so the
    page never tells anyone who subscribes.
    """
    found = context()
    item, form, errors = sign_up_form(
        request.form, default_theme=found.settings.theme, themes=found.themes
    )
    chosen, problem = _chosen_newsletters()
    errors += [problem] if problem else []
    if item is None or problem:
        choices = newsletter_choices(chosen)
        return page(
            "index.html", 400, form=form, errors=errors, sample=[], sample_day=None, choices=choices
        )
    if request.form.get(HONEYPOT):  # a field people never see: a bot filled it in
        return _check_your_inbox(item.email)
    for slug in chosen:  # each newsletter asks for its own confirmation, from its sender
        use_newsletter(slug)
        found = context()
        try:
            accounts.sign_up(
                found.store,
                found.settings,
                found.make_transport(),
                item,
                now=found.clock(),
                channel="web",
            )
        except (TemporaryFailure, PermanentFailure) as e:
            return _not_sent(e)
    # The same page when the mail was withheld: it never tells who is subscribed.
    return _check_your_inbox(item.email)


def _chosen_newsletters() -> tuple[list[str], str | None]:
    """The newsletters a sign-up asks for (none shown: the page's), and what is wrong."""
    known = {n.slug for n in newsletters().installation.all_newsletters()}
    chosen = [slug for slug in dict.fromkeys(request.form.getlist("newsletter")) if slug in known]
    if request.form.get("newsletters_shown") and not chosen:
        return [], "Choose at least one newsletter."
    return chosen or [context().settings.newsletter], None


@subscription.get("/n/<slug>")
def newsletter_page(slug: str) -> tuple[str, int]:
    """The home page of one newsletter: its latest papers and its sign-up form."""
    newsletters().of(slug)  # 404 for none such
    use_newsletter(slug)
    return index()


#: The name of the sign-up form's hidden field (a honeypot).
HONEYPOT = "website"


def _check_your_inbox(email: str) -> tuple[str, int]:
    return message_page(
        "Check your inbox",
        f"We sent a message to {email}. Open the link in it to confirm.",
        "If nothing arrives within a few minutes, look in your spam folder.",
        status=200,
    )


def _not_sent(error: Exception) -> tuple[str, int]:
    if isinstance(error, PermanentFailure):
        # Not the server's words: they may name other systems, and any visitor sees this.
        return message_page(
            "We could not send the email",
            "The mail server would not take mail for this address. Please check it for "
            "typos, or use another address.",
            status=400,
        )
    return message_page(
        "We could not send the email",
        "Our mail server did not answer. Please try again in a few minutes.",
        status=503,
    )


@subscription.post("/api/check-query")
@csrf.exempt  # type: ignore[untyped-decorator]  # flask-wtf ships no types
def check_query() -> Response:
    """Check topic lines as they are typed (the form checks them again on submit)."""
    topics, errors = topic_lines(request.form.get("topics") or "")
    return jsonify(ok=not errors, errors=errors, count=len(topics))


@subscription.route("/confirm/<token>", methods=["GET", "POST"])
def confirm(token: str) -> tuple[str, int]:
    """GET shows a button (link scanners only GET); POST activates the subscription."""
    asked = _confirm_request(token)
    if not isinstance(asked, ConfirmRequest):
        return asked
    subscriber = context().store.get_subscriber_by_id(asked.subscriber_id)
    if subscriber is None:
        abort(400, description="This link is not valid.")
    use_newsletter(subscriber.newsletter)
    found = context()
    if not may_confirm(subscriber, asked.left_at):
        return _already_used(subscriber)
    if request.method != "POST":  # GET or HEAD: scanners probe links; only a person posts
        return page("confirm.html", email=subscriber.email)
    accounts.confirm(found.store, found.settings, found.make_transport(), asked, now=found.clock())
    return page(
        "message.html",
        heading="You are subscribed",
        form={},
        paragraphs=[
            f"{subscriber.email} will get the next edition.",
            "Rate a few papers now, and even your first email is ordered by what you want.",
        ],
        link={
            "href": found.links(subscriber.id).preferences_url + "/start",
            "text": "Rate a few papers to start",
        },
        second_link={
            "href": found.links(subscriber.id).preferences_url,
            "text": "Choose topics, theme and timezone",
        },
    )


def _confirm_request(token: str) -> ConfirmRequest | tuple[str, int]:
    """What a confirmation link asks, or the page that says it expired or is forged."""
    settings = context().settings
    try:
        return read_confirm_token(
            settings.secret_key, token, max_age_seconds=int(settings.web.confirm_hours * 3600)
        )
    except TokenError as e:
        heading = "This link has expired" if e.expired else "This link is not valid"
        form = {"email": "", "topics": "", "theme": settings.theme}
        return page(
            "message.html",
            400,
            heading=heading,
            form=form,
            ask_again=True,
            paragraphs=["Ask for a new confirmation link below."],
        )


def _already_used(subscriber: Subscriber) -> tuple[str, int]:
    return page(
        "message.html",
        heading="This link was already used",
        form={},
        paragraphs=["Your subscription is already confirmed, or you have left since."],
        link={
            "href": context().links(subscriber.id).preferences_url,
            "text": "Open my preferences",
        },
    )


@subscription.route("/unsubscribe/<token>", methods=["GET", "POST"])
@csrf.exempt  # type: ignore[untyped-decorator]  # flask-wtf ships no types
def unsubscribe(token: str) -> Any:
    """GET shows one button; POST unsubscribes.

    A POST whose body is ``List-Unsubscribe=One-Click`` (RFC 8058, what
    Gmail and Yahoo send) unsubscribes at once: no cookie, no CSRF token, no
    redirect, 200.  Idempotent; a bad token gets 400 and changes nothing.
    """
    one_click = request.method == "POST" and request.form.get("List-Unsubscribe") == "One-Click"
    if request.method == "POST" and not one_click:
        csrf.protect()
    subscriber = subscriber_from("unsubscribe", token)  # the request is now about its newsletter
    found = context()
    if request.method != "POST":  # GET or HEAD: scanners probe links; only a person posts
        return page(
            "unsubscribe.html",
            email=subscriber.email,
            preferences_url=found.links(subscriber.id).preferences_url,
        )
    channel = "one-click" if one_click else "link"
    accounts.leave(found.store, subscriber.id, now=found.clock(), channel=channel)
    if one_click:
        return Response("unsubscribed\n", status=200, mimetype="text/plain")
    return page(
        "message.html",
        heading="You are unsubscribed",
        form={},
        paragraphs=[f"{subscriber.email} will get no more emails from {found.settings.title}."],
        link={"href": url_for("subscription.index"), "text": "Subscribe again"},
    )
