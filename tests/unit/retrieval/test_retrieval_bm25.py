"""BM25: Lucene's formula checked by hand and against a direct implementation; order invariance."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from retrieval_strategies import corpora, queries

from retrieval.analysis import Analyzer
from retrieval.bm25 import BM25, BM25Parameters

PLAIN = Analyzer(stopwords=frozenset(), stemmer=None)


def direct_bm25(
    texts: list[str], query: str, analyzer: Analyzer, k1: float = 1.2, b: float = 0.75
) -> list[float]:
    """BM25 written out term by term, the reference the sparse implementation must match."""
    docs = [Counter(analyzer(text)) for text in texts]
    lengths = [sum(doc.values()) for doc in docs]
    average = sum(lengths) / len(docs)
    scores = []
    for doc, length in zip(docs, lengths, strict=True):
        score = 0.0
        for term in analyzer(query):
            df = sum(1 for other in docs if term in other)
            if df == 0 or term not in doc:
                continue
            idf = math.log(1 + (len(docs) - df + 0.5) / (df + 0.5))
            tf = doc[term]
            score += idf * tf / (tf + k1 * (1 - b + b * length / average))
        scores.append(score)
    return scores


def test_hand_computed_scores() -> None:
    texts = ["apple banana apple", "banana cherry", "cherry cherry cherry date"]
    index = BM25(["d1", "d2", "d3"], texts, analyzer=PLAIN)
    scores = index.dense_scores(["apple cherry"])[0]
    # idf(apple) = ln(1 + 2.5/1.5), tf 2 in a doc of average length: 2 / (2 + 1.2)
    assert scores[0] == pytest.approx(math.log(1 + 2.5 / 1.5) * 2 / 3.2)
    # idf(cherry) = ln(1.6); d2 has length 2 (norm 1.2 * 0.75), d3 length 4 (norm 1.2 * 1.25)
    assert scores[1] == pytest.approx(math.log(1.6) * 1 / (1 + 0.9))
    assert scores[2] == pytest.approx(math.log(1.6) * 3 / (3 + 1.5))


def test_search_returns_only_matching_documents_best_first() -> None:
    texts = ["apple banana apple", "banana cherry", "cherry cherry cherry date", "elderberry"]
    run = BM25(["d1", "d2", "d3", "d4"], texts, analyzer=PLAIN).search(["q"], ["apple cherry"])
    assert list(run["q"]) == ["d1", "d3", "d2"]


def test_repeated_query_terms_count_once_per_occurrence() -> None:
    index = BM25(["d1", "d2"], ["apple pie", "cherry pie"], analyzer=PLAIN)
    once, twice = index.dense_scores(["apple", "apple apple"])
    np.testing.assert_allclose(twice, 2 * once)


@pytest.mark.parametrize(("k1", "b"), [(0.9, 0.4), (1.2, 0.75), (2.0, 1.0), (1.5, 0.0)])
def test_matches_direct_formula_with_default_analyzer(k1: float, b: float) -> None:
    texts = [
        "The cats are purring loudly",
        "A dog barks at purring cats and other cats",
        "Photosynthesis: plants turn light into energy",
        "",
    ]
    query = "why do cats purr at dogs"
    parameters = BM25Parameters(k1, b)
    index = BM25([f"d{i}" for i in range(len(texts))], texts, parameters=parameters)
    expected = direct_bm25(texts, query, Analyzer(), k1, b)
    np.testing.assert_allclose(index.dense_scores([query])[0], expected, rtol=1e-12)


def test_with_parameters_equals_a_fresh_index() -> None:
    texts = ["apple banana apple", "banana cherry", "cherry cherry cherry date"]
    ids = ["d1", "d2", "d3"]
    changed = BM25(ids, texts).with_parameters(BM25Parameters(0.9, 0.4))
    fresh = BM25(ids, texts, parameters=BM25Parameters(0.9, 0.4))
    np.testing.assert_allclose(
        changed.dense_scores(["banana cherry"]), fresh.dense_scores(["banana cherry"])
    )


@settings(max_examples=60, deadline=None)
@given(corpus=corpora, query=queries, seed=st.integers(0, 2**32 - 1))
def test_scores_do_not_depend_on_corpus_order(corpus: list[str], query: str, seed: int) -> None:
    ids = [f"d{i}" for i in range(len(corpus))]
    permutation = np.random.default_rng(seed).permutation(len(corpus))
    original = BM25(ids, corpus).search(["q"], [query])["q"]
    shuffled = BM25([ids[i] for i in permutation], [corpus[i] for i in permutation]).search(
        ["q"], [query]
    )["q"]
    assert list(original) == list(shuffled)  # same documents in the same order
    for doc_id, score in original.items():
        assert shuffled[doc_id] == pytest.approx(score, rel=1e-12)


@settings(max_examples=40, deadline=None)
@given(corpus=corpora, query=queries)
def test_property_matches_direct_formula(corpus: list[str], query: str) -> None:
    index = BM25([f"d{i}" for i in range(len(corpus))], corpus)
    np.testing.assert_allclose(
        index.dense_scores([query])[0], direct_bm25(corpus, query, Analyzer()), atol=1e-12
    )


def test_rejects_bad_parameters_and_inputs() -> None:
    with pytest.raises(ValueError, match="b must be in"):
        BM25Parameters(1.2, 1.5)
    with pytest.raises(ValueError, match="k1 must be"):
        BM25Parameters(-1.0, 0.5)
    with pytest.raises(ValueError, match="unique"):
        BM25(["d1", "d1"], ["a", "b"])
    with pytest.raises(ValueError, match="2 doc ids but 1 texts"):
        BM25(["d1", "d2"], ["a"])
