"""A relay's quotas as token buckets: the rule (pure) the store applies in its transaction.

Each limit of N messages per S seconds is a bucket of N tokens (at least one) that
fills at N/S tokens a second; a message takes one token from every bucket, or waits
until each has one.
"""

from __future__ import annotations

from collections.abc import Sequence

#: (messages, per seconds, tokens left, seconds since they were counted)
Bucket = tuple[float, float, float, float]


def take_token(buckets: Sequence[Bucket]) -> tuple[list[float], float]:
    """The tokens each bucket has after one message, and 0; or, when one is short, the
    tokens refilled so far and how many seconds until every bucket has one."""
    filled = [
        min(max(1.0, messages), tokens + since * messages / seconds)
        for messages, seconds, tokens, since in buckets
    ]
    short = [
        (1.0 - tokens) * seconds / messages
        for (messages, seconds, _, _), tokens in zip(buckets, filled, strict=True)
        if tokens < 1.0
    ]
    if short:
        return filled, max(short)
    return [tokens - 1.0 for tokens in filled], 0.0


def describe(messages: float, seconds: float) -> str:
    """A limit as people write it: '14 per second', '50000 per day'."""
    units = {1.0: "second", 60.0: "minute", 3600.0: "hour", 86400.0: "day"}
    per = units.get(seconds, f"{seconds:g} seconds")
    return f"{messages:g} per {per}"
