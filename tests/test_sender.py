"""The send path goes one way: each delivery is decided once, and a dry run is the run."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from digest import plan
from digest.app import job
from digest.deliver import sender
from digest.store import Store, metadata
from digest.subscribers import check_input

from .conftest import DAY, NOW, THEMES, Clock, fill, make_settings, run, set_paused, subscribe


def _readers(store: Store) -> None:
    """Daily readers, one paused, one whose topics find nothing, one weekly, one far west."""
    fill(store, 24, topics=["learning"])
    for item in (
        check_input("paused@example.org", themes=THEMES),
        check_input("nothing@example.org", topics=["quantum chromodynamics"], themes=THEMES),
        check_input("weekly@example.org", cadence="weekly:monday", themes=THEMES),
        check_input("west@example.org", timezone="America/Los_Angeles", themes=THEMES),
    ):
        subscribe(store, item, now=NOW)
    set_paused(store, "paused@example.org", paused=True, now=NOW)


def _counting_decider(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    asked: Counter[str] = Counter()
    decide = plan.decide

    def counted(*args: Any, **kwargs: Any) -> plan.Decision:
        asked[args[1].email] += 1
        return decide(*args, **kwargs)

    monkeypatch.setattr(plan, "decide", counted)
    return asked


@pytest.mark.parametrize("in_child", [False, True], ids=["composed-here", "composed-in-child"])
def test_the_decider_is_asked_exactly_once_per_delivery(
    any_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_child: bool
) -> None:
    monkeypatch.setattr(sender, "COMPOSE_IN_A_PROCESS_FROM", 1 if in_child else 10**9)
    _readers(any_store)
    asked = _counting_decider(monkeypatch)
    settings = replace(make_settings(tmp_path, None), delivery_mode="local")
    report = run(any_store, settings)
    d = report.delivery
    assert (d.sent, d.skipped, d.waiting, d.folded) == (24, 2, 1, 1)
    assert len(asked) == 28 and set(asked.values()) == {1}


def _rows(store: Store) -> dict[str, int]:
    with store.engine.connect() as conn:
        return {
            t.name: int(conn.scalar(select(func.count()).select_from(t)) or 0)
            for t in metadata.sorted_tables
        }


def test_a_dry_run_is_the_run_on_a_copy_and_changes_nothing(
    any_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _readers(any_store)
    settings = replace(make_settings(tmp_path, None), delivery_mode="local")
    before = _rows(any_store)
    asked = _counting_decider(monkeypatch)
    dry = job.dry_run(any_store, settings, now=Clock(NOW), day=DAY)
    assert _rows(any_store) == before and not (tmp_path / "outbox").exists()
    rehearsed, asked = dict(asked), _counting_decider(monkeypatch)
    real = run(any_store, settings)

    def counted(report: job.RunReport) -> tuple[int, ...]:
        d = report.delivery
        return d.sent, d.skipped, d.waiting, d.folded, d.failed

    assert dry.dry_run and counted(dry) == counted(real) == (24, 2, 1, 1, 0)
    assert rehearsed == dict(asked)  # the same readers, asked the same question once
    assert len(list((tmp_path / "outbox").iterdir())) == 24
