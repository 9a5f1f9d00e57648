"""What every edition's send in one run shares."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from digest.config import DeliverySettings
from digest.deliver.compose import Composer
from digest.deliver.report import Clock, DeliveryReport, Sleep
from digest.deliver.transports import Transport
from digest.locking import Keeper
from digest.store import Store


@dataclass(frozen=True)
class SendContext:
    """What every edition's send in one run shares: the store and the settings, the
    mail servers, the clock, and who this sender is."""

    store: Store
    composer: Composer
    delivery: DeliverySettings
    transports: Sequence[Transport]
    clock: Clock
    report: DeliveryReport
    holder: str = "digest"
    #: The only sender of the queue (under the run lock, as on SQLite).
    exclusive: bool = True
    sleep: Sleep = time.sleep
    should_stop: Callable[[], bool] = lambda: False
    #: Leases that must be held for a message to go (the run lock, when held).
    keepers: Sequence[Keeper] = field(default_factory=tuple)
    #: The relay these transports reach (host:port), whose limits the sends keep.
    relay: str = ""
