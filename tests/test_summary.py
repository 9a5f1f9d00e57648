"""The TL;DR of a paper whose source wrote none: one sentence, the abstract's own."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from digest.render.summary import one_sentence, sentences


def test_the_sentence_saying_what_is_new_wins_over_the_background() -> None:
    abstract = (
        "Large language models have transformed natural language processing. "
        "However, they remain expensive to fine-tune on small devices. "
        "We propose LoRA-Lite, a method that trains 0.1% of the weights. "
        "Experiments on GLUE show gains of 2.3 points."
    )
    assert one_sentence(abstract, "LoRA-Lite: cheap fine-tuning") == (
        "We propose LoRA-Lite, a method that trains 0.1% of the weights."
    )


def test_a_lead_in_is_dropped_and_the_sentence_starts_with_a_capital() -> None:
    abstract = (
        "Retrieval is slow on long documents. "
        "To address this problem, we introduce a hierarchical index over passages."
    )
    assert one_sentence(abstract) == "We introduce a hierarchical index over passages."


def test_a_finding_is_chosen_when_nothing_is_proposed() -> None:
    abstract = (
        "Benchmarks are saturating quickly. Scores rise every month. "
        "We show that half of the gains vanish under paraphrased prompts."
    )
    assert one_sentence(abstract).startswith("We show that half")


def test_abbreviations_initials_and_decimals_do_not_end_a_sentence() -> None:
    text = (
        "We follow Smith et al. and use e.g. the method of J. Doe with 3.5 times the data. "
        "It works (see Fig. 2). Next sentence here."
    )
    assert sentences(text) == [
        "We follow Smith et al. and use e.g. the method of J. Doe with 3.5 times the data.",
        "It works (see Fig. 2).",
        "Next sentence here.",
    ]


def test_a_title_shared_with_a_sentence_makes_it_more_telling() -> None:
    abstract = (
        "Many systems exist for this. "
        "Sparse attention reduces memory use in long-context transformers by a large factor. "
        "Prior work is limited to short inputs."
    )
    assert one_sentence(abstract, "Sparse attention for long-context transformers").startswith(
        "Sparse attention reduces"
    )


def test_no_text_gives_no_summary() -> None:
    assert one_sentence("") == "" and one_sentence("   \n ") == ""


@given(st.text(max_size=600), st.text(max_size=80))
def test_the_summary_is_always_the_text_of_one_of_its_sentences(text: str, title: str) -> None:
    summary = one_sentence(text, title)
    assert summary == one_sentence(text, title)  # the same every time
    if not text.split():
        assert summary == ""
        return
    assert summary
    # The chosen sentence, perhaps without its lead-in ("To this end, ").
    assert any(s.endswith(summary[1:]) for s in sentences(text))
    assert len(summary) <= len(" ".join(text.split()))


@given(st.lists(st.sampled_from(["We", "propose", "e.g.", "Dr.", "3.5", "A.", "x.", "Fig.", "ok"])))
def test_sentences_put_back_together_give_the_text(words: list[str]) -> None:
    text = " ".join(words)
    assert " ".join(sentences(text)) == " ".join(text.split())


def test_hopes_and_outlooks_are_never_the_tldr() -> None:
    abstract = (
        "We anticipate that our findings will catalyze further research on alignment. "
        "We propose RM-X, a reward model that resists overoptimization. "
        "Code and models are publicly available at github.com/x/rm-x."
    )
    assert one_sentence(abstract, "Reward models") == (
        "We propose RM-X, a reward model that resists overoptimization."
    )


def test_a_long_tldr_is_cut_at_a_clause_or_a_word_never_inside_one() -> None:
    from digest.render.papers import clause_cut

    text = (
        "We introduce a benchmark of long documents for retrieval models, which tests "
        "recall at every depth and shows that most models forget the middle"
    )
    cut = clause_cut(text, 120)
    assert cut == "We introduce a benchmark of long documents for retrieval models\u2026"
    words = "word " * 40
    assert clause_cut(words, 50).endswith("word\u2026") and len(clause_cut(words, 50)) <= 50
    assert clause_cut("short enough", 50) == "short enough"
