"""Dedupe as a pure decision: which entries are new, which fill in a known paper."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from digest.ingest.dedupe import dedupe
from digest.models import Entry


def test_seen_by_id_by_title_and_filled_in() -> None:
    batch = [
        Entry(title="Known By Id", arxiv_id="2611.00001"),
        Entry(title="KNOWN by title"),
        Entry(
            title="Known Without Id", arxiv_id="2611.00003", url="https://arxiv.org/abs/2611.00003"
        ),
        Entry(title="Brand New"),
        Entry(title="brand  new", arxiv_id="2611.00009"),  # the same paper, later with an id
    ]
    known_ids = {"2611.00001": 1}
    known_titles = {"known by title": (2, "2611.00002"), "known without id": (3, None)}
    decided = dedupe(batch, known_ids, known_titles)
    assert [e.title for e in decided.fresh] == ["Brand New"]
    assert decided.fresh[0].arxiv_id == "2611.00009"  # filled in from its twin in the batch
    assert decided.seen == 4
    assert [e.arxiv_id for e in decided.enrich[3]] == ["2611.00003"]


def test_two_papers_with_one_title_but_two_ids_stay_two() -> None:
    batch = [
        Entry(title="Survey", arxiv_id="2611.00001"),
        Entry(title="Survey", arxiv_id="2611.00002"),
    ]
    assert len(dedupe(batch, {}, {}).fresh) == 2


_TITLES = st.sampled_from(["A Paper", "a paper", "A  PAPER", "Other", "Third One"])
_IDS = st.one_of(st.none(), st.sampled_from(["2611.00001", "2611.00002"]))
_BATCHES = st.lists(st.builds(lambda t, i: Entry(title=t, arxiv_id=i), _TITLES, _IDS), max_size=12)


@given(_BATCHES)
def test_every_entry_is_new_or_seen_once_and_a_second_pass_finds_nothing_new(
    batch: list[Entry],
) -> None:
    first = dedupe(batch, {}, {})
    assert len(first.fresh) + first.seen == len(batch)
    assert len({e.fingerprint for e in first.fresh}) == len(first.fresh)
    by_id = {e.arxiv_id: n for n, e in enumerate(first.fresh) if e.arxiv_id}
    by_title: dict[str, tuple[int, str | None]] = {}
    for n, e in enumerate(first.fresh):
        by_title.setdefault(e.title_key, (n, e.arxiv_id))
    again = dedupe(batch, by_id, by_title)
    assert again.fresh == () and again.seen == len(batch)
