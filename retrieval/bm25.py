"""BM25, Lucene's variant, on scipy sparse matrices.

For a query term t in document d::

    idf(t)      = log(1 + (N - df(t) + 0.5) / (df(t) + 0.5))
    score(t, d) = idf(t) * tf(t, d) / (tf(t, d) + k1 * (1 - b + b * |d| / avgdl))

summed over the query's terms (a repeated query term counts once per occurrence, as a repeated
clause does in Lucene). ``|d|`` is the number of terms of d after analysis. This is Lucene's
``BM25Similarity`` (without the constant ``k1 + 1`` factor it dropped in 8.0, and with exact
rather than one-byte-quantized document lengths).

The index keeps the document-term counts, so other ``k1``/``b`` values (:meth:`BM25.with_parameters`)
cost no re-analysis. All queries are scored at once by one sparse product ``Q @ Wᵀ``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import sparse

from retrieval.analysis import Analyzer
from retrieval.ranking import DocIds, Ranking, to_run
from retrieval.records import Run

# Queries are scored in blocks so the dense score block stays small (block * n_docs floats).
_QUERY_BLOCK = 256


@dataclass(frozen=True)
class BM25Parameters:
    """The two BM25 knobs: term-frequency saturation ``k1`` and length normalisation ``b``."""

    k1: float = 1.2
    b: float = 0.75

    def __post_init__(self) -> None:
        if not self.k1 >= 0:
            raise ValueError(f"k1 must be >= 0, got {self.k1}")
        if not 0 <= self.b <= 1:
            raise ValueError(f"b must be in [0, 1], got {self.b}")


class BM25:
    """A BM25 index over a corpus; :meth:`search` gives a run, :meth:`score` the full score matrix."""

    def __init__(
        self,
        doc_ids: Sequence[str],
        texts: Sequence[str],
        *,
        analyzer: Analyzer | None = None,
        parameters: BM25Parameters | None = None,
    ) -> None:
        if len(doc_ids) != len(texts):
            raise ValueError(f"{len(doc_ids)} doc ids but {len(texts)} texts")
        if len(set(doc_ids)) != len(doc_ids):
            raise ValueError("doc ids must be unique")
        self.analyzer = analyzer if analyzer is not None else Analyzer()
        self.doc_ids = np.asarray(doc_ids, dtype=np.str_)
        vocabulary: dict[str, int] = {}
        term_ids: list[int] = []
        lengths = np.zeros(len(texts), dtype=np.int64)
        for row, text in enumerate(texts):
            terms = self.analyzer(text)
            lengths[row] = len(terms)
            term_ids.extend(vocabulary.setdefault(term, len(vocabulary)) for term in terms)
        rows = np.repeat(np.arange(len(texts)), lengths)
        counts = sparse.csr_matrix(
            (np.ones(len(term_ids)), (rows, np.asarray(term_ids, dtype=np.int64))),
            shape=(len(texts), len(vocabulary)),
        )
        counts.sum_duplicates()
        self._init(vocabulary, counts, parameters or BM25Parameters())

    def _init(
        self, vocabulary: dict[str, int], counts: sparse.csr_matrix, parameters: BM25Parameters
    ) -> None:
        self.vocabulary = vocabulary
        self.parameters = parameters
        self._counts = counts
        n_docs = counts.shape[0]
        doc_lengths = np.asarray(counts.sum(axis=1)).ravel()
        document_frequency = np.bincount(counts.indices, minlength=counts.shape[1])
        self.idf = np.log1p((n_docs - document_frequency + 0.5) / (document_frequency + 0.5))
        average_length = doc_lengths.mean() if n_docs else 0.0
        length_ratio = doc_lengths / average_length if average_length > 0 else doc_lengths * 0.0
        k1, b = parameters.k1, parameters.b
        saturation = k1 * (1.0 - b + b * length_ratio)
        rows = np.repeat(np.arange(n_docs), np.diff(counts.indptr))
        tf = counts.data
        weights = self.idf[counts.indices] * tf / (tf + saturation[rows])
        # Stored transposed (terms x docs) so Q @ W is a plain CSR product.
        self._weights = sparse.csr_matrix(
            (weights, counts.indices, counts.indptr), shape=counts.shape
        ).T.tocsr()

    def with_parameters(self, parameters: BM25Parameters) -> BM25:
        """Return the same index scored with other ``k1``/``b`` (no re-analysis)."""
        other = object.__new__(BM25)
        other.analyzer = self.analyzer
        other.doc_ids = self.doc_ids
        other._init(self.vocabulary, self._counts, parameters)
        return other

    @property
    def n_docs(self) -> int:
        """Return the number of indexed documents."""
        return int(self._counts.shape[0])

    def query_matrix(self, query_texts: Sequence[str]) -> sparse.csr_matrix:
        """Return the query-term count matrix (n_queries, n_terms); unknown terms are dropped."""
        term_ids: list[int] = []
        lengths = np.zeros(len(query_texts), dtype=np.int64)
        for row, text in enumerate(query_texts):
            known = [
                self.vocabulary[term] for term in self.analyzer(text) if term in self.vocabulary
            ]
            lengths[row] = len(known)
            term_ids.extend(known)
        rows = np.repeat(np.arange(len(query_texts)), lengths)
        matrix = sparse.csr_matrix(
            (np.ones(len(term_ids)), (rows, np.asarray(term_ids, dtype=np.int64))),
            shape=(len(query_texts), len(self.vocabulary)),
        )
        matrix.sum_duplicates()
        return matrix

    def score(self, query_texts: Sequence[str]) -> sparse.csr_matrix:
        """Return the BM25 score of every (query, document) pair as a sparse (n_queries, n_docs) matrix."""
        return (self.query_matrix(query_texts) @ self._weights).tocsr()

    def rankings(self, query_texts: Sequence[str], doc_ids: DocIds, k: int = 1000) -> list[Ranking]:
        """Return each query's best ``k`` matching documents (score > 0) as codes of ``doc_ids``."""
        codes = doc_ids.encode(self.doc_ids.tolist())
        found: list[Ranking] = []
        for start in range(0, len(query_texts), _QUERY_BLOCK):
            block = self.score(query_texts[start : start + _QUERY_BLOCK])
            for row in range(block.shape[0]):
                begin, end = block.indptr[row], block.indptr[row + 1]
                ranking = Ranking(codes[block.indices[begin:end]], block.data[begin:end])
                found.append(ranking.best(k))
        return found

    def search(self, query_ids: Sequence[str], query_texts: Sequence[str], k: int = 1000) -> Run:
        """Return the best ``k`` matching documents (score > 0) of each query."""
        if len(query_ids) != len(query_texts):
            raise ValueError(f"{len(query_ids)} query ids but {len(query_texts)} query texts")
        doc_ids = DocIds(self.doc_ids.tolist())
        found = self.rankings(query_texts, doc_ids, k)
        return to_run(dict(zip(query_ids, found, strict=True)), doc_ids)

    def dense_scores(self, query_texts: Sequence[str]) -> npt.NDArray[np.float64]:
        """Return the full (n_queries, n_docs) score matrix as a dense array."""
        return np.asarray(self.score(query_texts).toarray())
