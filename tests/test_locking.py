"""The run lock: a lease row in the database, one run at a time, on either backend."""

from __future__ import annotations

import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from digest.app import job
from digest.locking import RUN_LOCK, RunInProgress, RunLock
from digest.store import Store

from .conftest import NOW, Clock, Sleeps, make_settings, wait_until


@pytest.fixture
def store(any_store: Store) -> Store:
    return any_store


def test_the_lock_keeps_a_second_run_out_and_frees_on_expiry_or_death(store: Store) -> None:
    clock = Clock(NOW)
    with RunLock(store, clock=clock, holder="elsewhere:123:a"):
        with pytest.raises(RunInProgress, match="process 123 on elsewhere"):
            RunLock(store, clock=clock).__enter__()
        # A run holding the lock makes job.run refuse without sending anything
        # (on PostgreSQL a run waits for another's planning instead: see test_postgres).
        if store.dialect == "sqlite":
            with pytest.raises(RunInProgress):
                job.run(
                    store, make_settings(Path("/tmp"), None), job.Runtime(now=clock, transport=None)
                )  # type: ignore[arg-type]
    # A lease whose holder died elsewhere expires after its ttl.
    store.acquire_lock(RUN_LOCK, "gone:1:x", now=NOW, ttl=timedelta(minutes=2))
    with RunLock(store, clock=Clock(NOW + timedelta(minutes=3))) as taken:
        assert store.lock_holder(RUN_LOCK, now=NOW + timedelta(minutes=3)) == taken.holder
    # A holder on this machine whose process is gone is taken over at once.
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    store.acquire_lock(
        RUN_LOCK, f"{socket.gethostname()}:{dead}:y", now=NOW, ttl=timedelta(hours=1)
    )
    with RunLock(store, clock=Clock(NOW)):
        pass
    assert store.lock_holder(RUN_LOCK, now=NOW) is None


def test_a_lost_lease_is_noticed_by_the_keeper(store: Store) -> None:
    clock = Clock(NOW)
    lock = RunLock(store, clock=clock, ttl=timedelta(seconds=1.5))
    with lock:
        assert lock.holds()
        clock.now = NOW + timedelta(minutes=5)  # the lease ran out and another took it
        store.acquire_lock(RUN_LOCK, "other:9:z", now=clock.now, ttl=timedelta(minutes=2))
        wait_until(lambda: not lock.holds())  # the keeper's next renewal finds it gone


def test_waiting_for_a_busy_lock_gives_up_with_the_holder_named(store: Store) -> None:
    store.acquire_lock(RUN_LOCK, "busy:77:q", now=NOW, ttl=timedelta(hours=1))
    sleeps = Sleeps()
    with pytest.raises(RunInProgress, match="process 77 on busy"):
        RunLock(store, clock=Clock(NOW), wait_seconds=0.2, sleep=sleeps).__enter__()
    assert sleeps and all(0.1 <= s <= 5.0 for s in sleeps)
