"""Dates as feeds write them.  Pure."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any


def iso_date(value: Any) -> date | None:
    """The date of an ISO 8601 timestamp (``Z`` allowed), or None when it is not one."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).date()
    except ValueError:
        return None
