"""Records of the retrieval layer, with the field names the IR world uses.

``Document``, ``Query``, ``Qrel`` and ``ScoredDoc`` are the row types of corpora, topics,
relevance judgements and runs (the same fields as ``ir_measures``). ``Run`` and ``Qrels`` are the
nested mappings (query id -> doc id -> value) that evaluation and fusion work on, the shape
``ir_measures`` and ``pytrec_eval`` accept directly.
"""

from __future__ import annotations

from typing import NamedTuple, TypeAlias


class Document(NamedTuple):
    """A corpus document."""

    doc_id: str
    title: str
    text: str


class Query(NamedTuple):
    """A query (topic) text."""

    query_id: str
    text: str


class Qrel(NamedTuple):
    """A relevance judgement: ``relevance`` > 0 means relevant."""

    query_id: str
    doc_id: str
    relevance: int


class ScoredDoc(NamedTuple):
    """One line of a run: a document retrieved for a query, higher score is better."""

    query_id: str
    doc_id: str
    score: float


Run: TypeAlias = dict[str, dict[str, float]]
"""query id -> doc id -> score."""

Qrels: TypeAlias = dict[str, dict[str, int]]
"""query id -> doc id -> relevance."""
