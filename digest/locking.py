"""One run at a time, across processes and machines: a lease held in the database.

The lease is renewed while the run works, so a run on a machine that died
frees it after ``ttl``; a holder on this machine whose process is gone is
taken over at once, so a rerun right after a crash or kill need not wait.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from digest.errors import DigestError
from digest.store import Store

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
    """Hold the run lock for a ``with`` block; ``heartbeat()`` keeps the lease alive."""

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
        self._renewed = 0.0

    def __enter__(self) -> RunLock:
        deadline = time.monotonic() + self.wait_seconds
        while True:
            current = self.store.acquire_lock(RUN_LOCK, self.holder, now=self.clock(), ttl=self.ttl)
            if current is not None and is_dead_here(current):
                current = self.store.acquire_lock(
                    RUN_LOCK, self.holder, now=self.clock(), ttl=self.ttl, steal_from=current
                )
            if current is None:
                self._renewed = time.monotonic()
                return self
            if time.monotonic() >= deadline:
                raise RunInProgress(current)
            self.sleep(min(5.0, max(0.1, deadline - time.monotonic())))

    def __exit__(self, *exc: object) -> None:
        self.store.release_lock(RUN_LOCK, self.holder)

    def heartbeat(self) -> bool:
        """Renew the lease when a third of it has passed; False if the lock was lost."""
        if time.monotonic() - self._renewed < self.ttl.total_seconds() / 3:
            return True
        self._renewed = time.monotonic()
        return self.store.renew_lock(RUN_LOCK, self.holder, now=self.clock(), ttl=self.ttl)
