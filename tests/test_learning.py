"""Learning what each reader wants: votes, likes, the models, and what they change in a run."""

from __future__ import annotations

import email
import email.policy
import os
import random
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from digest import learning
from digest.app import accounts, job, tryouts
from digest.deliver.transports import OutboxTransport
from digest.ingest.dedupe import dedupe
from digest.likes import library, recency_weight, typed_likes
from digest.models import Entry
from digest.select.index import EXPLORE_NOTE, RECOMMENDED, EditionIndex
from digest.select.learned import FeatureSpace, PaperVectors, ReaderModel, fit_reader, fit_space
from digest.store import Store
from digest.subscribers import check_input
from digest.tokens import TokenError, feedback_token, read_feedback_token

from .conftest import DAY, NOW, THEMES, Clock, Sleeps, make_settings, run, subscribe

KEY = "k" * 32

# Three vocabularies, so that "like this" has a meaning a model can find.
WORDS = {
    "optimization": "convex optimization gradient descent convergence rate stochastic "
    "solver step size momentum nonconvex objective",
    "fairness": "fairness bias demographic parity protected group discrimination "
    "equalized odds audit disparate impact",
    "speech": "speech recognition acoustic model spectrogram phoneme utterance "
    "speaker waveform transcription audio",
}


def paper(topic: str, n: int, rng: random.Random, *, title_word: str = "") -> Entry:
    words = WORDS[topic].split()
    body = " ".join(rng.choice(words) for _ in range(40)) + f" {title_word.lower()}" * 5
    title = f"{title_word or rng.choice(words).title()} study {topic} number {n}"
    return Entry(
        title=title,
        abstract=f"We propose a method. {body}.",
        arxiv_id=f"2611.{hash((topic, n)) % 90000 + 10000:05d}",
    )


def day_of_papers(seed: int, per_topic: int = 8) -> list[Entry]:
    rng = random.Random(seed)
    return [paper(t, seed * 100 + n, rng) for t in WORDS for n in range(per_topic)]


# -- tokens


def test_a_feedback_token_names_one_reader_and_one_paper() -> None:
    token = feedback_token(KEY, 12, 345)
    assert read_feedback_token(KEY, token) == (12, 345)
    with pytest.raises(TokenError):
        read_feedback_token("another key" * 3, token)
    with pytest.raises(TokenError):
        read_feedback_token(KEY, token.replace("12.", "13.", 1))


@given(st.text(max_size=80))
def test_no_forged_feedback_token_is_taken(token: str) -> None:
    with pytest.raises(TokenError):
        read_feedback_token(KEY, token)


# -- likes


def test_typed_likes_take_ids_urls_and_dois_and_say_what_is_not_one() -> None:
    papers, problems = typed_likes(
        "2401.01234, https://arxiv.org/abs/1706.03762v3\n10.48550/arXiv.1512.03385 soup 2401.01234"
    )
    assert papers == ["arxiv:2401.01234", "arxiv:1706.03762", "arxiv:1512.03385"]
    assert problems == ["'soup' is not an arXiv id (such as 2401.01234)"]


BIBTEX = b"""@article{vaswani, title={Attention Is {All} You Need}, eprint={1706.03762},
  archivePrefix={arXiv}, year={2017}}
@inproceedings{he, title = "Deep Residual Learning", year = 2016,
  doi = {10.48550/arXiv.1512.03385}}
@book{old, title={A Book Without an Id}, year={2001}}
@misc{nothing, author={Nobody}}
@misc{broken, title={unclosed
"""

RIS = b"""TY  - JOUR
TI  - Rubato: Expressive Timing
PY  - 2026
UR  - https://arxiv.org/abs/2611.20118
ER  -\x20
TY  - CONF
T1  - A Paper Known by Title
ER  -\x20
"""


