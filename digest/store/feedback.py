"""Readers' feedback on papers, the feature spaces, and the readers' models (stored
as bytes: the numbers are ``digest.select.learned``'s)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from digest.identity import paper_key
from digest.models import Feedback, StoredEntry
from digest.store.base import StoreBase, aware, chunks, inserted_id
from digest.store.entries import stored_entry
from digest.store.events import emit
from digest.store.schema import entries, feature_spaces, feedback, reader_models, subscribers


class FeedbackMixin(StoreBase):
    def set_feedback(
        self,
        subscriber_id: int,
        paper: str,
        *,
        vote: int,
        kind: str,
        now: datetime,
        weight: float = 1.0,
    ) -> bool:
        """Record a reader's vote on a paper, replacing any earlier one (0 clears it).

        Returns whether anything changed: the same vote twice is one vote.
        """
        now = now.astimezone(UTC)
        values = {"vote": vote, "kind": kind, "weight": weight, "updated_at": now}
        where = (feedback.c.subscriber_id == subscriber_id) & (feedback.c.paper == paper)
        with self._transaction() as conn:
            row = conn.execute(select(feedback.c.vote, feedback.c.weight).where(where)).first()
            if vote == 0:
                return bool(conn.execute(feedback.delete().where(where)).rowcount)
            told = {"reader_id": subscriber_id, "paper": paper, "vote": vote, "kind": kind}
            if row is None:
                try:
                    with conn.begin_nested():  # a double click may have inserted it meanwhile
                        conn.execute(
                            feedback.insert().values(
                                subscriber_id=subscriber_id, paper=paper, **values
                            )
                        )
                    emit(conn, "feedback.recorded", told, now=now)
                    return True
                except IntegrityError:  # then this vote replaces that one
                    pass
            elif (row.vote, row.weight) == (vote, weight):
                return False
            conn.execute(feedback.update().where(where).values(values))
            emit(conn, "feedback.recorded", told, now=now)
            return True

    def feedback_of(
        self, subscriber_ids: Sequence[int], *, paper: str | None = None
    ) -> dict[int, list[Feedback]]:
        """Each reader's feedback, oldest first (on one paper only, when ``paper`` is given)."""
        found: dict[int, list[Feedback]] = {i: [] for i in subscriber_ids}
        with self._transaction() as conn:
            for chunk in chunks(sorted(set(subscriber_ids))):
                query = (
                    select(feedback)
                    .where(feedback.c.subscriber_id.in_(chunk))
                    .order_by(feedback.c.updated_at, feedback.c.id)
                )
                if paper is not None:
                    query = query.where(feedback.c.paper == paper)
                for row in conn.execute(query):
                    found[row.subscriber_id].append(_feedback(row))
        return found

    def readers_to_fit(self, space_version: int) -> list[tuple[int, datetime]]:
        """Readers whose feedback or topics changed since their model was fitted (or who
        have none, or one over another feature space), with the time of their latest
        feedback."""
        latest = (
            select(feedback.c.subscriber_id, func.max(feedback.c.updated_at).label("at"))
            .group_by(feedback.c.subscriber_id)
            .subquery()
        )
        query = (
            select(latest.c.subscriber_id, latest.c.at)
            .select_from(
                latest.outerjoin(
                    reader_models, reader_models.c.subscriber_id == latest.c.subscriber_id
                ).join(subscribers, subscribers.c.id == latest.c.subscriber_id)
            )
            .where(
                (reader_models.c.subscriber_id.is_(None))
                | (reader_models.c.space_version != space_version)
                | (reader_models.c.feedback_at < latest.c.at)
                # A model per topic: new topics need their own.
                | (reader_models.c.fitted_at < subscribers.c.updated_at)
            )
            .order_by(latest.c.subscriber_id)
        )
        with self._transaction() as conn:
            return [(row.subscriber_id, aware(row.at)) for row in conn.execute(query)]

    def entries_named(self, papers: Sequence[str]) -> dict[str, StoredEntry]:
        """The stored entries that papers named by identity refer to (by arXiv id or by
        normalised title); a name with no stored paper yet is left out."""
        keys = [(paper_key(p), p) for p in papers]
        ids = {key.value: p for key, p in keys if key.kind == "arxiv"}
        titles = {key.value: p for key, p in keys if key.kind == "title"}
        found: dict[str, StoredEntry] = {}
        with self._transaction() as conn:
            for chunk in chunks(sorted(ids)):
                for row in conn.execute(select(entries).where(entries.c.arxiv_id.in_(chunk))):
                    found[ids[row.arxiv_id]] = stored_entry(row)
            for chunk in chunks(sorted(titles)):
                for row in conn.execute(select(entries).where(entries.c.title_key.in_(chunk))):
                    found.setdefault(titles[row.title_key], stored_entry(row))
        return found

    def sample_entries(self, count: int) -> list[StoredEntry]:
        """Up to ``count`` stored papers picked at random (the weak negatives)."""
        query = select(entries).order_by(func.random()).limit(count)
        with self._transaction() as conn:
            return [stored_entry(row) for row in conn.execute(query)]

    def recent_entries(self, count: int) -> list[StoredEntry]:
        """The ``count`` papers first seen last (the corpus of a feature space)."""
        query = select(entries).order_by(entries.c.first_seen.desc(), entries.c.id.desc())
        with self._transaction() as conn:
            return [stored_entry(row) for row in conn.execute(query.limit(count))]

    def latest_feature_space(self) -> tuple[int, int, bytes] | None:
        """The newest feature space: (version, papers it was fitted on, its bytes)."""
        query = select(feature_spaces).order_by(feature_spaces.c.version.desc()).limit(1)
        with self._transaction() as conn:
            row = conn.execute(query).first()
        return (row.version, row.papers, bytes(row.data)) if row is not None else None

    def add_feature_space(self, data: bytes, *, papers: int, now: datetime) -> int:
        """Keep a new feature space; return its version."""
        with self._transaction() as conn:
            result = conn.execute(
                feature_spaces.insert().values(
                    fitted_at=now.astimezone(UTC), papers=papers, data=data
                )
            )
            return inserted_id(result)

    def save_models(
        self, models: Sequence[tuple[int, int, datetime, bytes | None]], *, now: datetime
    ) -> None:
        """Keep readers' models: (reader, space version, feedback time, bytes or None to drop)."""
        with self._transaction() as conn:
            for subscriber_id, version, feedback_at, data in models:
                conn.execute(
                    reader_models.delete().where(reader_models.c.subscriber_id == subscriber_id)
                )
                conn.execute(
                    reader_models.insert().values(
                        subscriber_id=subscriber_id,
                        space_version=version,
                        feedback_at=feedback_at.astimezone(UTC),
                        fitted_at=now.astimezone(UTC),
                        data=data or b"",
                    )
                )

    def readers_with_models(self, space_version: int) -> frozenset[int]:
        """Who has a model over this feature space (ids only: a few bytes a reader)."""
        query = select(reader_models.c.subscriber_id).where(
            reader_models.c.space_version == space_version, reader_models.c.data != b""
        )
        with self._transaction() as conn:
            return frozenset(conn.scalars(query))

    def models_of(self, subscriber_ids: Sequence[int], space_version: int) -> dict[int, bytes]:
        """The stored models of these readers over this feature space."""
        found: dict[int, bytes] = {}
        with self._transaction() as conn:
            for chunk in chunks(sorted(set(subscriber_ids))):
                query = select(reader_models.c.subscriber_id, reader_models.c.data).where(
                    reader_models.c.subscriber_id.in_(chunk),
                    reader_models.c.space_version == space_version,
                )
                found.update(
                    {row.subscriber_id: bytes(row.data) for row in conn.execute(query) if row.data}
                )
        return found


def _feedback(row: Any) -> Feedback:
    return Feedback(
        subscriber_id=row.subscriber_id,
        paper=row.paper,
        vote=row.vote,
        kind=row.kind,
        updated_at=aware(row.updated_at),
        weight=row.weight,
    )
