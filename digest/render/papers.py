"""How a paper is shown: its card's fields (title as text, authors, TL;DR, links), the
same in an email, on the archive pages and in feeds.  Pure."""

from __future__ import annotations

import re
import textwrap
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from urllib.parse import quote_plus

from digest.models import StoredEntry
from digest.render.summary import one_sentence
from digest.render.texmath import plain_text
from digest.text import web_url

#: Plain-text lines are wrapped at this width.
TEXT_WIDTH = 72
_MAX_AUTHORS = 3


#: A TL;DR is one sentence; a long one is cut to about two lines on a phone.
_TLDR_CHARS = 120


_GITHUB = re.compile(r"(?:https?://)?github\.com/([A-Za-z0-9-]{1,39})/([A-Za-z0-9_.-]{1,100})")


#: Where a clause ends: a cut there reads better than one between any two words.
_CLAUSE_END = re.compile(r"[;:,]\s|\s[\u2014\u2013-]\s|\s\((?=[^)]*$)")


def clause_cut(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` characters: cut at the end of a clause in its last
    half when there is one, else between words, with an ellipsis."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    ends = [m.start() for m in _CLAUSE_END.finditer(cut) if m.start() >= limit // 2]
    if ends:
        return cut[: ends[-1]].rstrip(" ,;:.-") + "\u2026"
    return shorten(text, limit)


def shorten(text: str, limit: int) -> str:
    """Shorten text to at most ``limit`` characters on a word boundary, with an ellipsis."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut[limit // 2 :]:
        cut = cut[: cut.rfind(" ")]
    return cut.rstrip(" ,;:.-") + "\u2026"


def code_url(abstract: str) -> str | None:
    """The first GitHub repository an abstract names, as a link (the sentence's full stop
    is not part of it)."""
    found = _GITHUB.search(abstract)
    return f"https://github.com/{found[1]}/{found[2].rstrip('.')}" if found else None


def _title_search(title: str) -> str:
    """arXiv's search for a title, for a paper no source linked."""
    return "https://arxiv.org/search/?searchtype=title&query=" + quote_plus(title[:300])


@dataclass(frozen=True)
class PaperView:
    """One paper as the templates see it: text shortened, links checked."""

    title: str
    url: str | None
    authors: str
    #: One sentence saying what the paper does: the source's own, or the abstract's best.
    tldr: str
    abstract: str
    links: tuple[tuple[str, str], ...]
    upvotes: int | None
    #: The code repository's stars, shown beside its link when the source counts them.
    stars: int | None = None
    organization: str | None = None
    #: Where this reader's feedback link goes: a slot each email fills in ("" for none).
    feedback: str = ""
    #: The language its title's script says, when not a Latin one (None).
    language: str | None = None

    @property
    def byline(self) -> str:
        """The authors and the organisation, in one line."""
        return " \u00b7 ".join(part for part in (self.authors, self.organization) if part)

    @property
    def actions(self) -> tuple[tuple[str, str], ...]:
        """The links of the card's row: each but the one its title already carries, so
        that the HTML part links each address as often as the text part does."""
        return tuple((label, href) for label, href in self.links if href != self.url)

    @property
    def title_link(self) -> tuple[str, str] | None:
        """The title's link when no action carries it, so the text part has it too."""
        if self.url is None or any(href == self.url for _, href in self.links):
            return None
        return ("Read" if "arxiv.org/search/" not in self.url else "Find on arXiv", self.url)

    @cached_property
    def title_wrapped(self) -> str:
        return textwrap.fill(self.title, TEXT_WIDTH, subsequent_indent="  ")

    @cached_property
    def tldr_wrapped(self) -> str:
        return textwrap.fill(self.tldr, TEXT_WIDTH, initial_indent="  ", subsequent_indent="  ")

    @cached_property
    def abstract_wrapped(self) -> str:
        return textwrap.fill(self.abstract, TEXT_WIDTH, initial_indent="  ", subsequent_indent="  ")


def paper_view(stored: StoredEntry, abstract_chars: int) -> PaperView:
    """Prepare one stored entry for the templates: TeX as text, a TL;DR, and a link on
    every paper (a title search on arXiv when no source gave one).

    ``abstract_chars`` is how much of the abstract shows below the TL;DR (0: none).
    """
    entry = stored.entry
    authors = ", ".join(entry.authors[:_MAX_AUTHORS])
    if len(entry.authors) > _MAX_AUTHORS:
        authors += " et al."
    title = plain_text(entry.title)
    known = web_url(entry.url) or (
        f"https://arxiv.org/abs/{entry.arxiv_id}" if entry.arxiv_id else None
    )
    links = [
        ("arXiv", known if entry.arxiv_id else None),
        ("PDF", web_url(entry.pdf_url)),
        ("Hugging Face", web_url(entry.hf_url)),
        ("Code", web_url(entry.code_url) or code_url(entry.abstract)),
    ]
    url = known or web_url(entry.hf_url) or _title_search(title)
    abstract = plain_text(entry.abstract) if entry.abstract else ""
    tldr = plain_text(entry.summary) if entry.summary else one_sentence(abstract, title)
    return PaperView(
        title=title,
        url=url,
        authors=authors,
        tldr=clause_cut(tldr, _TLDR_CHARS),
        abstract=shorten(abstract, abstract_chars) if abstract and abstract_chars else "",
        links=tuple((label, href) for label, href in links if href),
        upvotes=entry.upvotes,
        stars=entry.stars if entry.code_url else None,
        organization=entry.organization,
        language=language_of(title),
    )


#: The language a script most likely writes, and its direction.
_SCRIPT_LANGUAGES = {
    "HANGUL": "ko",
    "CJK": "zh",
    "ARABIC": "ar",
    "HEBREW": "he",
    "CYRILLIC": "ru",
    "GREEK": "el",
    "DEVANAGARI": "hi",
    "THAI": "th",
}
RIGHT_TO_LEFT = frozenset({"ar", "he"})


def language_of(text: str) -> str | None:
    """The language most of a text's letters are written for, when it is not a Latin
    script: a guess by script (kana makes it Japanese), for an edition's ``lang``."""
    scripts: Counter[str] = Counter(
        unicodedata.name(char, "").split(" ", 1)[0] for char in text if char.isalpha()
    )
    if not scripts:
        return None
    top, count = scripts.most_common(1)[0]
    if count * 2 <= sum(scripts.values()):
        return None
    if scripts["HIRAGANA"] or scripts["KATAKANA"]:
        return "ja" if top in ("CJK", "HIRAGANA", "KATAKANA") else None
    return _SCRIPT_LANGUAGES.get(top)


def edition_language(views: Sequence[PaperView], default: str) -> tuple[str, str]:
    """The ``lang`` and ``dir`` of an email: a language more than half its papers are in,
    else ``default``."""
    languages: Counter[str | None] = Counter(view.language for view in views)
    found, count = languages.most_common(1)[0] if languages else (None, 0)
    if found is None or count * 2 <= len(views):
        return default, "ltr"
    return found, "rtl" if found in RIGHT_TO_LEFT else "ltr"


def capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def long_date(day: date) -> str:
    """Write a date as people read it: Saturday, March 21, 2026."""
    return f"{day:%A}, {day:%B} {day.day}, {day.year}"
