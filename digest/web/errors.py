"""The error pages: every error is a calm page saying what happened and what to do."""

from __future__ import annotations

from flask import Blueprint
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from digest.web.context import message_page

errors = Blueprint("errors", __name__)

_TITLES = {
    404: "Page not found",
    405: "Not allowed",
    413: "That was too much text",
    429: "Too many attempts",
}


@errors.app_errorhandler(CSRFError)
def csrf_failed(error: CSRFError) -> tuple[str, int]:
    return message_page(
        "This form has expired",
        "Please go back, reload the page and send the form again.",
        status=400,
    )


@errors.app_errorhandler(HTTPException)
def http_error(error: HTTPException) -> tuple[str, int]:
    code = error.code or 500
    text = {
        429: f"Please wait {_wait(error)} and try again.",
        413: "Please shorten what you typed and try again.",
    }.get(code, error.description or "")
    return message_page(_TITLES.get(code, error.name), text, status=code)


def _wait(error: HTTPException) -> str:
    """How long the limit that was hit lasts, in words ("a minute", "15 minutes")."""
    limit = getattr(getattr(error, "limit", None), "limit", None)
    seconds = limit.get_expiry() if limit is not None else 60
    minutes = max(1, round(seconds / 60))
    if seconds < 90:
        return "a minute"
    if minutes < 90:
        return f"{minutes} minutes"
    return f"{round(minutes / 60)} hours"
