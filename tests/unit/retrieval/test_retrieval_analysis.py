"""The BM25 analyzer: each step, and each step switched off."""

from __future__ import annotations

import pytest

from retrieval.analysis import LUCENE_ENGLISH_STOPWORDS, Analyzer, named_stopwords


def test_default_pipeline() -> None:
    # "the", "in", "a", "and" are Lucene stopwords; "s" and "6" and "x" are single characters.
    assert Analyzer()("The Cat's purring in a box, IL-6 and x") == ["cat", "pur", "box", "il"]


def test_each_step_can_be_switched_off() -> None:
    text = "The Cats purring"
    assert Analyzer(stemmer=None)(text) == ["cats", "purring"]
    assert Analyzer(stopwords=frozenset())(text) == ["the", "cat", "pur"]
    assert Analyzer(lowercase=False, stemmer=None, stopwords=frozenset())(text) == [
        "The",
        "Cats",
        "purring",
    ]
    assert Analyzer(token_pattern=r"\S+", stemmer=None)("a-b c") == ["a-b", "c"]


def test_stopword_lists() -> None:
    assert len(LUCENE_ENGLISH_STOPWORDS) == 33
    assert named_stopwords("english") is LUCENE_ENGLISH_STOPWORDS
    assert "however" in named_stopwords("sklearn")
    assert named_stopwords("none") == frozenset()
    with pytest.raises(ValueError, match="unknown stopword list"):
        named_stopwords("klingon")


def test_unknown_stemmer_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="english"):
        Analyzer(stemmer="klingon")
