"""The topic query language: parse what a subscriber types into a tree, and compile it.

Web-search style: words (all must match), ``"exact phrases"``, ``OR``,
``-word`` or ``NOT word``, parentheses, ``prefix*``, and ``title:``,
``abstract:``, ``author:`` to search one field.  Pure: raw user text never
reaches a query engine; every word is quoted when compiled to FTS5.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace

from digest.errors import DigestError
from digest.text import first_control

FIELDS = {"title": "title", "abstract": "abstract", "author": "authors", "authors": "authors"}
MAX_QUERY_CHARS = 500
MAX_DEPTH = 20
_WORD_CHARS = re.compile(r"\w")
_FIELD_PREFIX = re.compile(r"^([A-Za-z]+):")


class QueryError(DigestError):
    """A topic query that cannot be parsed; says what and at which column."""

    def __init__(self, query: str, column: int, problem: str) -> None:
        self.query = query
        self.column = column
        self.problem = problem
        super().__init__(f"invalid query {query!r}: {problem} at column {column}")


@dataclass(frozen=True)
class Term:
    """A word or phrase to look for, optionally in one field, optionally as a prefix."""

    text: str
    field: str | None = None
    phrase: bool = False
    prefix: bool = False


@dataclass(frozen=True)
class Not:
    child: Node


@dataclass(frozen=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    children: tuple[Node, ...]


Node = Term | Not | And | Or


@dataclass(frozen=True)
class _Token:
    kind: str  # word, phrase, lparen, rparen, or, and, not, minus
    text: str
    column: int
    field: str | None = None
    prefix: bool = False


def parse_query(query: str) -> Node:
    """Parse a query into a tree; raise ``QueryError`` pointing at the problem."""
    if len(query) > MAX_QUERY_CHARS:
        raise QueryError(query[:40] + "...", MAX_QUERY_CHARS, "query is too long")
    _refuse_unprintable(query)
    tokens = _tokenize(query)
    if not tokens:
        raise QueryError(query, 1, "the query is empty")
    parser = _Parser(query, tokens)
    node = parser.parse_and(depth=0)
    if parser.position < len(tokens):
        token = tokens[parser.position]
        raise QueryError(query, token.column, f"unexpected {token.text!r}")
    _require_something_to_find(query, node)
    return node


def _refuse_unprintable(query: str) -> None:
    """Refuse control characters and lone surrogates, which no topic needs and FTS5 chokes on."""
    index = first_control(query, whitespace=True)
    if index is not None:
        raise QueryError(
            query.encode("unicode_escape").decode("ascii"),
            index + 1,
            f"control character U+{ord(query[index]):04X} is not allowed",
        )


def _no_expansion(_prefix: str) -> list[str]:
    return []


def compile_fts5(node: Node, expand_prefix: Callable[[str], list[str]] = _no_expansion) -> str:
    """Compile a parsed query to an SQLite FTS5 MATCH expression with every word quoted.

    ``expand_prefix`` returns the whole words a prefix stands for: a stemmed
    index cannot match the prefix ``optimiz*`` against the stem ``optim``, but
    it matches the words ``optimization`` and ``optimize``.
    """
    if isinstance(node, Term):
        text = _quote(node.text) + (" *" if node.prefix else "")
        if node.prefix and not node.phrase:
            text = " OR ".join([text, *(_quote(word) for word in expand_prefix(node.text))])
            text = f"({text})"
        return f"{FIELDS[node.field]} : {text}" if node.field else text
    if isinstance(node, Or):
        return " OR ".join(f"({compile_fts5(c, expand_prefix)})" for c in node.children)
    if isinstance(node, And):
        wanted = [c for c in node.children if not isinstance(c, Not)]
        unwanted = [c.child for c in node.children if isinstance(c, Not)]
        expression = " AND ".join(f"({compile_fts5(c, expand_prefix)})" for c in wanted)
        for child in unwanted:
            expression = f"({expression}) NOT ({compile_fts5(child, expand_prefix)})"
        return expression
    raise ValueError("a negation needs something to find beside it")  # guarded by the parser


def _quote(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _tokenize(query: str) -> list[_Token]:
    tokens: list[_Token] = []
    index = 0
    length = len(query)
    while index < length:
        char = query[index]
        column = index + 1
        if char.isspace():
            index += 1
        elif char in "()":
            tokens.append(_Token("lparen" if char == "(" else "rparen", char, column))
            index += 1
        elif char == "-" and index + 1 < length and not query[index + 1].isspace():
            tokens.append(_Token("minus", "-", column))
            index += 1
        elif char == '"':
            end = query.find('"', index + 1)
            if end < 0:
                raise QueryError(query, column, "unbalanced quote")
            prefix = query.startswith("*", end + 1)
            tokens.append(_Token("phrase", query[index + 1 : end], column, prefix=prefix))
            index = end + 1 + prefix
        else:
            end = index
            while end < length and not query[end].isspace() and query[end] not in '()"':
                end += 1
            tokens.append(_word_token(query, query[index:end], column))
            index = end
    return tokens


def _word_token(query: str, word: str, column: int) -> _Token:
    if word in ("OR", "AND", "NOT"):
        return _Token(word.lower(), word, column)
    field = None
    match = _FIELD_PREFIX.match(word)
    if match:
        name = match.group(1).lower()
        if name not in FIELDS:
            raise QueryError(
                query,
                column,
                f"unknown field {match.group(1)!r} (use title:, abstract: or author:, "
                "or put text with a colon in quotes)",
            )
        field = name
        word = word[match.end() :]
        if not word:
            return _Token("field", match.group(0), column, field=field)
    prefix = word.endswith("*")
    word = word.rstrip("*")
    return _Token("word", word, column, field=field, prefix=prefix)


class _Parser:
    def __init__(self, query: str, tokens: list[_Token]) -> None:
        self.query = query
        self.tokens = tokens
        self.position = 0

    def peek(self) -> _Token | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> _Token:
        token = self.tokens[self.position]
        self.position += 1
        return token

    def fail(self, token: _Token | None, problem: str) -> QueryError:
        column = token.column if token else len(self.query) + 1
        return QueryError(self.query, column, problem)

    def parse_and(self, depth: int) -> Node:
        if depth > MAX_DEPTH:
            raise self.fail(self.peek(), "parentheses nested too deep")
        children: list[Node] = []
        while (token := self.peek()) is not None and token.kind != "rparen":
            if token.kind == "or":
                raise self.fail(token, "OR needs something to look for on both sides")
            if token.kind == "and":
                self.take()
                following = self.peek()
                if not children or following is None or following.kind in ("or", "rparen"):
                    raise self.fail(token, "AND needs something to look for on both sides")
                continue
            children.append(self.parse_or(depth))
        if not children:
            raise self.fail(self.peek(), "expected a word, a phrase or a parenthesis")
        return children[0] if len(children) == 1 else And(tuple(children))

    def parse_or(self, depth: int) -> Node:
        # OR binds tighter than the implicit AND, as in web search:
        # "transformer vision OR language" is transformer AND (vision OR language).
        children = [self.parse_unary(depth)]
        while (token := self.peek()) is not None and token.kind == "or":
            self.take()
            following = self.peek()
            if following is None or following.kind in ("or", "and", "rparen"):
                raise self.fail(token, "OR needs something to look for on both sides")
            children.append(self.parse_unary(depth))
        return children[0] if len(children) == 1 else Or(tuple(children))

    def parse_unary(self, depth: int) -> Node:
        token = self.peek()
        if token is not None and token.kind in ("minus", "not"):
            self.take()
            following = self.peek()
            if following is None or following.kind in ("or", "and", "rparen"):
                raise self.fail(token, f"{token.text} needs a word or phrase to exclude")
            return Not(self.parse_unary(depth))
        return self.parse_primary(depth)

    def parse_primary(self, depth: int) -> Node:
        token = self.take()
        if token.kind == "lparen":
            if (inner := self.peek()) is not None and inner.kind == "rparen":
                raise self.fail(token, "empty parentheses")
            node = self.parse_and(depth + 1)
            closing = self.peek()
            if closing is None or closing.kind != "rparen":
                raise self.fail(token, "unbalanced parenthesis")
            self.take()
            return node
        if token.kind == "rparen":
            raise self.fail(token, "unbalanced parenthesis")
        if token.kind == "field":
            # "title:word", "title: word" and 'title:"a phrase"' all search one field.
            following = self.peek()
            if following is None or following.kind not in ("word", "phrase") or following.field:
                raise self.fail(token, f"{token.text} needs a word or phrase right after it")
            token = replace(self.take(), field=token.field)
        if token.kind in ("word", "phrase"):
            if not _WORD_CHARS.search(token.text):
                what = "an empty phrase" if token.kind == "phrase" else repr(token.text or "*")
                raise self.fail(token, f"{what} has no letters or digits to look for")
            return Term(token.text, token.field, token.kind == "phrase", token.prefix)
        raise self.fail(token, f"unexpected {token.text!r}")


def _require_something_to_find(query: str, node: Node) -> None:
    """Refuse groups made only of exclusions: FTS5 cannot match "everything but"."""
    if isinstance(node, Not):
        raise QueryError(query, 1, "a query of only exclusions matches nothing: add a word")
    if isinstance(node, And):
        if all(isinstance(c, Not) for c in node.children):
            raise QueryError(query, 1, "a group of only exclusions matches nothing: add a word")
        for child in node.children:
            _require_something_to_find(query, child.child if isinstance(child, Not) else child)
    if isinstance(node, Or):
        for child in node.children:
            _require_something_to_find(query, child)
