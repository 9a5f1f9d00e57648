"""Signed link tokens: each proves one purpose for one subscriber, and nothing else."""

from __future__ import annotations

import pytest

from digest.tokens import (
    ConfirmRequest,
    TokenError,
    confirm_url,
    make_token,
    read_confirm_token,
    read_token,
)

KEY = "test-secret-key-for-digest-tests-0123456789"


def test_a_token_names_its_subscriber_for_its_purpose_only() -> None:
    token = make_token(KEY, "unsubscribe", 42)
    assert read_token(KEY, "unsubscribe", token) == 42
    with pytest.raises(TokenError, match="not valid"):
        read_token(KEY, "preferences", token)
    with pytest.raises(TokenError, match="not valid"):
        read_token("another-key-that-is-long-enough-0123456789", "unsubscribe", token)
    with pytest.raises(TokenError, match="not valid"):
        read_token(KEY, "unsubscribe", token[:-2] + "xx")


def test_a_confirmation_link_carries_what_a_returning_reader_asked_for() -> None:
    request = ConfirmRequest(7, "2026-11-28T08:00:00+00:00", "Vision: diffusion", "dark")
    token = confirm_url("", KEY, 7, request).removeprefix("/confirm/")
    assert read_confirm_token(KEY, token, max_age_seconds=3600) == request
    plain = confirm_url("", KEY, 8).removeprefix("/confirm/")
    assert read_confirm_token(KEY, plain, max_age_seconds=3600) == ConfirmRequest(8)
    legacy = make_token(KEY, "confirm", 9)  # a link mailed before links carried more
    assert read_confirm_token(KEY, legacy, max_age_seconds=3600) == ConfirmRequest(9)
    with pytest.raises(TokenError) as expired:
        read_confirm_token(KEY, plain, max_age_seconds=-1)
    assert expired.value.expired
