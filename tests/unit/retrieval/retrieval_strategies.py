"""Hypothesis strategies shared by the retrieval property tests."""

from __future__ import annotations

from hypothesis import strategies as st

WORDS = ["cat", "cats", "dog", "purr", "purring", "light", "plant", "energy", "the", "of", "bark"]

doc_texts = st.lists(st.sampled_from(WORDS), min_size=0, max_size=12).map(" ".join)
corpora = st.lists(doc_texts, min_size=1, max_size=12)
queries = st.lists(st.sampled_from(WORDS), min_size=1, max_size=4).map(" ".join)

# Scores on a 1/1000 grid: distinct values stay distinct after normalisation, as real ones do.
scores = st.integers(min_value=-5000, max_value=5000).map(lambda value: value / 1000)


@st.composite
def scored_lists(draw: st.DrawFn, pool: int = 30, max_size: int = 15) -> dict[str, float]:
    """A query's results: distinct doc ids from a shared pool with scores."""
    ids = draw(st.lists(st.integers(0, pool - 1), unique=True, max_size=max_size))
    return {f"doc{i:03d}": draw(scores) for i in ids}