def test_a_bibtex_library_gives_ids_from_eprint_and_doi_and_titles_for_the_rest() -> None:
    papers, problems = library(BIBTEX)
    assert [p.paper for p in papers] == [
        "arxiv:1706.03762",
        "arxiv:1512.03385",
        "title:a book without an id",
    ]
    assert papers[0].title == "Attention Is All You Need" and papers[0].year == 2017
    assert problems == [
        "the entry at line 7 is not BibTeX digest can read; skipped",  # said, not dropped
        "entry 4: no title and no arXiv id; skipped",
    ]


def test_a_ris_library_gives_ids_from_urls_and_titles_for_the_rest() -> None:
    papers, problems = library(RIS)
    assert [p.paper for p in papers] == ["arxiv:2611.20118", "title:a paper known by title"]
    assert papers[0].year == 2026 and not problems


def test_older_liked_papers_count_less() -> None:
    assert recency_weight(2026, DAY) == 1.0
    assert recency_weight(2020, DAY) == pytest.approx(0.25)
    assert recency_weight(1950, DAY) == 0.2 and recency_weight(None, DAY) == 1.0


# -- the numbers


def test_a_model_ranks_what_a_reader_liked_above_the_rest_and_says_why() -> None:
    corpus = day_of_papers(1, per_topic=20)
    space = fit_space(corpus, version=1)
    liked = [e for e in corpus if "optimization" in e.title][:3]
    disliked = [e for e in corpus if "fairness" in e.title][:2]
    model = fit_reader(
        space, space.vectors(liked), space.vectors(disliked), space.vectors(corpus[::3])
    )
    assert model is not None
    fresh = day_of_papers(2)
    vectors = PaperVectors.of(space.vectors(fresh))
    scores = model.scores(vectors)
    best = [fresh[i].title for i in np.argsort(-scores)[:8]]
    assert all("optimization" in t for t in best), best
    worst = [fresh[i].title for i in np.argsort(scores)[:8]]
    assert all("fairness" in t for t in worst), worst
    top = int(np.argmax(scores))
    assert set(model.reasons(vectors, top, space)) <= set(WORDS["optimization"].split()) | {
        f"{a} {b}" for a in WORDS["optimization"].split() for b in WORDS["optimization"].split()
    }
    # It survives its own bytes (the database keeps no pickles).
    again = ReaderModel.load(1, model.dump())
    assert np.allclose(again.scores(vectors), scores)
    assert FeatureSpace.load(1, space.dump()).terms == space.terms
    assert fit_reader(space, space.vectors([]), space.vectors(disliked), vectors) is None


def test_vectors_are_unit_length_and_unknown_words_are_ignored() -> None:
    space = fit_space(day_of_papers(1), version=1)
    vectors = space.vectors([*day_of_papers(3), Entry(title="zzz qqq", abstract="")])
    norms = np.linalg.norm(vectors, axis=1)
    assert np.allclose(norms[:-1], 1.0, atol=1e-5) and norms[-1] == 0.0


# -- the store, both backends


def test_votes_are_idempotent_changeable_and_wake_a_refit(any_store: Store) -> None:
    reader, _ = accounts.add(any_store, check_input("ada@example.org", themes=THEMES), now=NOW)
    assert any_store.set_feedback(reader.id, "arxiv:2611.00001", vote=1, kind="vote", now=NOW)
    assert not any_store.set_feedback(reader.id, "arxiv:2611.00001", vote=1, kind="vote", now=NOW)
    assert any_store.set_feedback(reader.id, "arxiv:2611.00001", vote=-1, kind="vote", now=NOW)
    (mark,) = any_store.feedback_of([reader.id])[reader.id]
    assert (mark.vote, mark.paper) == (-1, "arxiv:2611.00001")
    assert any_store.readers_to_fit(1) == [(reader.id, NOW)]
    any_store.save_models([(reader.id, 1, NOW, b"model")], now=NOW)
    assert any_store.readers_to_fit(1) == [] and any_store.readers_to_fit(2) != []
    assert any_store.models_of([reader.id], 1) == {reader.id: b"model"}
    later = NOW + timedelta(minutes=1)
    any_store.set_feedback(reader.id, "arxiv:2611.00002", vote=1, kind="like", now=later)
    assert any_store.readers_to_fit(1) == [(reader.id, later)]
    assert any_store.set_feedback(reader.id, "arxiv:2611.00001", vote=0, kind="vote", now=later)
    assert [m.paper for m in any_store.feedback_of([reader.id])[reader.id]] == ["arxiv:2611.00002"]


