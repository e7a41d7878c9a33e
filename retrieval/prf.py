"""Pseudo-relevance feedback on dense query vectors.

The top ``depth`` documents of a first-pass ranking are taken as relevant and their vectors are
used to search again.

Vector PRF (Li et al., "Pseudo Relevance Feedback with Deep Language Models and Dense Retrievers:
Successes and Pitfalls"; Pyserini's ``DenseVectorAveragePrf`` / ``DenseVectorRocchioPrf``) folds
them into one new query vector:

* Average: ``q' = (q + d_1 + ... + d_depth) / (depth + 1)``;
* Rocchio: ``q' = alpha * q + beta * (d_1 + ... + d_depth) / depth``.

Multi-vector feedback, in the spirit of ColBERT-PRF, keeps the feedback documents as separate
query vectors instead of averaging them: each one searches the index, and a document's feedback
score is its best similarity to any of them (a MaxSim over the feedback vectors). Averaging is
linear, so it can only move the query; the maximum rewards a document that is close to *one*
feedback document, which a centroid between two different relevant documents misses. The
pipeline (:mod:`retrieval.pipeline`) fuses that signal with the dense and sparse scores.

The first-pass ranking may be the dense run itself or any other (e.g. a dense + BM25
interpolation: "interpolation before PRF"). A query with fewer than ``depth`` results uses the
ones it has.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import numpy.typing as npt

from retrieval.embeddings import Matrix
from retrieval.ranking import Ranking

PRFMethod = Literal["average", "rocchio"]
PRF_METHODS: tuple[str, ...] = get_args(PRFMethod)


def feedback_vectors(
    first_pass: Sequence[Ranking], vectors: Matrix, depth: int
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
    """Return the top documents' vectors ``(n_queries, depth, dim)`` and which slots are filled.

    ``vectors[code]`` is the vector of document ``code``. Unfilled slots (a query with fewer
    than ``depth`` documents) hold zeros and a False mask.
    """
    tensor = np.zeros((len(first_pass), depth, vectors.shape[1]), dtype=np.float32)
    mask = np.zeros((len(first_pass), depth), dtype=bool)
    tops = [ranking.best(depth).docs for ranking in first_pass]
    counts = np.fromiter((len(top) for top in tops), dtype=np.intp, count=len(tops))
    if counts.sum():
        query_rows = np.repeat(np.arange(len(tops)), counts)
        slots = np.concatenate([np.arange(count) for count in counts])
        tensor[query_rows, slots] = vectors[np.concatenate(tops)]
        mask[query_rows, slots] = True
    return tensor, mask


def average(
    query_vectors: Matrix, feedback: npt.NDArray[np.float32], mask: npt.NDArray[np.bool_]
) -> Matrix:
    """Return the mean of each query vector and its feedback vectors."""
    total = query_vectors.astype(np.float64) + (feedback * mask[..., None]).sum(axis=1)
    expanded: Matrix = (total / (1.0 + mask.sum(axis=1, keepdims=True))).astype(np.float32)
    return expanded


def rocchio(
    query_vectors: Matrix,
    feedback: npt.NDArray[np.float32],
    mask: npt.NDArray[np.bool_],
    *,
    alpha: float,
    beta: float,
) -> Matrix:
    """Return ``alpha * q + beta * mean(feedback)`` (just ``alpha * q`` without feedback)."""
    counts = mask.sum(axis=1, keepdims=True)
    centroid = (feedback * mask[..., None]).sum(axis=1) / np.maximum(counts, 1)
    expanded: Matrix = (alpha * query_vectors.astype(np.float64) + beta * centroid).astype(
        np.float32
    )
    return expanded


@dataclass(frozen=True)
class VectorPRF:
    """A vector-PRF setting: the method, the feedback depth and Rocchio's weights."""

    method: PRFMethod = "rocchio"
    depth: int = 3
    alpha: float = 1.0
    """Rocchio: weight of the original query vector."""
    beta: float = 1.0
    """Rocchio: weight of the feedback documents' centroid."""

    def __post_init__(self) -> None:
        if self.method not in PRF_METHODS:
            raise ValueError(f"unknown PRF method {self.method!r}; use one of {PRF_METHODS}")
        if self.depth < 1:
            raise ValueError(f"PRF depth must be >= 1, got {self.depth}")

    def expand(
        self, query_vectors: Matrix, first_pass: Sequence[Ranking], vectors: Matrix
    ) -> Matrix:
        """Return the new query vectors built from the top documents of ``first_pass``."""
        if len(first_pass) != len(query_vectors):
            raise ValueError(f"{len(first_pass)} rankings for {len(query_vectors)} query vectors")
        feedback, mask = feedback_vectors(first_pass, vectors, self.depth)
        if self.method == "average":
            return average(query_vectors, feedback, mask)
        return rocchio(query_vectors, feedback, mask, alpha=self.alpha, beta=self.beta)

    def describe(self) -> str:
        """Return a short label, e.g. ``Rocchio(alpha=1, beta=1, depth=3)``."""
        if self.method == "average":
            return f"Average(depth={self.depth})"
        return f"Rocchio(alpha={self.alpha:g}, beta={self.beta:g}, depth={self.depth})"


def multi_vector_queries(
    first_pass: Sequence[Ranking], vectors: Matrix, depth: int
) -> tuple[Matrix, npt.NDArray[np.intp]]:
    """Return the feedback vectors of every query stacked, and the query each row belongs to."""
    feedback, mask = feedback_vectors(first_pass, vectors, depth)
    owners = np.nonzero(mask)[0]
    stacked: Matrix = feedback[mask]
    return stacked, owners
