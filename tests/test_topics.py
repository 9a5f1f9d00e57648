"""The topic query language: what parses, what is refused and why."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digest.models import Entry, StoredEntry
from digest.select.index import EditionIndex
from digest.select.topics import And, Not, Or, QueryError, Term, compile_fts5, parse_query


def test_words_are_all_required() -> None:
    assert parse_query("diffusion models") == And((Term("diffusion"), Term("models")))


def test_operators_fields_phrases_and_prefixes_build_a_tree() -> None:
    tree = parse_query('title:"large language" OR (author:hinton -survey) NOT abstract:optim*')
    assert tree == And(
        (
            Or(
                (
                    Term("large language", field="title", phrase=True),
                    And((Term("hinton", field="author"), Not(Term("survey")))),
                )
            ),
            Not(Term("optim", field="abstract", prefix=True)),
        )
    )


def test_or_binds_tighter_than_the_implicit_and_as_in_web_search() -> None:
    assert parse_query("transformer vision OR language") == And(
        (Term("transformer"), Or((Term("vision"), Term("language"))))
    )


def test_a_field_may_be_followed_by_a_space_or_a_phrase() -> None:
    assert parse_query("title: diffusion") == Term("diffusion", field="title")
    assert parse_query('title:"a b"') == Term("a b", field="title", phrase=True)


def test_explicit_and_is_accepted_and_lowercase_or_is_a_word() -> None:
    assert parse_query("a AND b") == parse_query("a b")
    assert parse_query("a or b") == And((Term("a"), Term("or"), Term("b")))


def test_hyphens_inside_words_and_symbols_are_not_syntax() -> None:
    assert parse_query("foo-bar c++") == And((Term("foo-bar"), Term("c++")))
    compiled = compile_fts5(parse_query('say "hi" c++'))
    assert compiled == '("say") AND ("hi") AND ("c++")'


def test_every_word_is_quoted_in_the_compiled_expression() -> None:
    assert compile_fts5(parse_query("NEAR title:x")) == '("NEAR") AND (title : "x")'
    assert compile_fts5(parse_query('a -"b c"')) == '(("a")) NOT ("b c")'


@pytest.mark.parametrize(
    ("query", "problem", "column"),
    [
        ('deep "learning', "unbalanced quote", 6),
        ("(a OR b", "unbalanced parenthesis", 1),
        ("a OR b)", "unexpected ')'", 7),
        ("OR", "OR needs something to look for on both sides", 1),
        ("a OR", "OR needs something to look for on both sides", 3),
        ("a OR OR b", "OR needs something to look for on both sides", 3),
        ("a AND", "AND needs something to look for on both sides", 3),
        ("auther:hinton", "unknown field 'auther'", 1),
        ("title:", "title: needs a word or phrase right after it", 1),
        ("title:(a OR b)", "title: needs a word or phrase right after it", 1),
        ("-survey", "a query of only exclusions matches nothing", 1),
        ("a OR -b", "a query of only exclusions matches nothing", 1),
        ("NOT", "NOT needs a word or phrase to exclude", 1),
        ("()", "empty parentheses", 1),
        ('""', "an empty phrase has no letters or digits", 1),
        ("* &", "'*' has no letters or digits", 1),
        ("", "the query is empty", 1),
        ("diffusion\x00", "control character U+0000 is not allowed", 10),
        ("a \x1b[31m", "control character U+001B", 3),
        ("a\ud800b", "control character U+D800", 2),
        ("x\x85", "control character U+0085", 2),
    ],
)
def test_invalid_queries_point_at_the_problem(query: str, problem: str, column: int) -> None:
    with pytest.raises(QueryError) as raised:
        parse_query(query)
    assert problem in raised.value.problem
    assert raised.value.column == column
    assert f"at column {column}" in str(raised.value)


def test_overlong_queries_are_refused() -> None:
    with pytest.raises(QueryError, match="too long"):
        parse_query("word " * 200)


#: Pieces of the query language and of hostile text, for queries close to real ones.
_PIECES = st.sampled_from(
    [
        "a",
        "bb",
        " ",
        '"',
        "(",
        ")",
        "*",
        "-",
        ":",
        "title:",
        "author:",
        "abstract:",
        "OR",
        "AND",
        "NOT",
        "NEAR",
        "^",
        "+",
        "{",
        "}",
        "é",
        "\u0301",
        "\u200b",
        "\uff21",
        "\U0001f600",
        "\x00",
        "\x01",
        "\t",
        "\ud800",
        "\ufffe",
        "''",
        "\\",
    ]
)
_QUERIES = st.one_of(st.text(max_size=60), st.lists(_PIECES, max_size=14).map("".join))


@pytest.fixture(scope="module")
def index() -> Iterator[EditionIndex]:
    entry = Entry(title="Diffusion models", abstract="Optimizing a bb", authors=("Ann Lee",))
    with EditionIndex([StoredEntry(1, entry, "test", datetime(2026, 11, 27, tzinfo=UTC))]) as idx:
        yield idx


@settings(max_examples=400, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_QUERIES)
def test_every_query_the_parser_accepts_runs_against_a_real_fts5_index(
    index: EditionIndex, text: str
) -> None:
    try:
        parse_query(text)
    except QueryError as e:
        assert e.column >= 1 and "\x00" not in str(e)
        return
    assert isinstance(index.search(text), tuple)  # never an sqlite3 or Unicode error
