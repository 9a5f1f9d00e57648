"""Token buckets for each relay's quotas, shared by every run and sender process."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from sqlalchemy import select, text

from digest.errors import StorageError
from digest.store.base import StoreBase, aware
from digest.store.schema import rate_buckets

#: How long a sender waits for another's lock on the buckets before it counts that as a
#: short wait (the other may be paused, holding it), and how long that wait is.
LOCK_WAIT_SECONDS = 1.0
BUSY_SECONDS = 0.05

#: One bucket as the rule sees it: (messages, per seconds, tokens left, seconds since).
Bucket = tuple[float, float, float, float]
#: The rule (``digest.deliver.quotas``): the buckets after one message, and how long to
#: wait first (0: it may go now, and the tokens are spent).
BucketRule = Callable[[Sequence[Bucket]], tuple[list[float], float]]


class QuotasMixin(StoreBase):
    def spend_token(
        self,
        relay: str,
        limits: Sequence[tuple[float, float]],
        rule: BucketRule,
        *,
        now: datetime,
    ) -> float:
        """Spend one token of each of a relay's buckets, as ``rule`` says, in one
        transaction (rows locked on PostgreSQL); return how long to wait instead (0:
        spent)."""
        for attempt in range(3):
            try:
                return self._spend(relay, limits, rule, now.astimezone(UTC))
            except StorageError as e:
                if "lock timeout" in e.message or "lock_timeout" in e.message:
                    # Another sender holds the buckets (it may be paused mid-count): try
                    # again shortly, as a wait, rather than hang behind it.
                    return BUSY_SECONDS
                # Two senders made the same new bucket at once: the other's row is there now.
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _spend(
        self,
        relay: str,
        limits: Sequence[tuple[float, float]],
        rule: BucketRule,
        now: datetime,
    ) -> float:
        with self._transaction() as conn:
            query = select(rate_buckets).where(rate_buckets.c.relay == relay)
            if self.dialect == "postgresql":
                conn.execute(text(f"SET LOCAL lock_timeout = '{int(LOCK_WAIT_SECONDS * 1000)}ms'"))
                query = query.with_for_update()
            stored = {(r.messages, r.per_seconds): r for r in conn.execute(query)}
            # A sender that read the clock before waiting for the rows' lock must not
            # move a bucket's count back in time (that would refill it twice).
            counted = max([now, *(aware(r.counted_at) for r in stored.values())])
            buckets = []
            for messages, seconds in limits:
                row = stored.get((messages, seconds))
                tokens = row.tokens if row is not None else max(1.0, messages)
                since = (counted - aware(row.counted_at)).total_seconds() if row else 0.0
                buckets.append((messages, seconds, tokens, since))
            tokens, wait = rule(buckets)
            for (messages, seconds), left in zip(limits, tokens, strict=True):
                values = {"tokens": left, "counted_at": counted}
                key = {"relay": relay, "messages": messages, "per_seconds": seconds}
                if (messages, seconds) in stored:
                    conn.execute(
                        rate_buckets.update()
                        .where(*(rate_buckets.c[k] == v for k, v in key.items()))
                        .values(values)
                    )
                else:
                    conn.execute(rate_buckets.insert().values(key | values))
        return wait
