"""The oracle of the retrieval unit tests: exact numpy search over a seeded synthetic collection.

The numpy searcher exists only here, to check fusion and PRF logic; real dense retrieval goes
through a vecdb server (tests/integration/test_retrieval_vecdb.py).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from retrieval.bm25 import BM25
from retrieval.dense import Hits
from retrieval.embeddings import Embeddings
from retrieval.pipeline import Experiment
from retrieval.ranking import DocIds


class ExactSearcher:
    """Exact cosine search over a small matrix: the oracle the tests compare against."""

    def __init__(self, ids: list[str], vectors: npt.NDArray[np.float32]) -> None:
        self.ids = np.asarray(ids)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        self.vectors = vectors / np.where(norms == 0, 1, norms)
        self.calls = 0

    def search_batch(self, vectors: npt.NDArray[np.float32], k: int) -> list[Hits]:
        self.calls += 1
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        scores = (vectors / np.where(norms == 0, 1, norms)) @ self.vectors.T
        hits = []
        for row in scores:
            best = np.argsort(-row, kind="stable")[:k]
            hits.append(Hits(self.ids[best].tolist(), row[best].astype(np.float64)))
        return hits


WORDS = ["cell", "gene", "protein", "virus", "immune", "cancer", "brain", "heart", "drug", "risk"]


def make_experiment(
    n_docs: int = 60, n_queries: int = 7, dim: int = 16, seed: int = 0
) -> Experiment:
    rng = np.random.default_rng(seed)
    doc_ids = [f"doc{i:03d}" for i in range(n_docs)]
    texts = [" ".join(rng.choice(WORDS, size=rng.integers(3, 12))) for _ in doc_ids]
    vectors = rng.normal(size=(n_docs, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    query_vectors = rng.normal(size=(n_queries, dim)).astype(np.float32)
    return Experiment(
        doc_ids=DocIds(doc_ids),
        bm25=BM25(doc_ids, texts),
        searcher=ExactSearcher(doc_ids, vectors),
        doc_vectors=Embeddings(tuple(doc_ids), vectors),
        query_ids=[f"q{i}" for i in range(n_queries)],
        query_texts=[" ".join(rng.choice(WORDS, size=3)) for _ in range(n_queries)],
        query_vectors=query_vectors,
        k=n_docs,
    )
