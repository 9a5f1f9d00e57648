"""Authors readers follow: by name as the feeds write it, keyed by ``digest.identity``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from digest.identity import author_key
from digest.models import Follow
from digest.store.base import StoreBase, chunks
from digest.store.schema import follows


class FollowsMixin(StoreBase):
    def follow_author(
        self, subscriber_id: int, author: str, *, paper: str | None, now: datetime
    ) -> bool:
        """A reader follows an author (whether they did not already)."""
        key = author_key(author)
        if not key:
            return False
        values = {
            "subscriber_id": subscriber_id,
            "author_key": key,
            "author": author,
            "paper": paper,
            "created_at": now.astimezone(UTC),
        }
        with self._transaction() as conn:
            try:
                with conn.begin_nested():
                    conn.execute(follows.insert().values(values))
            except IntegrityError:  # followed already (or a double click)
                return False
        return True

    def unfollow_author(self, subscriber_id: int, author: str) -> bool:
        """A reader stops following an author (whether they did)."""
        where = (follows.c.subscriber_id == subscriber_id) & (
            follows.c.author_key == author_key(author)
        )
        with self._transaction() as conn:
            return bool(conn.execute(follows.delete().where(where)).rowcount)

    def follows_of(self, subscriber_ids: Sequence[int]) -> dict[int, tuple[Follow, ...]]:
        """The authors each reader follows, in the order they followed them."""
        found: dict[int, list[Follow]] = {i: [] for i in subscriber_ids}
        with self._transaction() as conn:
            for chunk in chunks(sorted(set(subscriber_ids))):
                query = (
                    select(follows)
                    .where(follows.c.subscriber_id.in_(chunk))
                    .order_by(follows.c.created_at, follows.c.id)
                )
                for row in conn.execute(query):
                    found[row.subscriber_id].append(Follow(row.author, row.author_key, row.paper))
        return {reader: tuple(each) for reader, each in found.items()}

    def readers_following(self) -> frozenset[int]:
        """Every reader who follows an author (read once per run, as models are)."""
        with self._transaction() as conn:
            rows = conn.execute(select(follows.c.subscriber_id).distinct())
            return frozenset(row.subscriber_id for row in rows)
