"""Selection: the topic query language (``topics``) and the edition's full-text index
(``index``) that picks each reader's papers; ``learned`` (each reader's model) is loaded
only where a reader has one, by its own path."""

from digest.select.index import Affinity, EditionIndex, Match, Section, Selection, blended
from digest.select.topics import FIELDS, QueryError, parse_query

__all__ = [
    "FIELDS",
    "Affinity",
    "EditionIndex",
    "Match",
    "QueryError",
    "Section",
    "Selection",
    "blended",
    "parse_query",
]
