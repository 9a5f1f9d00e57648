"""Learning v2: exploration cards, a model per interest, followed authors, guided start."""

from __future__ import annotations

import random
from datetime import timedelta

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from digest import learning
from digest.app import accounts, tryouts
from digest.config import LearningSettings
from digest.identity import author_key
from digest.ingest.dedupe import dedupe
from digest.models import Entry, Follow, StoredEntry, Topic
from digest.select.affinity import EditionVectors, affinity_of
from digest.select.explore import exploration_picks, interleaved, starter_picks, uncertainty
from digest.select.index import EXPLORE_AFTER, EXPLORE_NOTE, FOLLOWED, EditionIndex
from digest.select.learned import (
    PaperVectors,
    Profile,
    ReaderModels,
    fit_reader,
    fit_space,
)
from digest.store import Store
from digest.subscribers import check_input
from digest.subscriptions import Choices

from .conftest import NOW, THEMES, make_settings, subscribe
from .test_learning import WORDS, day_of_papers, paper


def _stored(entries: list[Entry]) -> list[StoredEntry]:
    return [StoredEntry(n + 1, e, "feed", NOW) for n, e in enumerate(entries)]


def _space_and_papers(entries: list[Entry]) -> tuple[object, PaperVectors]:
    space = fit_space(entries, version=1)
    return space, PaperVectors.of(space.vectors(entries))


# -- the pure pieces


@given(st.lists(st.lists(st.integers(0, 30), max_size=12), max_size=5))
def test_interleaving_keeps_every_paper_once_and_each_rankings_best_first(
    orders: list[list[int]],
) -> None:
    merged = interleaved(orders)
    assert len(merged) == len(set(merged)) == len({p for o in orders for p in o})
    for order in orders:
        if order:  # each ranking's best is among the first len(orders) taken
            assert order[0] in merged[: len(orders) * (1 + len(order))]
    # the first round takes each ranking's best
    firsts = [o[0] for o in orders if o]
    assert set(merged[: len(set(firsts))]) <= set(firsts) | set(merged[: len(firsts)])


PAPERS = day_of_papers(3, per_topic=6)
SPACE, VECTORS = _space_and_papers(PAPERS)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(-8, 8), min_size=len(PAPERS), max_size=len(PAPERS)),
    st.integers(0, 6),
    st.sets(st.integers(0, len(PAPERS) - 1)),
)
def test_exploration_asks_only_about_unsure_papers_not_in_the_email(
    scores: list[float], count: int, excluded: set[int]
) -> None:
    values = np.array(scores, dtype=np.float32)
    picks = exploration_picks(values, VECTORS, None, count=count, excluded=excluded)
    assert len(picks) == len(set(picks)) <= count
    assert not set(picks) & excluded
    doubt = uncertainty(values)
    assert all(doubt[p] >= 0.4 - 1e-9 for p in picks)


def test_a_sure_model_asks_nothing_and_an_unsure_one_asks_about_different_papers() -> None:
    sure = np.where(np.arange(len(PAPERS)) % 2 == 0, 9.0, -9.0).astype(np.float32)
    assert exploration_picks(sure, VECTORS, None, count=2) == []
    unsure = np.zeros(len(PAPERS), dtype=np.float32)
    first, second = exploration_picks(unsure, VECTORS, None, count=2)
    topic_of = {n: next(t for t in WORDS if t in e.title) for n, e in enumerate(PAPERS)}
    assert topic_of[first] != topic_of[second]  # kept unlike each other


def test_exploration_looks_away_from_what_the_reader_voted_on() -> None:
    voted_on = [n for n, e in enumerate(PAPERS) if "optimization" in e.title]
    voted = Profile.of(SPACE.vectors([PAPERS[n] for n in voted_on]))
    unsure = np.zeros(len(PAPERS), dtype=np.float32)
    picks = exploration_picks(unsure, VECTORS, voted, count=3)
    assert picks and not set(picks) & set(voted_on)


