"""What happened, as the events a webhook may ask for: which change is which event.

Pure: the store writes an event in the same transaction as the change it tells of,
so that an event is never lost nor told of a change that did not happen.
"""

from __future__ import annotations

from typing import Any

from digest.models import Subscriber

#: Every event a ``[[webhooks]]`` table may ask for.
EVENT_TYPES = (
    "subscriber.created",
    "subscriber.confirmed",
    "subscriber.unsubscribed",
    "subscriber.bounced",
    "subscriber.complained",
    "subscriber.paused",
    "edition.created",
    "edition.sent",
    "delivery.failed",
    "feedback.recorded",
    "source.failed",
    "source.recovered",
)

#: The event of a reader's new state (a reader who comes back from a pause is none).
_STATE_EVENTS = {
    "active": "subscriber.confirmed",
    "unsubscribed": "subscriber.unsubscribed",
    "bounced": "subscriber.bounced",
    "complained": "subscriber.complained",
    "paused": "subscriber.paused",
}


def reader_events(
    before: Subscriber | None, after: Subscriber, channel: str
) -> list[tuple[str, dict[str, Any]]]:
    """The events of one reader's change: created, and the state they came to."""
    data = reader_data(after) | {"channel": channel}
    found = []
    if before is None:
        found.append(("subscriber.created", data))
    if before is None or before.state != after.state:
        kind = _STATE_EVENTS.get(after.state)
        if kind is not None and not (kind == "subscriber.confirmed" and _resumed(before)):
            found.append((kind, data))
    return found


def reader_data(reader: Subscriber) -> dict[str, Any]:
    """What an event tells of a reader (never their topics or anything they typed)."""
    return {
        "id": reader.id,
        "email": reader.email,
        "newsletter": reader.newsletter,
        "state": reader.state,
    }


def _resumed(before: Subscriber | None) -> bool:
    return before is not None and before.state == "paused"
