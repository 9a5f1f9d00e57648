"""Consent rules, pure: what each channel may do to a subscriber, with no database."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from digest.models import STATES, SUPPRESSED, Subscriber, Topic
from digest.subscribers import SubscriberInput
from digest.subscriptions import (
    ConsentRefused,
    Rule,
    chooses,
    confirms,
    import_result,
    leaves,
    left_stamp,
    may_confirm,
    operator_adds,
    operator_imports,
    pauses,
    sign_up_mail,
    signs_up,
    suppresses,
)

from .conftest import NOW

ADA = Subscriber(id=7, email="ada@example.org", status="active", name="Ada")
LEFT = Subscriber(id=8, email="gone@example.org", status="unsubscribed", unsubscribed_at=NOW)
PENDING = Subscriber(id=9, email="new@example.org", status="pending")
LATER = NOW + timedelta(hours=1)


def apply(rule: Rule, current: Subscriber | None) -> Subscriber | None:
    """The subscriber as stored after the rule (the same one when it changes nothing)."""
    change = rule(current, LATER)
    return change.subscriber if change is not None else current


def test_an_operator_adds_a_new_address_active_and_keeps_the_given_fields() -> None:
    item = SubscriberInput("zoe@example.org", name="Zoë", topics=(Topic("rlhf"),))
    added = apply(operator_adds(item), None)
    assert added is not None
    assert (added.id, added.status, added.name, added.topics) == (0, "active", "Zoë", item.topics)


def test_an_operator_never_brings_back_nor_changes_someone_who_left() -> None:
    with pytest.raises(ConsentRefused, match="gone@example.org unsubscribed; left unchanged"):
        operator_adds(SubscriberInput(LEFT.email, name="New name"))(LEFT, LATER)
    keep_out = SubscriberInput(LEFT.email, name="New name", status="unsubscribed")
    assert operator_adds(keep_out)(LEFT, LATER) is None
    assert operator_imports(SubscriberInput(LEFT.email, status="active"))(LEFT, LATER) is None


def test_an_operator_may_ask_for_less_mail_but_never_unpauses() -> None:
    paused = apply(pauses(True), ADA)
    assert paused is not None and paused.state == "paused"
    again = apply(operator_adds(SubscriberInput(ADA.email, status="active")), paused)
    assert again is not None and again.state == "paused"
    gone = apply(operator_adds(SubscriberInput(ADA.email, status="unsubscribed")), ADA)
    assert gone is not None and gone.state == "unsubscribed" and gone.unsubscribed_at == LATER


def test_none_in_an_input_leaves_a_field_as_it_is() -> None:
    updated = apply(operator_adds(SubscriberInput("ADA@example.org", theme="dark")), ADA)
    assert updated is not None
    assert (updated.email, updated.name, updated.theme) == ("ADA@example.org", "Ada", "dark")


def test_a_sign_up_changes_only_a_new_address() -> None:
    item = SubscriberInput("x@example.org", topics=(Topic("gan"),))
    assert apply(signs_up(item), None) == Subscriber(
        0, "x@example.org", "pending", topics=item.topics
    )
    assert signs_up(item)(ADA, LATER) is None  # a stranger must not change her topics
    assert signs_up(item)(LEFT, LATER) is None  # nor bring back someone who left
    # nor replace a pending sign-up's choices: a later one's travel in its own link
    assert signs_up(item)(PENDING, LATER) is None
    assert [sign_up_mail(s) for s in (None, PENDING, LEFT, ADA)] == [
        "confirm",
        "confirm",
        "confirm",
        "already",
    ]


def test_only_a_link_issued_after_they_left_brings_someone_back() -> None:
    assert may_confirm(PENDING, None)
    assert not may_confirm(LEFT, None)
    assert may_confirm(LEFT, left_stamp(LEFT))
    left_again = Subscriber(8, LEFT.email, "unsubscribed", unsubscribed_at=LATER)
    assert not may_confirm(left_again, left_stamp(LEFT))
    assert not may_confirm(ADA, None)
    change = confirms(left_stamp(LEFT), [Topic("rlhf")], "dark")(LEFT, LATER)
    assert change is not None and change.detail == "opted in again"
    back = change.subscriber
    assert (back.status, back.unsubscribed_at, back.topics, back.theme) == (
        "active",
        None,
        (Topic("rlhf"),),
        "dark",
    )


def test_only_an_active_reader_pauses() -> None:
    assert pauses(True)(PENDING, LATER) is None
    assert pauses(True)(LEFT, LATER) is None
    chosen = apply(chooses(topics=[], theme=None, timezone="Asia/Tokyo", paused=True), PENDING)
    assert chosen is not None and (chosen.paused, chosen.timezone) == (False, "Asia/Tokyo")


def test_leaving_keeps_when_they_first_left() -> None:
    gone = apply(leaves, ADA)
    assert gone is not None and gone.unsubscribed_at == LATER
    assert leaves(gone, LATER + timedelta(days=1)) is None


def test_an_import_is_summed_up_row_by_row() -> None:
    items = [
        SubscriberInput("new@example.org"),
        SubscriberInput(ADA.email, name="Ada L."),
        SubscriberInput(LEFT.email, status="unsubscribed"),
        SubscriberInput(LEFT.email),
    ]
    stored: list[Subscriber | None] = [None, ADA, LEFT, LEFT]
    outcomes = [
        (s, apply(operator_imports(i), s) if s is not LEFT else None)
        for i, s in zip(items, stored, strict=True)
    ]
    result = import_result(items, outcomes)
    assert (result.created, result.updated, result.kept_unsubscribed) == (1, 1, 1)
    assert result.refused == (LEFT.email,)


# Every rule but the reader's own confirmation, with any arguments.
OTHERS_RULES = st.one_of(
    st.builds(
        operator_adds,
        st.builds(
            SubscriberInput,
            st.just(LEFT.email),
            name=st.none() | st.text(max_size=5),
            status=st.sampled_from([None, *STATES]),
        ),
    ).map(lambda rule: _refusal_as_nothing(rule)),
    st.builds(
        lambda s: operator_imports(SubscriberInput(LEFT.email, status=s)),
        st.sampled_from([None, "active", "paused"]),
    ),
    st.builds(lambda: signs_up(SubscriberInput(LEFT.email, topics=(Topic("x"),)))),
    st.builds(pauses, st.booleans()),
    st.builds(lambda p: chooses(topics=[], theme="dark", timezone=None, paused=p), st.booleans()),
    st.just(leaves),
    st.builds(suppresses, st.sampled_from(SUPPRESSED)),  # a bounce, a complaint, a mailto
    st.builds(lambda: confirms(None, None, None)),  # a link from before they left
)


def _refusal_as_nothing(rule: Rule) -> Rule:
    def refused_or_rule(current: Subscriber | None, now: object) -> object:
        try:
            return rule(current, LATER)
        except ConsentRefused:
            return None

    return refused_or_rule  # type: ignore[return-value]


@given(st.sampled_from(SUPPRESSED), st.lists(OTHERS_RULES, max_size=12))
def test_nothing_but_their_own_new_link_brings_back_someone_who_left(
    how: str, rules: list[Rule]
) -> None:
    current: Subscriber | None = replace(LEFT, status=how)
    for rule in rules:
        change = rule(current, LATER)
        if change is not None:
            assert change.subscriber.status == how  # they stay out, as they left
            current = change.subscriber
    assert current is not None and current.unsubscribed_at == NOW


@pytest.mark.parametrize("how", ["bounced", "complained"])
def test_a_bounce_or_complaint_suppresses_and_only_their_new_link_lifts_it(how: str) -> None:
    gone = apply(suppresses(how), ADA)
    assert gone is not None and (gone.status, gone.unsubscribed_at) == (how, LATER)
    with pytest.raises(ConsentRefused, match="left unchanged"):
        operator_adds(SubscriberInput(ADA.email, status="active"))(gone, LATER)
    assert apply(leaves, gone) == gone  # a later unsubscribe keeps why they left
    assert apply(confirms(None, None, None), gone) == gone
    back = apply(confirms(left_stamp(gone), None, None), gone)
    assert back is not None and back.status == "active" and back.unsubscribed_at is None
