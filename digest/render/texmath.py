"""TeX in titles and abstracts, as a reader would write it in plain text.

Pure.  Only what is plainly TeX changes: ``$...$`` spans (through
pylatexenc, so ``$\\alpha$`` is α and ``$O(n^2)$`` is O(n²)), TeX quotes
(````quality''`` is “quality”), text macros (``\\emph{robust}`` is robust,
``\\url{...}`` its address, ``G\\"odel`` Gödel) and citations (dropped: a
reader cannot follow them).  A lone dollar, a price, or a backslash elsewhere
stays exactly as the feed gave it; the stored text is never changed.
"""

from __future__ import annotations

import re
from functools import lru_cache

from pylatexenc.latex2text import LatexNodes2Text

# A math span: $...$ on one line, not empty, not starting or ending with a space
# (so "$5 and $10" is money, not math), and short enough to be a formula.
_MATH = re.compile(r"(?<![\\$])\$(?=\S)([^$\n]{1,200}?)(?<=\S)\$(?!\$)")
_QUOTES = re.compile(r"``(.{1,300}?)''")
_SUPERSCRIPT = str.maketrans("0123456789+-n", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻ⁿ")
_SUBSCRIPT = str.maketrans("0123456789+-", "₀₁₂₃₄₅₆₇₈₉₊₋")
_SCRIPTS = re.compile(r"([\^_])([0-9+\-n])(?![0-9A-Za-z])")
# Text-mode macros whose argument is the text: \emph{...}, \textbf{...} and the like.
_STYLED = re.compile(
    r"\\(?:emph|textbf|textit|textsl|textsc|textrm|textsf|textup|textmd|underline|mbox)"
    r"\{([^{}$\\]{0,300})\}"
)
# Macros whose argument is shown as typed: code, paths, addresses; a link's text.
_VERBATIM = re.compile(r"\\(?:texttt|url|path|nolinkurl)\{([^{}]{0,500})\}")
_LINK = re.compile(r"\\href\{[^{}]{0,500}\}\{([^{}$\\]{0,300})\}")
_CITATION = re.compile(r"[ ~]?\\(?:cite[pt]?|citeauthor|ref|eqref|autoref|cref)\{[^{}]{0,300}\}")
# An accent on one letter: \'e, \"{o}, \c{c}, \v S.
_ACCENT = re.compile(r"\\(?:['\"`^~=.]|[uvHcdbkr](?=[{\s]))\s?\{?[A-Za-z]\}?")


def plain_text(text: str) -> str:
    """The text with its TeX math, quotes and text macros as Unicode."""
    if "$" not in text and "``" not in text and "\\" not in text:
        return text  # the usual case, at no cost
    text = _QUOTES.sub(lambda m: f"\u201c{m[1]}\u201d", text)
    text = _MATH.sub(lambda m: _formula(m[1]), text)
    if "\\" not in text:
        return text
    return _text_macros(text)


def _text_macros(text: str) -> str:
    text = _CITATION.sub("", text)
    text = _VERBATIM.sub(lambda m: m[1], text)
    text = _LINK.sub(lambda m: m[1], text)
    for _ in range(3):  # \\emph{\\textbf{...}}: the innermost first
        text, changed = _STYLED.subn(lambda m: m[1], text)
        if not changed:
            break
    return _ACCENT.sub(lambda m: _accented(m[0]), text)


@lru_cache(maxsize=1024)
def _accented(tex: str) -> str:
    try:
        return _converter().latex_to_text(tex) or tex
    except Exception:  # noqa: BLE001 - an accent pylatexenc cannot read stays as typed
        return tex


@lru_cache(maxsize=4096)
def _formula(tex: str) -> str:
    try:
        converted = _converter().latex_to_text(tex)
    except Exception:  # noqa: BLE001 - a formula pylatexenc cannot read stays as typed
        return f"${tex}$"
    converted = _SCRIPTS.sub(_script, converted)
    return " ".join(converted.split()) or f"${tex}$"


def _script(match: re.Match[str]) -> str:
    table = _SUPERSCRIPT if match[1] == "^" else _SUBSCRIPT
    character = match[2].translate(table)
    return character if character != match[2] else match[0]


@lru_cache(maxsize=1)
def _converter() -> LatexNodes2Text:
    return LatexNodes2Text(math_mode="text", strict_latex_spaces=True)
