"""Topic queries select exactly the papers a person would expect, on the seed and our own feed."""

from __future__ import annotations

import pytest

from digest.ingest import read_source
from digest.models import Entry, StoredEntry, Topic
from digest.select.index import EditionIndex

from .conftest import HF_JSON, NOW, SAMPLE_DUMP, TODAY


def stored(entries: tuple[Entry, ...], start: int = 1) -> list[StoredEntry]:
    return [StoredEntry(start + n, e, "test", NOW) for n, e in enumerate(entries)]


@pytest.fixture(scope="module")
def sample() -> EditionIndex:
    entries = read_source(str(SAMPLE_DUMP), today=TODAY).entries
    hf = read_source(str(HF_JSON), today=TODAY).entries
    return EditionIndex(stored(entries) + stored(hf, start=1000))


def titles(index: EditionIndex, query: str) -> set[str]:
    return {m.entry.entry.title for m in index.search(query)}


# Each query with the titles a person reading the sample expects it to select.
EXPECTED = {
    # Stemming: "fairness" also finds "Fair"; "Unfairness" and "FairTTTS" are other words.
    "title:fairness": {
        "Generating Synthetic Fair Syntax-agnostic Data by Learning and Distilling Fair "
        "Representation",
        "Subset Selection Based On Multiple Rankings in the Presence of Bias: Effectiveness of "
        "Fairness Constraints for Multiwinner Voting Score Functions",
        "Distraction is All You Need for Fairness",
        "Demystifying Local and Global Fairness Trade-offs in Federated Learning Using Partial "
        "Information Decomposition",
        "Individually Fair Learning with One-Sided Feedback",
        "Enhancing Group Fairness in Online Settings Using Oblique Decision Forests",
        "FairTTTS: A Tree Test Time Simulation Method for Fairness-Aware Classification",
    },
    # An exact phrase.
    'title:"preference optimization"': {
        "Data-Centric Human Preference Optimization with Rationales",
        "UltraGen: Extremely Fine-grained Controllable Generation via Attribute Reconstruction "
        "and Global Preference Optimization",
        "Self-Evolutionary Large Language Models through Uncertainty-Enhanced Preference "
        "Optimization",
        "$i$REPO: $i$mplicit Reward Pairwise Difference based Empirical Preference Optimization",
    },
    # OR, case-insensitive.
    "title:rlhf OR title:DPO": {
        "Taming Overconfidence in LLMs: Reward Calibration in RLHF",
        "Provably Mitigating Overoptimization in RLHF: Your SFT Loss is Implicitly an "
        "Adversarial Regularizer",
        "Provably Robust DPO: Aligning Language Models with Noisy Feedback",
        "RLHS: Mitigating Misalignment in RLHF with Hindsight Simulation",
        "Insights into Alignment: Evaluating DPO and its Variants Across Multiple Tasks",
        "Conservative Reward Models Curb Reward Hacking in RLHF",
    },
    # Exclusion with -.  Porter stems "bias" to "bia" but "Biasing" to "bias", so the
    # Biasing paper is not found here; "bias*" finds every form (below).
    "title:bias -title:neural": {
        "Subset Selection Based On Multiple Rankings in the Presence of Bias: Effectiveness of "
        "Fairness Constraints for Multiwinner Voting Score Functions",
        "Towards Exact Computation of Inductive Bias",
        "ViG-Bias: Visually Grounded Bias Discovery and Mitigation",
        "Bias Runs Deep: Implicit Reasoning Biases in Persona-Assigned LLMs",
        "Comparing Human and Machine Bias in Face Recognition",
    },
    # Exclusion with NOT; "LLMs" stems to "llm".
    "title:llm NOT title:preference": {
        "LLM Interactive Optimization of Open Source Python Libraries -- Case Studies and "
        "Generalization",
        "Taming Overconfidence in LLMs: Reward Calibration in RLHF",
        "Power-Softmax: Towards Secure LLM Inference over Encrypted Data",
        "Bias Runs Deep: Implicit Reasoning Biases in Persona-Assigned LLMs",
        "On the Limits of Prompt Portability: How LLM Rankings Shift Across Annotation Guidelines",
        "Calibrated Self-Reports: When LLM Questionnaires Predict Agent Behaviour",
        "The Warm-Start Safety Gap in LLM Tool Agents",
        "ToolAtlas: Auditing What LLMs Believe About Their Tools",
        # Not "LLM Judges Prefer Their Own Preference Data".
    },
    # Prefixes.
    "title:bias* -title:neural -title:debiasing": {
        "Enhancing Visual Place Recognition via Fast and Slow Adaptive Biasing in Event Cameras",
        "Subset Selection Based On Multiple Rankings in the Presence of Bias: Effectiveness of "
        "Fairness Constraints for Multiwinner Voting Score Functions",
        "Towards Exact Computation of Inductive Bias",
        "ViG-Bias: Visually Grounded Bias Discovery and Mitigation",
        "Bias Runs Deep: Implicit Reasoning Biases in Persona-Assigned LLMs",
        "Comparing Human and Machine Bias in Face Recognition",
    },
    "title:distill*": {
        "Self-Supervised Dataset Distillation for Transfer Learning",
        "Generating Synthetic Fair Syntax-agnostic Data by Learning and Distilling Fair "
        "Representation",
        "HARD: Hard Augmentations for Robust Distillation",
    },
    # Parentheses.
    "title:unbiased (title:rank OR title:recommender)": {
        "A Large Scale Search Dataset for Unbiased Learning to Rank",
        "Unbiased Recommender Learning from Missing-Not-At-Random Implicit Feedback",
        "Unbiased Learning to Rank with Unbiased Propensity Estimation",
    },
    # Stemming across forms: "optimize" finds "Optimization".
    "optimize title:bilevel": {
        "Self-Tuning Networks: Bilevel Optimization of Hyperparameters using Structured "
        "Best-Response Functions",
        "On Penalty Methods for Nonconvex Bilevel Optimization and First-Order Stochastic "
        "Approximation",
    },
    # One field: the abstract.
    "abstract:werewolf": {
        "Learning Strategic Language Agents in the Werewolf Game with Iterative Latent Space "
        "Policy Optimization",
    },
    # Authors, accent-insensitive: "Niccolo" finds "Niccolò".
    "author:niccolo": {
        "A Frozen Encoder Is a Compatible Encoder: Stable Embeddings Across Model Updates",
    },
    "author:quennell": {
        "On the Limits of Prompt Portability: How LLM Rankings Shift Across Annotation Guidelines",
        "Calibrated Self-Reports: When LLM Questionnaires Predict Agent Behaviour",
    },
    # A phrase never runs from one author's name into the next one's: the speech
    # translation paper by "Tao Yang, He Wenjun" is not found.
    'author:"yang he"': {
        "From Grids to Sequences: Shared Tokenizers for Multispectral Image Fusion",
        "Draft Routing: Speculative Decoding Inside a Single Model",
    },
    # Words anywhere, all required; a phrase anywhere.
    '"large language models" title:attack': {
        "Backdoor Activation Attack: Attack Large Language Models using Activation Steering for "
        "Safety-Alignment",
    },
}


