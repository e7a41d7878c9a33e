"""Text analysis for BM25: lowercase, split into tokens, drop stopwords, stem (Snowball).

The default analyzer is the one behind the published SciFact BM25 figure of 0.679: lowercase,
tokens of two or more word characters (``(?u)\\b\\w\\w+\\b``, which also drops the possessive
``'s`` the way Lucene's possessive filter does), Lucene's 33 English stopwords, then the Snowball
English stemmer (PyStemmer). Every step can be changed or switched off.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

LUCENE_ENGLISH_STOPWORDS: frozenset[str] = frozenset(
    (
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "if",
        "in",
        "into",
        "is",
        "it",
        "no",
        "not",
        "of",
        "on",
        "or",
        "such",
        "that",
        "the",
        "their",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "will",
        "with",
    )
)
"""Lucene's ``EnglishAnalyzer.ENGLISH_STOP_WORDS_SET`` (also Pyserini's and bm25s' default)."""

DEFAULT_TOKEN_PATTERN = r"(?u)\b\w\w+\b"


def named_stopwords(name: str) -> frozenset[str]:
    """Return a stopword list by name: ``"english"``/``"lucene"``, ``"sklearn"`` or ``"none"``."""
    if name in ("english", "lucene"):
        return LUCENE_ENGLISH_STOPWORDS
    if name == "sklearn":
        from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

        return frozenset(ENGLISH_STOP_WORDS)
    if name == "none":
        return frozenset()
    raise ValueError(f"unknown stopword list {name!r}; use 'english', 'sklearn' or 'none'")


@dataclass(frozen=True)
class Analyzer:
    """Turns a text into index terms; call it on a string to get its terms in order."""

    lowercase: bool = True
    token_pattern: str = DEFAULT_TOKEN_PATTERN
    stopwords: frozenset[str] = LUCENE_ENGLISH_STOPWORDS
    stemmer: str | None = "english"
    """A Snowball algorithm name known to PyStemmer (``"english"``, ``"porter"``...), or None."""

    _split: Any = field(init=False, repr=False, compare=False)
    _stem_cache: dict[str, str] = field(init=False, repr=False, compare=False)
    _stem_word: Any = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_split", re.compile(self.token_pattern).findall)
        object.__setattr__(self, "_stem_cache", {})
        stem_word = None
        if self.stemmer is not None:
            import Stemmer

            try:
                stem_word = Stemmer.Stemmer(self.stemmer).stemWord
            except KeyError:
                raise ValueError(
                    f"unknown stemmer {self.stemmer!r}; PyStemmer knows "
                    f"{', '.join(Stemmer.algorithms())}"
                ) from None
        object.__setattr__(self, "_stem_word", stem_word)

    def __call__(self, text: str) -> list[str]:
        """Return the index terms of ``text`` in order (repeats kept)."""
        if self.lowercase:
            text = text.lower()
        tokens: list[str] = self._split(text)
        if self.stopwords:
            tokens = [token for token in tokens if token not in self.stopwords]
        if self._stem_word is None:
            return tokens
        cache = self._stem_cache
        stem_word = self._stem_word
        terms = []
        for token in tokens:
            stem = cache.get(token)
            if stem is None:
                stem = cache[token] = stem_word(token)
            terms.append(stem)
        return terms

    def analyze_all(self, texts: Iterable[str]) -> list[list[str]]:
        """Return the terms of each text."""
        return [self(text) for text in texts]

    def describe(self) -> str:
        """Return a one-line description for tables and logs."""
        stopwords = f"{len(self.stopwords)} stopwords" if self.stopwords else "no stopwords"
        stemming = f"{self.stemmer} stemmer" if self.stemmer else "no stemming"
        case = "lowercase" if self.lowercase else "case kept"
        return f"{case}, {self.token_pattern!r}, {stopwords}, {stemming}"
