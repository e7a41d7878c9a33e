"""Vector PRF math: Average, Rocchio, feedback selection, multi-vector feedback queries."""

from __future__ import annotations

import numpy as np
import pytest

from retrieval.prf import VectorPRF, feedback_vectors, multi_vector_queries
from retrieval.ranking import Ranking

VECTORS = np.array(
    [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 1.0]], dtype=np.float32
)
QUERY = np.array([[2.0, 2.0, 0.0]], dtype=np.float32)
# best first: doc 2, then doc 0, then doc 3
FIRST_PASS = [Ranking(np.array([0, 2, 3]), np.array([0.5, 0.9, 0.1]))]


def test_average_is_the_mean_of_query_and_top_documents() -> None:
    expanded = VectorPRF("average", depth=2).expand(QUERY, FIRST_PASS, VECTORS)
    np.testing.assert_allclose(expanded, [[(2 + 0 + 1) / 3, (2 + 0 + 0) / 3, (0 + 1 + 0) / 3]])


def test_rocchio_weights_query_and_centroid() -> None:
    expanded = VectorPRF("rocchio", depth=2, alpha=0.5, beta=2.0).expand(QUERY, FIRST_PASS, VECTORS)
    centroid = (VECTORS[2] + VECTORS[0]) / 2
    np.testing.assert_allclose(expanded, 0.5 * QUERY + 2.0 * centroid)


def test_depth_one_uses_the_best_document_only() -> None:
    expanded = VectorPRF("rocchio", depth=1, alpha=1.0, beta=1.0).expand(QUERY, FIRST_PASS, VECTORS)
    np.testing.assert_allclose(expanded, QUERY + VECTORS[2])


def test_short_and_empty_first_pass() -> None:
    queries = np.vstack([QUERY, QUERY])
    first_pass = [Ranking(np.array([3]), np.array([1.0])), Ranking.empty()]
    tensor, mask = feedback_vectors(first_pass, VECTORS, depth=3)
    assert mask.tolist() == [[True, False, False], [False, False, False]]
    np.testing.assert_allclose(tensor[0, 0], VECTORS[3])
    average = VectorPRF("average", depth=3).expand(queries, first_pass, VECTORS)
    np.testing.assert_allclose(average[0], (QUERY[0] + VECTORS[3]) / 2)
    np.testing.assert_allclose(average[1], QUERY[0])  # no feedback: the query itself
    rocchio = VectorPRF("rocchio", depth=3, alpha=0.7, beta=0.3).expand(
        queries, first_pass, VECTORS
    )
    np.testing.assert_allclose(rocchio[1], 0.7 * QUERY[0])


def test_multi_vector_queries_keep_feedback_documents_apart() -> None:
    first_pass = [*FIRST_PASS, Ranking(np.array([1]), np.array([0.3]))]
    stacked, owners = multi_vector_queries(first_pass, VECTORS, depth=2)
    assert owners.tolist() == [0, 0, 1]
    np.testing.assert_allclose(stacked, VECTORS[[2, 0, 1]])


def test_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="depth"):
        VectorPRF(depth=0)
    with pytest.raises(ValueError, match="unknown PRF method"):
        VectorPRF("relevance-model")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="rankings for"):
        VectorPRF().expand(np.vstack([QUERY, QUERY]), FIRST_PASS, VECTORS)
