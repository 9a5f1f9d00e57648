"""Identity: the fingerprint decides which papers are the same paper."""

from __future__ import annotations

import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from digest.identity import arxiv_id_from, fingerprint, title_key

titles = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    min_size=1,
    max_size=120,
)
words = st.lists(st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=8), min_size=1)


def test_fingerprint_prefers_the_arxiv_id_without_version() -> None:
    assert fingerprint("Any title", "2606.13677v3") == "arxiv:2606.13677"
    assert fingerprint("Any title", "2606.13677") == fingerprint("Other title", "2606.13677v1")


def test_fingerprint_falls_back_to_the_normalised_title() -> None:
    assert fingerprint("Attention Is All You Need") == "title:attention is all you need"


def test_cosmetic_title_differences_are_the_same_paper() -> None:
    base = title_key("LLM-based Agents: a “Survey” on $\\alpha$-Optimization")
    assert title_key('llm\u2013based   agents: a "survey" on \\alpha-optimization') == base
    assert (
        title_key("LLM \u2014 based Agents: a \u201cSurvey\u201d on $\\alpha$--Optimization")
        == base
    )
    assert (
        title_key("ＬＬＭ-based Agents: a “Survey” on $\\alpha$-Optimization") == base
    )  # fullwidth


def test_titles_that_only_start_alike_differ() -> None:
    assert title_key("Scaling Laws for Neural Language Models") != title_key(
        "Scaling Laws for Neural Language Models of Code"
    )


def test_arxiv_ids_are_found_only_in_arxiv_looking_text() -> None:
    assert arxiv_id_from("oai:arXiv.org:2609.26811v1") == "2609.26811"
    assert arxiv_id_from("http://arxiv.org/abs/2606.13677v1") == "2606.13677"
    assert arxiv_id_from("https://huggingface.co/papers/2606.00467") == "2606.00467"
    assert arxiv_id_from("2606.00467") == "2606.00467"
    assert arxiv_id_from("http://arxiv.org/abs/hep-th/9901001v2") == "hep-th/9901001"
    assert arxiv_id_from("https://example.org/post/2606.00467") is None
    assert arxiv_id_from(None) is None


@given(titles)
def test_title_key_is_idempotent(title: str) -> None:
    assert title_key(title_key(title)) == title_key(title)


@given(words, st.sampled_from([" ", "  ", "\t", " \n "]), st.booleans())
def test_case_and_spacing_never_change_identity(parts: list[str], gap: str, upper: bool) -> None:
    title = " ".join(parts)
    variant = gap.join(p.upper() if upper else p.title() for p in parts)
    assert fingerprint(title) == fingerprint(variant)


@given(words, st.sampled_from(["-", "\u2010", "\u2013", "\u2014", "\u2212", " - ", "--"]))
def test_dash_styles_never_change_identity(parts: list[str], dash: str) -> None:
    assert title_key("-".join(parts)) == title_key(dash.join(parts))


@given(titles)
def test_unicode_normal_forms_are_one_paper(title: str) -> None:
    assert title_key(unicodedata.normalize("NFD", title)) == title_key(
        unicodedata.normalize("NFC", title)
    )


@given(words, words)
def test_a_longer_title_is_another_paper(head: list[str], tail: list[str]) -> None:
    title = " ".join(head)
    longer = title + " " + " ".join(tail)
    assert fingerprint(title) != fingerprint(longer)


@given(st.integers(1000, 9999), st.integers(1, 99999), st.integers(1, 20))
def test_versions_of_one_id_are_one_paper(prefix: int, number: int, version: int) -> None:
    arxiv_id = f"{prefix}.{number:05d}"
    assert fingerprint("x", f"{arxiv_id}v{version}") == fingerprint("y", arxiv_id)