def test_a_like_waits_for_its_paper(any_store: Store) -> None:
    reader, _ = accounts.add(any_store, check_input("ada@example.org", themes=THEMES), now=NOW)
    accounts.like(any_store, reader.id, ["arxiv:2611.00042"], now=NOW)
    assert any_store.entries_named(["arxiv:2611.00042"]) == {}
    any_store.add_entries(
        [Entry(title="Arrives later", arxiv_id="2611.00042")], decide=dedupe, source="feed", now=NOW
    )
    assert any_store.entries_named(["arxiv:2611.00042"])["arxiv:2611.00042"].entry.title == (
        "Arrives later"
    )


# -- a real run, two days


def _digest_text(folder: Path) -> str:
    (path,) = sorted(folder.glob("*.eml"))
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def _section(text: str, label: str) -> list[str]:
    """The titles of one section of a digest's text part, in order (not its exploration
    cards, which say so)."""
    part = text.split(f"== {label} ==", 1)[1].split("\n== ", 1)[0]
    cards = part.split("\n* ")[1:] if not part.startswith("* ") else part[2:].split("\n* ")
    return [card.splitlines()[0] for card in cards if EXPLORE_NOTE not in card]


def test_votes_change_the_next_days_digest(store: Store, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, None)
    reader, _ = subscribe(
        store, check_input("ada@example.org", topics=["Fairness: fairness"], themes=THEMES)
    )
    lending = paper("fairness", 1, random.Random(1), title_word="Lending")
    store.add_entries([*day_of_papers(1), lending], decide=dedupe, source="feed", now=NOW)
    run(store, settings, transport=OutboxTransport(tmp_path / "day1"))
    first = store.edition_entries(store.recent_editions(1)[0].id)
    # "More like this" on optimization papers (no topic of hers), "less" on a fairness
    # paper about lending.
    for stored in first:
        if "optimization" in stored.entry.title:
            store.set_feedback(reader.id, stored.entry.fingerprint, vote=1, kind="vote", now=NOW)
    store.set_feedback(reader.id, lending.fingerprint, vote=-1, kind="vote", now=NOW)

    rng = random.Random(5)
    second = [paper("optimization", 900 + n, rng) for n in range(4)]
    second += [paper("fairness", 950 + n, rng, title_word="Lending") for n in range(3)]
    second += [paper("fairness", 960 + n, rng, title_word="Parity") for n in range(3)]
    second += [paper("speech", 970 + n, rng) for n in range(4)]
    next_day = NOW + timedelta(days=1)
    store.add_entries(second, decide=dedupe, source="feed", now=next_day)
    # One of them she has already: imported from her library, it is never recommended.
    owned = second[0]
    store.set_feedback(reader.id, owned.fingerprint, vote=1, kind="library", now=NOW)
    report = job.run(
        store,
        settings,
        job.Runtime(
            now=Clock(next_day), transport=OutboxTransport(tmp_path / "day2"), sleep=Sleeps()
        ),
        job.RunOptions(day=next_day.date(), ingest_sources=False),
    )
    assert report.delivery.sent == 1
    text = _digest_text(tmp_path / "day2")
    recommended = _section(text, RECOMMENDED)
    assert recommended and all("optimization" in t for t in recommended), recommended
    assert not any(owned.title[:40] in t for t in recommended), recommended
    assert "Because: " in text.split(f"== {RECOMMENDED} ==", 1)[1]
    fairness = _section(text, "Fairness")
    assert not any("speech" in t for t in fairness)
    # Papers like the one she wanted less of move down in her topic, from bm25's order.
    edition = store.recent_editions(1)[0]
    with EditionIndex(store.edition_entries(edition.id)) as index:
        by_bm25 = [m.entry.entry.title for m in index.search("fairness")]

    def lending_place(titles: list[str]) -> float:
        return sum(n for n, t in enumerate(titles) if t.startswith("Lending")) / 3

    assert lending_place(fairness) > lending_place(by_bm25), (fairness, by_bm25)
    # The model is stored: another process (the preview command) ranks with it.
    env = {
        **os.environ,
        "DIGEST_DATABASE_URL": store.url,
        "SECRET_KEY": settings.secret_key,
        "DIGEST_CONFIG": str(tmp_path / "none.toml"),
    }
    (tmp_path / "none.toml").write_text("")
    shown = subprocess.run(
        [
            sys.executable,
            "-m",
            "digest",
            "preview",
            "--email",
            "ada@example.org",
            "--date",
            next_day.date().isoformat(),
            "--output",
            str(tmp_path / "preview.html"),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert shown.returncode == 0, shown.stderr
    preview_text = (tmp_path / "preview.txt").read_text()
    assert _section(preview_text, RECOMMENDED) == recommended
    assert learning.refresh(store, now=next_day).fitted == 0  # nothing changed since
    # `digest match --email` orders as her digest does, and says why.
    _, found = tryouts.match(
        store, settings, "study", since=NOW - timedelta(days=1), subscriber=reader
    )
    assert "optimization" in found[0].entry.entry.title and found[0].reason
    # Each row carries both numbers its order comes from: bm25 and how sure her model is.
    assert all(m.wanted is not None and 0 <= m.wanted <= 1 for m in found)
    _, plain = tryouts.match(store, settings, "study", since=NOW - timedelta(days=1))
    assert not any(m.reason for m in plain) and all(m.wanted is None for m in plain)
    assert [m.score for m in plain] == sorted((m.score for m in plain), reverse=True)


def test_a_library_title_with_a_control_character_costs_its_entry() -> None:
    bibtex = (
        b"@article{a, title={Good one}, year={2024}}\n"
        b"@article{b, title={Bad\x00one}, year={2024}}\n"
    )
    papers, problems = library(bibtex)
    assert [p.title for p in papers] == ["Good one"]
    assert any("control character" in p for p in problems)


def test_a_malformed_bibtex_entry_is_reported_by_its_line() -> None:
    bibtex = (
        b"@article{good, title={A good paper}, url={https://arxiv.org/abs/2304.06767v2}}\n"
        b"@article{bad, title={Broken {paper}, year=2020\n"
        b"@article{also, title={Another}, eprint={2401.01234}}\n"
    )
    papers, problems = library(bibtex)
    assert [p.paper for p in papers] == ["arxiv:2304.06767", "arxiv:2401.01234"]
    assert problems == ["the entry at line 2 is not BibTeX digest can read; skipped"]


def test_a_library_paper_named_by_its_arxiv_url_finds_a_paper_stored_by_title(
    store: Store,
) -> None:
    # A page dump gave the paper without its arXiv id: it is stored by its title.
    stored_title = "Segment Anything in Medical Images"
    store.add_entries([Entry(title=stored_title)], decide=dedupe, source="dump", now=NOW)
    reader, _ = subscribe(store, check_input("ada@example.org", themes=THEMES))
    bibtex = (
        b"@article{sam, title={Segment Anything in Medical Images},"
        b" url={https://arxiv.org/abs/2304.12306}}\n"
    )
    report = accounts.import_library(store, reader.id, bibtex, now=NOW)
    assert report.matched == 1
    (mark,) = store.feedback_of([reader.id])[reader.id]
    assert mark.paper == Entry(title=stored_title).fingerprint and mark.kind == "library"