def test_a_guided_start_spreads_over_the_topics_and_holds_no_paper_twice() -> None:
    groups = [
        [n for n, e in enumerate(PAPERS) if topic in e.title] for topic in ("speech", "fairness")
    ]
    picks = starter_picks(VECTORS, groups, None, 6)
    assert len(picks) == len(set(picks)) == 6
    assert picks[0] in groups[0] and picks[1] in groups[1]


def test_a_bundle_of_models_round_trips_and_a_bare_model_still_loads() -> None:
    rng = random.Random(4)
    liked = SPACE.vectors([paper("speech", 500 + n, rng) for n in range(3)])
    disliked = SPACE.vectors([paper("fairness", 600, rng)])
    background = SPACE.vectors(PAPERS[:10])
    model = fit_reader(SPACE, liked, disliked, background)
    assert model is not None
    bundle = ReaderModels(model, {"speech OR audio": model}, Profile.of(liked))
    again = ReaderModels.load(1, bundle.dump())
    assert set(again.interests) == {"speech OR audio"}
    assert np.allclose(again.overall.scores(VECTORS), model.scores(VECTORS))
    assert again.voted is not None and np.allclose(again.voted.weights, bundle.voted.weights)
    old = ReaderModels.load(1, model.dump())  # stored before bundles
    assert old.interests == {} and old.voted is None
    assert np.allclose(old.overall.scores(VECTORS), model.scores(VECTORS))


@given(st.text(max_size=60))
def test_an_authors_key_ignores_case_accents_and_dots(name: str) -> None:
    key = author_key(name)
    assert key == author_key(name.upper().lower()) or not name.isascii()
    assert key == author_key(f"  {name}  ")
    assert "\n" not in key and len(key) <= 200


def test_spellings_of_one_author_are_one_key() -> None:
    assert author_key("José  García") == author_key("jose garcia") == author_key("JOSÉ GARCÍA")
    assert author_key("J. Doe") == author_key("j doe") != author_key("Jane Doe")


# -- what selection does with them


def _affinity(entries: list[StoredEntry], explore: int, topics: tuple[Topic, ...] = ()):
    space = fit_space([s.entry for s in entries], version=1)
    rng = random.Random(2)
    liked = space.vectors([paper("speech", 700 + n, rng) for n in range(3)])
    model = fit_reader(space, liked, space.vectors([]), space.vectors([s.entry for s in entries]))
    assert model is not None
    models = ReaderModels(model, {}, Profile.of(liked))
    return affinity_of(
        models,
        EditionVectors.of(space, entries),
        topics=topics,
        learning=LearningSettings(explore_cards=explore),
    )


def test_exploration_cards_come_within_the_first_ten_and_say_why() -> None:
    entries = _stored(day_of_papers(5, per_topic=8))
    topics = (Topic("speech OR spectrogram", "Speech"), Topic("fairness", "Fairness"))
    with EditionIndex(entries) as index:
        asked = index.select(topics, max_entries=30, affinity=_affinity(entries, 2, topics))
        quiet = index.select(topics, max_entries=30, affinity=_affinity(entries, 0, topics))
    cards = [m for s in asked.sections for m in s.matches]
    noted = [n for n, m in enumerate(cards) if m.note == EXPLORE_NOTE]
    assert noted and all(n < EXPLORE_AFTER + 2 for n in noted)
    assert len({m.entry.id for m in cards}) == len(cards)  # never a paper twice
    assert not any(m.note for s in quiet.sections for m in s.matches)


def test_no_email_only_to_ask_and_the_cards_count_for_no_threshold() -> None:
    entries = _stored(day_of_papers(5, per_topic=8))
    affinity = _affinity(entries, 1)
    with EditionIndex(entries) as index:
        nothing = index.select([Topic("unmatched")], max_entries=30, affinity=affinity)
        some = index.select([Topic("fairness")], max_entries=30, affinity=affinity)
    assert nothing.is_empty and nothing.asked == 0
    assert some.asked == 1 and some.matched == some.count - 1


