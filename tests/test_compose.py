"""Composing: a selection into the bytes of one message, with the narrow settings
the composing process gets, and one delivery's failure kept to itself."""

from __future__ import annotations

import email
import email.policy
import pickle
from dataclasses import fields, replace
from datetime import date
from pathlib import Path

from digest.deliver.compose import Composer, ComposeSettings, Job, compose_message
from digest.models import Delivery, Edition, StoredEntry, Subscriber, Topic
from digest.plan import Send, Skip
from digest.select.index import EditionIndex

from .conftest import NOW, make_settings

EDITION = Edition(id=3, day=date(2026, 11, 28), created_at=NOW, entry_count=0)
DELIVERY = Delivery(1, 3, 7, "queued")
ADA = Subscriber(
    id=7,
    email="ada@example.org",
    status="active",
    name="Ada",
    topics=(Topic("title:fairness", "Fairness"),),
)


def composer(tmp_path: Path) -> Composer:
    return Composer(ComposeSettings.of(make_settings(tmp_path, None)), "installation-1")


def test_the_composing_process_gets_only_what_composing_uses(tmp_path: Path) -> None:
    settings = ComposeSettings.of(make_settings(tmp_path, None))
    assert pickle.loads(pickle.dumps(settings)) == settings  # it travels to the child
    names = {f.name for f in fields(settings)}
    assert not names & {"database_url", "smtp", "delivery", "sources", "web"}
    assert "secret_key" not in repr(settings)


def test_a_message_carries_its_stable_id_and_the_readers_links(
    tmp_path: Path, sample_stored: list[StoredEntry]
) -> None:
    made = composer(tmp_path)
    with EditionIndex(sample_stored) as index:
        first = compose_message(made, EDITION, index, Job(DELIVERY, Send(ADA), NOW))
        again = compose_message(composer(tmp_path), EDITION, index, Job(DELIVERY, Send(ADA), NOW))
    message, envelope = first.message, first.envelope
    assert message is not None and envelope is not None
    assert (first.not_mailed, first.failure) == (None, None)
    message_id = envelope.message_id
    assert again.envelope is not None and message_id == again.envelope.message_id  # a rerun
    parsed = email.message_from_bytes(message, policy=email.policy.default)
    assert parsed["Message-ID"] == message_id and parsed["To"] == "Ada <ada@example.org>"
    assert made.factory.links(ADA.id).unsubscribe_url in parsed["List-Unsubscribe"]


def test_nothing_on_their_topics_is_a_skip_with_the_deciders_reason(
    tmp_path: Path, sample_stored: list[StoredEntry]
) -> None:
    nobody = replace(ADA, topics=(Topic("title:zzzunheardof"),))
    with EditionIndex(sample_stored) as index:
        composed = compose_message(
            composer(tmp_path), EDITION, index, Job(DELIVERY, Send(nobody), NOW)
        )
    assert composed.message is None and composed.failure is None
    assert composed.not_mailed == Skip("nothing new on their topics")


def test_a_delivery_that_cannot_be_composed_fails_alone(
    tmp_path: Path, sample_stored: list[StoredEntry]
) -> None:
    unsendable = replace(ADA, email="ädä@example.org")  # no SMTPUTF8: no message can carry it
    with EditionIndex(sample_stored) as index:
        job = Job(DELIVERY, Send(unsendable), NOW)
        failed = compose_message(composer(tmp_path), EDITION, index, job)
        fine = compose_message(composer(tmp_path), EDITION, index, Job(DELIVERY, Send(ADA), NOW))
    failure = failed.failure
    assert failed.message is None and failure is not None
    assert failure.startswith("could not compose: ")
    assert fine.message is not None
