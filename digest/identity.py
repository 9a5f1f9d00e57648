"""Entry identity: which papers are the same paper.

Pure functions only.  An entry's fingerprint is its arXiv id (without
version) when known, else its normalised title; the store uses both keys so
that the same paper seen with and without an id counts once.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_NEW_STYLE_ID = re.compile(r"(?<![\d.])(\d{4}\.\d{4,5})(?:v\d+)?(?![\d])")
# Old-style archives are short names ("hep-th", "math.AG", "cond-mat"): bounded, so no
# id outgrows its column.
_OLD_STYLE_ID = re.compile(r"(?<![\w.-])([a-z][a-z-]{0,19}(?:\.[A-Z]{2})?/\d{7})(?:v\d+)?(?!\d)")
_ARXIV_HINT = re.compile(r"arxiv|^\s*\d{4}\.\d{4,5}(v\d+)?\s*$|huggingface\.co/papers/", re.I)

_QUOTES = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u2032": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u201f": '"',
        "\u2033": '"',
        "\u00ab": '"',
        "\u00bb": '"',
    }
)
_DASH_RUN = re.compile(r"\s*-[\s-]*")
_SPACE_RUN = re.compile(r"\s+")
#: Normalising can lengthen a title (NFKC turns U+FDFA into 18 letters); the key never
#: outgrows its column.
MAX_KEY_CHARS = 500


def _is_dash(char: str) -> bool:
    return char == "\u2212" or unicodedata.category(char) == "Pd"


def title_key(title: str) -> str:
    """Return the title with cosmetic differences removed, for comparing papers."""
    text = unicodedata.normalize("NFKC", title)
    text = "".join(
        "-" if _is_dash(c) else c for c in text if unicodedata.category(c) != "Cf" and c != "$"
    )
    text = unicodedata.normalize("NFKC", text.translate(_QUOTES).casefold())
    text = _DASH_RUN.sub("-", text)
    return _SPACE_RUN.sub(" ", text).strip(" -")[:MAX_KEY_CHARS].rstrip(" -")


def arxiv_id_from(text: str | None) -> str | None:
    """Find an arXiv identifier (without version) in an id, URL or guid, if any.

    Only text that looks like it comes from arXiv (an arxiv URL, an
    ``oai:arXiv.org:`` guid, an ``arXiv:`` prefix, a Hugging Face paper URL or
    a bare id) is searched, so that other numbers are never taken for ids.
    """
    if not text or not _ARXIV_HINT.search(text):
        return None
    match = _NEW_STYLE_ID.search(text)
    if match:
        return match.group(1)
    match = _OLD_STYLE_ID.search(text)
    return match.group(1) if match else None


def arxiv_id_given(text: str) -> str | None:
    """The arXiv id in what a person or a source gives as one: a bare id (``2401.01234``,
    ``hep-th/9901001``), a prefixed one, or a URL; None when it names none."""
    return arxiv_id_from(text) or arxiv_id_from("arXiv:" + text.strip())


@dataclass(frozen=True)
class PaperKey:
    """A paper's identity, read back: ``arxiv`` and its id, or ``title`` and its key."""

    kind: str
    value: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"


def paper_key(text: str) -> PaperKey:
    """Read an identity ``fingerprint`` wrote; ``ValueError`` when it names no paper."""
    kind, colon, value = text.partition(":")
    if not colon or kind not in ("arxiv", "title") or not value:
        raise ValueError(f"{text[:40]!r} names no paper")
    return PaperKey(kind, value)


def fingerprint(title: str, arxiv_id: str | None = None) -> str:
    """Return the identity of a paper: ``arxiv:<id>`` when known, else ``title:<key>``."""
    if arxiv_id:
        return "arxiv:" + (arxiv_id_from(arxiv_id) or arxiv_id.strip().lower())
    return "title:" + title_key(title)


#: An author's name as a reader may follow it, at most (feeds cap names shorter).
MAX_AUTHOR_CHARS = 200


def author_key(name: str) -> str:
    """An author's name without the differences of spelling feeds make (case, accents,
    dots and runs of space), for following them: "J. Doe" and "j doe" are one author,
    "Jane Doe" another."""
    text = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", name).casefold())
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = re.sub(r"[.\u00b7,]", " ", text)
    return _SPACE_RUN.sub(" ", text).strip()[:MAX_AUTHOR_CHARS]