def test_a_followed_authors_paper_is_always_in_the_email_first_and_marked() -> None:
    entries = day_of_papers(6)
    entries[-1] = Entry(
        title="A paper about nothing she typed",
        abstract="Unrelated words entirely.",
        authors=("Grace B. Hopper", "Someone Else"),
        arxiv_id="2611.99999",
    )
    stored = _stored(entries)
    follows = (Follow("Grace B Hopper", author_key("Grace B. Hopper")),)
    with EditionIndex(stored) as index:
        selection = index.select([Topic("fairness")], max_entries=1, follows=follows)
    first = selection.sections[0]
    assert first.label == FOLLOWED
    assert [m.entry.entry.title for m in first.matches] == ["A paper about nothing she typed"]
    assert first.matches[0].note == "You follow Grace B Hopper"


# -- the stages


def test_a_reader_with_two_topics_gets_a_model_for_each_that_has_votes(store: Store) -> None:
    reader, _ = subscribe(
        store,
        check_input(
            "ada@example.org", topics=["Speech: speech", "Fairness: fairness"], themes=THEMES
        ),
    )
    store.add_entries(day_of_papers(7), decide=dedupe, source="feed", now=NOW)
    for stored in store.list_entries():
        title = stored.entry.title
        vote = 1 if "speech" in title or "fairness" in title else -1
        store.set_feedback(reader.id, stored.entry.fingerprint, vote=vote, kind="vote", now=NOW)
    report = learning.refresh(store, now=NOW)
    assert report.fitted == 1
    space = learning.current_space(store)
    assert space is not None
    stored_models = store.models_of([reader.id], space.version)[reader.id]
    models = ReaderModels.load(space.version, stored_models)
    assert set(models.interests) == {"speech", "fairness"}
    assert models.voted is not None
    # New topics need models of their own: the next refresh refits the reader.
    assert learning.refresh(store, now=NOW).fitted == 0
    choices = Choices((Topic("speech"), Topic("optimization")), "light", None, False)
    accounts.choose(store, reader.id, choices, now=NOW + timedelta(hours=1))
    assert learning.refresh(store, now=NOW + timedelta(hours=2)).fitted == 1
    again = ReaderModels.load(space.version, store.models_of([reader.id], space.version)[reader.id])
    assert set(again.interests) == {"speech"}  # no positive vote on optimization yet


def test_a_guided_start_offers_unrated_papers_over_the_readers_topics(
    store: Store, tmp_path
) -> None:
    settings_ = make_settings(tmp_path, None)
    reader, _ = subscribe(
        store, check_input("ada@example.org", topics=["speech", "fairness"], themes=THEMES)
    )
    store.add_entries(day_of_papers(8), decide=dedupe, source="feed", now=NOW)
    offered = tryouts.starter(store, settings_, reader)
    assert len(offered) == tryouts.STARTER_PAPERS == len({s.id for s in offered})
    titles = [s.entry.title for s in offered]
    assert "speech" in titles[0] and "fairness" in titles[1]
    accounts.vote(store, reader.id, offered[0].entry.fingerprint, 1, now=NOW)
    again = tryouts.starter(store, settings_, reader)
    assert offered[0].id not in {s.id for s in again}


def test_follows_are_one_per_author_whatever_the_spelling(any_store: Store) -> None:
    store = any_store
    reader, _ = subscribe(store, check_input("ada@example.org", themes=THEMES))
    later = NOW + timedelta(minutes=1)
    assert accounts.follow(store, reader.id, "José García", paper="arxiv:2611.00001", now=NOW)
    assert not accounts.follow(store, reader.id, "jose  garcia", paper=None, now=later)
    assert [f.author for f in store.follows_of([reader.id])[reader.id]] == ["José García"]
    assert store.readers_following() == {reader.id}
    assert accounts.unfollow(store, reader.id, "JOSÉ GARCÍA")
    assert store.follows_of([reader.id])[reader.id] == ()
