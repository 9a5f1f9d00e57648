"""What monitoring reads: ``/metrics`` (Prometheus), ``/healthz`` and ``/readyz``."""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, abort, current_app, jsonify, request
from prometheus_client import CollectorRegistry, Counter

from digest.app.metrics import CONTENT_TYPE, exposition, readiness, registry_for
from digest.web.context import limiter, newsletters

monitoring = Blueprint("monitoring", __name__)

#: Who may read /metrics without a token: this machine, not through a proxy.
_LOOPBACK = {"127.0.0.1", "::1"}


def metrics_registry() -> CollectorRegistry:
    """The app's registry: digest's collector and the web app's own request counter."""
    found: CollectorRegistry | None = current_app.extensions.get("digest.metrics")
    if found is None:
        site = newsletters()
        found = registry_for(site.installation, lambda: site.store)
        current_app.extensions["digest.metrics"] = found
        current_app.extensions["digest.requests"] = Counter(
            "digest_http_requests",
            "Web requests answered, by status.",
            ["status"],
            registry=found,
        )
    return found


def count_response(response: Response) -> Response:
    """Count a response by its status (every page, the API's included)."""
    metrics_registry()
    current_app.extensions["digest.requests"].labels(str(response.status_code)).inc()
    return response


@monitoring.get("/metrics")
@limiter.exempt  # scraped often, by one client
def metrics() -> Response:
    """The metrics, for a scraper with the token (none set: for this machine only)."""
    token = newsletters().installation.web.metrics_token
    if token is None:
        proxied = "X-Forwarded-For" in request.headers or "Forwarded" in request.headers
        if request.remote_addr not in _LOOPBACK or proxied:
            abort(404)
    else:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), token.encode()):
            return Response("a bearer token is needed\n", 401, {"WWW-Authenticate": "Bearer"})
    return Response(exposition(metrics_registry()), mimetype=CONTENT_TYPE)


@monitoring.get("/healthz")
@limiter.exempt
def healthz() -> Response:
    """The process answers."""
    return jsonify(status="ok")


@monitoring.get("/readyz")
@limiter.exempt
def readyz() -> tuple[Response, int]:
    """The process can serve: its database answers and is at the current revision."""
    why = readiness(newsletters().store)
    if why is not None:
        return jsonify(status="unavailable", reason=why), 503
    return jsonify(status="ok"), 200
