"""What every view shares: the app's context, CSRF protection, rate limits, and pages."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property, partial
from typing import Any

from flask import abort, current_app, g, render_template, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFProtect

from digest.app import ComposeSettings, PersonalLinks, Store, Transport, personal_links
from digest.config import Settings
from digest.models import Subscriber
from digest.tokens import TokenError, read_token

csrf = CSRFProtect()
limiter = Limiter(
    key_func=get_remote_address,
    # Per client across every page but the stylesheets and script a page loads with it.
    application_limits=[lambda: context().settings.web.public_limit_per_ip],
    # The API is limited by key instead (``[web] api_limit_per_token``).
    application_limits_exempt_when=lambda: (
        request.endpoint == "static" or request.blueprint == "api"
    ),
)


@dataclass
class WebContext:
    """What the views need: settings, the store, a transport factory and the clock."""

    settings: Settings
    store: Store
    make_transport: Callable[[], Transport]
    clock: Callable[[], datetime]
    themes: list[str]

    @cached_property
    def compose(self) -> ComposeSettings:
        return ComposeSettings.of(self.settings)

    def links(self, subscriber_id: int) -> PersonalLinks:
        """A subscriber's signed preferences and unsubscribe links."""
        return personal_links(self.compose, subscriber_id)


@dataclass
class Newsletters:
    """Every newsletter's context: the site serves each with its own settings and store
    (the first unless the request says which)."""

    installation: Settings
    store: Store
    #: A newsletter's connection to its relay, by its settings.
    connect: Callable[[Settings], Transport]
    clock: Callable[[], datetime]
    themes: list[str]
    _each: dict[str, WebContext] = field(default_factory=dict, init=False)

    def of(self, slug: str | None) -> WebContext:
        """The context of the newsletter ``slug`` (None: the first); 404 for none such."""
        try:
            newsletter = self.installation.newsletter_named(slug)
        except ValueError:
            abort(404)
        found = self._each.get(newsletter.slug)
        if found is None:
            own = self.installation.for_newsletter(newsletter)
            found = self._each[newsletter.slug] = WebContext(
                own,
                self.store.scoped(newsletter.slug, newsletter.sources),
                partial(self.connect, own),
                self.clock,
                self.themes,
            )
        return found


def newsletters() -> Newsletters:
    """Every newsletter the site serves."""
    found: Newsletters = current_app.extensions["digest"]
    return found


def context() -> WebContext:
    """The context of the newsletter the request is about (``use_newsletter``)."""
    return newsletters().of(g.get("newsletter"))


def newsletter_choices(checked: Sequence[str]) -> list[dict[str, Any]]:
    """The newsletters a sign-up form offers, those in ``checked`` ticked."""
    return [
        {"slug": n.slug, "name": n.name, "checked": n.slug in checked}
        for n in newsletters().installation.all_newsletters()
    ]


def use_newsletter(slug: str) -> None:
    """The rest of this request is about the newsletter ``slug``: the one a link's reader
    is in, or the one a page's address names."""
    g.newsletter = slug


def page(template: str, status: int = 200, **values: Any) -> tuple[str, int]:
    """A page of the site, with the themes and no errors unless given."""
    values.setdefault("themes", context().themes)
    values.setdefault("errors", [])
    values.setdefault("choices", newsletter_choices([context().settings.newsletter]))
    return render_template(template, **values), status


def message_page(heading: str, *paragraphs: str, status: int) -> tuple[str, int]:
    """A page that says one thing: a heading and a few paragraphs."""
    return render_template("message.html", heading=heading, paragraphs=paragraphs), status


#: How each way of leaving reads to the reader.
_LEFT = {
    "unsubscribed": "You unsubscribed",
    "bounced": "Your mail server refused the digest",
    "complained": "You reported the digest as spam",
}


def left_page(subscriber: Subscriber) -> tuple[str, int]:
    """The page of a reader who left: nothing here mails them again but their own
    confirmed sign-up, which the form below starts."""
    return page(
        "message.html",
        heading=f"{subscriber.email} gets no digest",
        paragraphs=[
            f"{_LEFT.get(subscriber.status, 'You left')}, so {context().settings.title} "
            "sends this address nothing, and this page changes nothing.",
            "To get it again, subscribe again: we mail you a link to confirm.",
        ],
        ask_again=True,
        form={"email": subscriber.email},
    )


def subscriber_from(purpose: str, token: str) -> Subscriber:
    """The subscriber a link token names (the request is then about their newsletter);
    400 for a forged or unknown one."""
    found = context()
    try:
        subscriber_id = read_token(found.settings.secret_key, purpose, token)
    except TokenError:
        subscriber_id = 0
    subscriber = found.store.get_subscriber_by_id(subscriber_id) if subscriber_id else None
    if subscriber is None:
        abort(400, description="This link is not valid. Please use the link from your email.")
    use_newsletter(subscriber.newsletter)
    return subscriber
