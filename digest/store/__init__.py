"""The one package that owns the SQL, one module per domain over one schema.

Storage makes no product decisions: where one is needed inside a
transaction (which entries are new, what consent allows), the caller passes
the pure rule in.  It goes through SQLAlchemy Core; backend-specific SQL
stays here.  Every SQLAlchemy error is wrapped in ``StorageError``.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

from digest.store.admins import Admin, AdminsMixin
from digest.store.api_tokens import ApiToken, ApiTokensMixin
from digest.store.claims import ClaimsMixin
from digest.store.deliveries import DeliveriesMixin
from digest.store.editions import EditionsMixin
from digest.store.entries import AddResult, EntriesMixin
from digest.store.events import EventsMixin, Outgoing, WebhookState
from digest.store.feedback import FeedbackMixin
from digest.store.follows import FollowsMixin
from digest.store.inbound import InboundMixin
from digest.store.locks import LocksMixin
from digest.store.quotas import QuotasMixin
from digest.store.runs import RunRecord, RunsMixin
from digest.store.schema import SCHEMA_REVISION, metadata
from digest.store.sources import SourceCheck, SourcesMixin
from digest.store.subscribers import Amended, SubscriberEvent, SubscriberRow, SubscribersMixin

__all__ = [
    "Admin",
    "SCHEMA_REVISION",
    "AddResult",
    "Amended",
    "Outgoing",
    "WebhookState",
    "ApiToken",
    "RunRecord",
    "SourceCheck",
    "Store",
    "SubscriberEvent",
    "SubscriberRow",
    "metadata",
]


class Store(
    EntriesMixin,
    EventsMixin,
    SubscribersMixin,
    EditionsMixin,
    DeliveriesMixin,
    ClaimsMixin,
    LocksMixin,
    QuotasMixin,
    RunsMixin,
    FeedbackMixin,
    FollowsMixin,
    InboundMixin,
    SourcesMixin,
    AdminsMixin,
    ApiTokensMixin,
):
    """Access to digest's database; open it with ``Store.open(url)``."""

    def snapshot(self) -> AbstractContextManager[Store]:
        """A throwaway copy of the database (see ``digest.store.snapshot``)."""
        from digest.store.snapshot import snapshot

        return snapshot(self)