@pytest.mark.parametrize("query", EXPECTED)
def test_queries_select_what_a_person_expects(sample: EditionIndex, query: str) -> None:
    found = titles(sample, query)
    expected = EXPECTED[query]
    assert {t[:60] for t in found} == {t[:60] for t in expected}


def test_best_matches_come_first(sample: EditionIndex) -> None:
    matches = sample.search("lip OR werewolf")
    assert [m.score for m in matches] == sorted((m.score for m in matches), reverse=True)
    # A word in the title counts more than the same word in another abstract.
    assert matches[0].entry.entry.title.startswith(("Pseudo-Convolutional", "Learning Strategic"))


def test_an_entry_matching_two_topics_appears_once_under_the_first(sample: EditionIndex) -> None:
    topics = [Topic("title:rlhf", "RLHF"), Topic("title:dpo", "DPO"), Topic("title:fairness")]
    selection = sample.select(topics, max_entries=30)
    assert [s.label for s in selection.sections] == ["RLHF", "DPO", "title:fairness"]
    ids = [m.entry.id for s in selection.sections for m in s.matches]
    assert len(ids) == len(set(ids))
    dpo_titles = {m.entry.entry.title[:30] for m in selection.sections[1].matches}
    assert dpo_titles == {"Provably Robust DPO: Aligning ", "Insights into Alignment: Evalu"}


def test_the_cap_counts_what_was_cut(sample: EditionIndex) -> None:
    selection = sample.select([Topic("optimization"), Topic("title:fairness")], max_entries=5)
    assert selection.count == 5
    assert (
        selection.cut == len(titles(sample, "optimization") | titles(sample, "title:fairness")) - 5
    )
    assert [s.label for s in selection.sections] == ["optimization"]


def test_no_topics_means_every_paper_most_upvoted_first(sample: EditionIndex) -> None:
    selection = sample.select([], max_entries=1000)
    assert selection.count == 93 and selection.cut == 0
    upvotes = [m.entry.entry.upvotes or 0 for m in selection.sections[0].matches]
    assert upvotes == sorted(upvotes, reverse=True)


def test_nothing_matching_gives_an_empty_selection(sample: EditionIndex) -> None:
    assert sample.select([Topic("quantum chromodynamics")], max_entries=30).is_empty


def test_hostile_text_in_entries_and_queries_is_only_text() -> None:
    entry = Entry(title='NEAR "x" AND {title} : c++ -- foo-bar', abstract="ok")
    with EditionIndex(stored((entry,))) as index:
        assert len(index.search("c++")) == 1
        assert len(index.search("foo-bar")) == 1
        assert len(index.search('"NEAR"')) == 1
