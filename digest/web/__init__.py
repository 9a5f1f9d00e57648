"""The self-service web pages: a thin Flask shell, one blueprint per area.

``create_app(test_config=None)`` builds the app (flaskr's factory pattern);
``digest serve`` runs it for development and gunicorn in production
(``web: gunicorn "digest.web:create_app()"``).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, request
from werkzeug.routing import IntegerConverter

from digest.app import Store, shipped_themes, transport_for
from digest.config import DEFAULT_DATABASE_URL, Settings, load_settings, with_secret_key
from digest.errors import ConfigError
from digest.likes import MAX_LIBRARY_BYTES
from digest.resources import resource_path
from digest.web.admin import admin
from digest.web.api import api
from digest.web.archive import archive
from digest.web.context import Newsletters, context, csrf, limiter
from digest.web.errors import errors
from digest.web.feedback import feedback
from digest.web.monitoring import count_response, monitoring
from digest.web.preferences import preferences
from digest.web.subscription import subscription

#: No inline script or style anywhere: every page works under this policy.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)


class IdConverter(IntegerConverter):
    """A row id in a path: a whole number a 32-bit column holds (PostgreSQL's integer);
    any other number is no page (404), never an overflow in the database."""

    def __init__(self, url_map: Any) -> None:
        super().__init__(url_map, min=1, max=2**31 - 1)


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the web app.

    ``test_config`` holds Flask settings, and may carry DIGEST_SETTINGS (a
    ``Settings``), DIGEST_TRANSPORT (a transport factory) and DIGEST_CLOCK.
    """
    config = dict(test_config or {})
    settings = _settings(config.pop("DIGEST_SETTINGS", None))
    injected = config.pop("DIGEST_TRANSPORT", None)  # a test's: one for every newsletter
    connect = (lambda _: injected()) if injected else transport_for
    clock = config.pop("DIGEST_CLOCK", None) or (lambda: datetime.now(UTC))
    app = Flask(
        __name__,
        template_folder=str(resource_path("templates", "web")),
        static_folder=str(resource_path("templates", "web", "static")),
    )
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=32 * 1024,
        WTF_CSRF_TIME_LIMIT=None,
        WTF_CSRF_SSL_STRICT=False,
        RATELIMIT_STORAGE_URI=settings.web.ratelimit_storage,
        RATELIMIT_HEADERS_ENABLED=True,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.base_url.startswith("https://"),
    )
    app.config.update(config)
    app.url_map.converters["id"] = IdConverter
    url = settings.database_url
    app.extensions["digest"] = Newsletters(
        settings,
        Store.open(url, create_folder=url == DEFAULT_DATABASE_URL),
        connect,
        clock,
        shipped_themes(),
    )

    app.before_request(_room_for_a_library)  # before the CSRF check, which reads the form
    csrf.init_app(app)
    limiter.init_app(app)
    blueprints = (subscription, preferences, feedback, archive, admin, monitoring, api, errors)
    for blueprint in blueprints:
        app.register_blueprint(blueprint)
    app.after_request(count_response)
    app.context_processor(lambda: {"newsletter": context().settings.title})
    app.after_request(_security_headers)
    return app


def _settings(given: Settings | None) -> Settings:
    """The settings given, or loaded; a config error ends the process (exit 2)."""
    try:
        # No built-in key: a public site without SECRET_KEY refuses to start.
        return with_secret_key(given or load_settings())
    except ConfigError as e:
        for problem in e.problems:
            print(f"digest: config error: {problem}", file=sys.stderr)
        raise SystemExit(2) from e


def _room_for_a_library() -> None:
    if request.endpoint == "preferences.library":
        request.max_content_length = MAX_LIBRARY_BYTES  # the one form that takes a file


def _security_headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    # Personal links carry tokens in the path: never leak them to other sites.
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers.setdefault("Cache-Control", "no-store")
    return response
