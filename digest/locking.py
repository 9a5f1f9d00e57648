"""One run at a time, across processes and machines: a lease held in the database.

The lease is renewed by a thread of its own (``Keeper``) for as long as the
process lives, whatever the run is waiting on, so a run on a machine that
died frees it after ``ttl``; a holder on this machine whose process is gone
is taken over at once, so a rerun right after a crash or kill need not wait.
A holder that was paused (SIGSTOP, a VM pause) or could not reach the
database for longer than its lease has lost it, and knows: ``Keeper.holds``
is false from then on, before anything more is sent.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from digest.errors import DigestError, StorageError
from digest.logs import log_event
from digest.store import Store

log = logging.getLogger(__name__)

RUN_LOCK = "run"
DEFAULT_TTL = timedelta(minutes=2)


class RunInProgress(DigestError):
    """Another process holds the run lock."""

    def __init__(self, holder: str) -> None:
        self.holder = holder
        super().__init__(
            f"another digest run is in progress ({describe_holder(holder)}); nothing sent",
            hint="it will deliver the edition; use --wait SECONDS to wait for it instead",
        )


class LostOwnership(DigestError):
    """This process's run lock or delivery claims lapsed (it was paused, or the database
    was out of reach for longer than the lease): another may have taken its work."""

    hint = "nothing more was sent; whatever is left is sent by the other process or the next run"


class Keeper:
    """Renews a lease from a thread of its own, every third of it, while the ``with``
    block runs; ``holds`` says whether the lease is surely still this process's.

    ``renew`` returns False when the lease was taken by another.  A renewal that
    comes later than 90% of the lease after the last good one is not tried: the
    lease may have run out in between, so it counts as lost.
    """

    def __init__(self, renew: Callable[[], bool], *, lease: timedelta, what: str) -> None:
        self.renew = renew
        self.seconds = lease.total_seconds()
        self.what = what
        self.lost: str | None = None
        self._last = (time.monotonic(), time.time())
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"keeper-{what}", daemon=True)

    def __enter__(self) -> Keeper:
        self._last = (time.monotonic(), time.time())
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.ident is not None:  # started
            self._thread.join()

    def holds(self) -> bool:
        """Whether the lease is this process's for sure: renewed recently enough."""
        return self.lost is None and not self._lapsed()

    def check(self) -> None:
        """Raise ``LostOwnership`` unless the lease is surely held."""
        if not self.holds():
            raise LostOwnership(
                f"lost its {self.what}: {self.lost or 'not renewed within its lease (paused?)'}; "
                "stopped before sending more"
            )

    def _lapsed(self) -> bool:
        monotonic, wall = self._last
        margin = 0.9 * self.seconds
        # Both clocks: a paused virtual machine may stop one of them.
        return time.monotonic() - monotonic > margin or abs(time.time() - wall) > margin

    def _run(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            if self._lapsed():
                self.lost = self.lost or "not renewed within its lease (paused?)"
                return
            try:
                if not self.renew():
                    self.lost = "another process took it over"
                    return
            except StorageError as e:
                log_event(
                    log, "lease_not_renewed", logging.WARNING, what=self.what, reason=e.reason
                )
                continue
            self._last = (time.monotonic(), time.time())


def new_holder() -> str:
    """Name this process as a lock holder: host, pid and a random tag."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def describe_holder(holder: str) -> str:
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    return f"process {pid} on {host}" if pid else holder


def is_dead_here(holder: str) -> bool:
    """Tell whether a holder is a process on this machine that no longer exists."""
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class RunLock:
    """Hold the run lock for a ``with`` block; its ``keeper`` keeps the lease alive."""

    def __init__(
        self,
        store: Store,
        *,
        clock: Callable[[], datetime],
        holder: str | None = None,
        ttl: timedelta = DEFAULT_TTL,
        wait_seconds: float = 0.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.store = store
        self.clock = clock
        self.holder = holder or new_holder()
        self.ttl = ttl
        self.wait_seconds = wait_seconds
        self.sleep = sleep
        self.keeper = Keeper(self._renew, lease=ttl, what="run lock")

    def __enter__(self) -> RunLock:
        deadline = time.monotonic() + self.wait_seconds
        while True:
            current = self.store.acquire_lock(RUN_LOCK, self.holder, now=self.clock(), ttl=self.ttl)
            if current is not None and is_dead_here(current):
                current = self.store.acquire_lock(
                    RUN_LOCK, self.holder, now=self.clock(), ttl=self.ttl, steal_from=current
                )
            if current is None:
                self.keeper.__enter__()
                return self
            if time.monotonic() >= deadline:
                raise RunInProgress(current)
            self.sleep(min(5.0, max(0.1, deadline - time.monotonic())))

    def __exit__(self, *exc: object) -> None:
        self.keeper.__exit__()
        self.store.release_lock(RUN_LOCK, self.holder)

    def holds(self) -> bool:
        """Whether the lock is surely still this process's (``Keeper.holds``)."""
        return self.keeper.holds()

    def _renew(self) -> bool:
        return self.store.renew_lock(RUN_LOCK, self.holder, now=self.clock(), ttl=self.ttl)
