"""A paper's TL;DR when its source wrote none: the one sentence of its abstract that
best says what the paper does.

Pure and extractive, with no model to download: the abstract is cut into
sentences (abbreviations, initials, decimals and "et al." do not end one),
and each is scored by what abstracts use to state a contribution ("we
propose", "this paper introduces", "our results show"), by the words it
shares with the title, and by its place.  Background openers ("Large
language models have...") lose to the sentence after them that says what is
new.
"""

from __future__ import annotations

import re

#: Words that end in a full stop without ending the sentence.
_ABBREVIATIONS = frozenset(
    "e.g i.e et al etc cf vs fig figs eq eqs sec secs no resp approx ca dr prof mr ms st "
    "viz incl ref refs tab ch pp vol".split()
)
_BOUNDARY = re.compile(r"(?<=[.!?])[\"'\u201d)\]]*\s+(?=[\"'\u201c(\[]?[A-Z0-9])")
_WORD = re.compile(r"[a-z0-9]+")
_WHO = r"\b(?:we|our|this (?:paper|work|study|article)|here)\b[^.]{0,80}?\b"
#: What a paper makes: the sentence a reader wants first.
_PROPOSAL = re.compile(
    _WHO + r"(?:propose|present|introduce|develop|design|build|release|offer|describe)",
    re.IGNORECASE,
)
#: What a paper finds: second best.
_FINDING = re.compile(
    _WHO + r"(?:show|demonstrate|find|establish|prove|derive|achieve|outperform|study|"
    r"investigate|report|reveal)",
    re.IGNORECASE,
)
#: "To this end, we propose ..." reads better as "We propose ...".
_LEAD_IN = re.compile(
    r"^(?:to (?:this end|that end|address|solve|tackle|overcome|fill|bridge|mitigate|remedy|"
    r"alleviate|close)[^,]{0,100}|in this (?:paper|work|study)|here|therefore|thus|hence|"
    r"overall|specifically|in particular|finally|consequently|motivated by[^,]{0,100}),\s+"
    r"(?=\w)",
    re.IGNORECASE,
)
_NAMED_METHOD = re.compile(
    r"^[A-Z][\w-]*[A-Z][\w-]*\b[^.]{0,40}\b(?:is|are|uses|achieves|enables|"
    r"introduces|provides|improves|outperforms)\b"
)
_BACKGROUND = re.compile(
    r"^(?:however|recently|although|while|despite|in recent years|existing|current|"
    r"traditional|despite)\b",
    re.IGNORECASE,
)
#: Sentences that say nothing of the paper: hopes, outlooks, where the code is.
_HEDGE = re.compile(
    r"\b(?:we (?:anticipate|hope|believe|expect|envision)|(?:will|may|could) (?:catalyze|"
    r"inspire|facilitate|spur|foster|pave the way|open (?:up )?new)|future (?:work|research|"
    r"directions)|further research|(?:code|data|models?|datasets?|weights)(?: and \w+)? "
    r"(?:is|are|will be) (?:publicly |freely |openly )?(?:available|released)|"
    r"github\.com|huggingface\.co)",
    re.IGNORECASE,
)
#: Words too common in abstracts to say what one is about.
_STOPWORDS = frozenset(
    "a an and are as at be by for from has have in is it its of on or that the their this "
    "to via we with our using based towards toward new can".split()
)
_SHORTEST = 40


def sentences(text: str) -> list[str]:
    """Cut text into sentences, keeping abbreviations, initials and decimals whole."""
    text = " ".join(text.split())
    found: list[str] = []
    start = 0
    for boundary in _BOUNDARY.finditer(text):
        before = text[start : boundary.start()]
        last = before.rsplit(" ", 1)[-1].rstrip(".!?\"'\u201d)]").lower()
        if last in _ABBREVIATIONS or (len(last) == 1 and last.isalpha()):
            continue
        found.append(before.strip())
        start = boundary.end()
    found.append(text[start:].strip())
    return [s for s in found if s]


def one_sentence(abstract: str, title: str = "") -> str:
    """The abstract's sentence that best states the paper's contribution ("" for no text)."""
    candidates = sentences(abstract)
    if not candidates:
        return ""
    title_words = _content_words(title)
    best = max(
        enumerate(candidates),
        key=lambda pair: (_score(pair[1], pair[0], len(candidates), title_words), -pair[0]),
    )
    return _without_lead_in(best[1])


def _without_lead_in(sentence: str) -> str:
    rest = _LEAD_IN.sub("", sentence, count=1)
    return rest[:1].upper() + rest[1:] if rest != sentence else sentence


def _score(sentence: str, index: int, count: int, title_words: frozenset[str]) -> float:
    score = 0.0
    if _PROPOSAL.search(sentence) or _NAMED_METHOD.search(sentence):
        score += 3.0
    elif _FINDING.search(sentence):
        score += 2.0
    if _BACKGROUND.search(sentence):
        score -= 1.0
    if _HEDGE.search(sentence):
        score -= 4.0
    if title_words:
        score += 2.0 * len(_content_words(sentence) & title_words) / len(title_words)
    if len(sentence) < _SHORTEST:
        score -= 2.0
    elif len(sentence) > 200:
        score -= 1.0
    # Earlier is better, all else equal; the first sentence is often background,
    # and the cue phrases above say when it is not.
    return score - 0.5 * index / count


def _content_words(text: str) -> frozenset[str]:
    return frozenset(w for w in _WORD.findall(text.lower()) if w not in _STOPWORDS and len(w) > 2)
