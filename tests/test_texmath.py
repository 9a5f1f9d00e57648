"""TeX as text: formulas and TeX quotes become Unicode, and nothing else changes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from digest.render.texmath import plain_text


@pytest.mark.parametrize(
    ("typed", "shown"),
    [
        ("$i$REPO: $i$mplicit reasoning", "iREPO: implicit reasoning"),
        ("the ``quality'' subset", "the \u201cquality\u201d subset"),
        ("$\\alpha$-divergence in $O(n^2)$ time", "\u03b1-divergence in O(n\u00b2) time"),
        ("loss $x_1 + x_2$", "loss x\u2081 + x\u2082"),
        ("$\\mathcal{L}_{\\text{KL}}$ and $\\leq 3\\%$", "\u2112_KL and \u22643%"),
        ("it costs $5 and $10", "it costs $5 and $10"),  # money, not math
        ("US$ 3 billion", "US$ 3 billion"),
        ("no TeX here \\ at all", "no TeX here \\ at all"),
    ],
)
def test_tex_becomes_what_a_reader_would_type(typed: str, shown: str) -> None:
    assert plain_text(typed) == shown


@given(st.text(alphabet=st.characters(blacklist_characters="$`"), max_size=200))
def test_text_without_tex_is_left_exactly_as_it_was(text: str) -> None:
    assert plain_text(text) == text


@given(st.text(alphabet=st.sampled_from("$`'\\{}^_ab1 \u00e9"), max_size=60))
def test_any_text_converts_without_error(text: str) -> None:
    assert isinstance(plain_text(text), str)


@pytest.mark.parametrize(
    ("tex", "text"),
    [
        (r"A \emph{robust} method", "A robust method"),
        (r"\textbf{Bold \textit{nested}} text", "Bold nested text"),
        (
            r"see \url{https://x.org/a_b} and \texttt{pip install}",
            "see https://x.org/a_b and pip install",
        ),
        (r"as shown in~\cite{smith2020}.", "as shown in."),
        (r"following \citep{a,b} we", "following we"),
        (r"G\"odel, Erd\H{o}s, \'{e}t\'e, \c{c}a", "Gödel, Erdős, été, ça"),
        (r"\href{https://a.b}{the site}", "the site"),
        (r"$\alpha$-\emph{stable}", "α-stable"),
        (r"a \lone backslash and C:\path", r"a \lone backslash and C:\path"),
    ],
)
def test_text_macros_read_as_text(tex: str, text: str) -> None:
    assert plain_text(tex) == text
