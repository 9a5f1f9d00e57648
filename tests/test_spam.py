"""What spam filters see: every kind of message digest sends scores 0.0 or less with
SpamAssassin's local tests (``spamassassin -t -L``), and rspamd takes no action on it
and finds nothing a sender could fix, where they are installed."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from digest.deliver.compose import Composer, ComposeSettings, Job, compose_message
from digest.deliver.notices import already_subscribed_notice, confirm_notice, welcome_notice
from digest.models import Delivery, Edition, StoredEntry, Subscriber, Topic
from digest.plan import Send
from digest.select.index import EditionIndex
from digest.tokens import ConfirmRequest

from .conftest import DAY, NOW, THEMES, make_settings

pytestmark = pytest.mark.slow


def score(message: bytes) -> tuple[float, str]:
    """SpamAssassin's score of a message with its local tests, and its report."""
    result = subprocess.run(
        ["spamassassin", "-t", "-L"], input=message, capture_output=True, timeout=120, check=False
    )
    report = result.stdout.decode("utf-8", "replace")
    found = re.search(r"Content analysis details:\s+\((-?[\d.]+) points", report)
    assert found, report[-2000:]
    return float(found.group(1)), report[report.index("Content analysis") :]


def messages(tmp_path: Path, stored: list[StoredEntry]) -> dict[str, bytes]:
    settings = ComposeSettings.of(make_settings(tmp_path, None))
    composer = Composer(settings, "installation")
    edition = Edition(1, DAY, NOW, len(stored))
    found: dict[str, bytes] = {}
    with EditionIndex(stored) as index:
        for theme in THEMES:
            fair = (Topic("title:fairness", "Fairness"),)
            reader = Subscriber(1, "ada@example.org", "active", theme=theme, topics=fair)
            delivery = Delivery(1, edition.id, reader.id, "queued")
            message = compose_message(
                composer, edition, index, Job(delivery, Send(reader), NOW)
            ).message
            assert message is not None
            found[f"digest-{theme}"] = message
    pending = Subscriber(2, "new@example.org", "pending")
    found["confirm"] = confirm_notice(
        settings,
        pending,
        request=ConfirmRequest(2),
        confirm_hours=72,
        topics=(Topic("rlhf"),),
        now=NOW,
    )[1]
    found["already"] = already_subscribed_notice(settings, pending, now=NOW)[1]
    reader = Subscriber(3, "ada@example.org", "active", topics=(Topic("rlhf"),))
    found["welcome"] = welcome_notice(settings, reader, first=NOW, now=NOW)[1]
    return found


@pytest.mark.skipif(
    shutil.which("spamassassin") is None,
    reason="SpamAssassin not installed (apt-get install spamassassin; .ci/run does it)",
)
def test_every_kind_of_message_scores_zero_or_less(
    tmp_path: Path, sample_stored: list[StoredEntry]
) -> None:
    scores = {name: score(raw) for name, raw in messages(tmp_path, sample_stored).items()}
    high = {name: report for name, (points, report) in scores.items() if points > 0.0}
    assert not high, high


#: What rspamd says of mail a sender could have written better.
SENDER_FIXABLE = {"URI_COUNT_ODD", "MIME_BASE64_TEXT", "R_MISSING_CHARSET", "MID_RHS_NOT_FQDN"}


def test_rspamd_takes_no_action_on_any_kind_of_message(
    tmp_path: Path, sample_stored: list[StoredEntry]
) -> None:
    from .rspamd_server import rspamd, rspamd_available

    if not rspamd_available():
        pytest.skip("rspamd not installed (apt-get install rspamd; .ci/run does it)")
    with rspamd() as scanner:
        verdicts = {
            name: scanner.check(raw) for name, raw in messages(tmp_path, sample_stored).items()
        }
    for name, verdict in verdicts.items():
        symbols = set(verdict["symbols"])  # type: ignore[call-overload]
        assert verdict["action"] == "no action", (name, verdict["score"], sorted(symbols))
        assert not symbols & SENDER_FIXABLE, (name, sorted(symbols & SENDER_FIXABLE))
