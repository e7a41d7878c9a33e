"""Fusion: interpolation over the union with missing documents at the list minimum, and RRF."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from retrieval_strategies import scored_lists

from retrieval.fusion import fuse, interpolate, maximum, normalize, reciprocal_rank_fusion
from retrieval.ranking import Ranking, ranked


def test_normalizations() -> None:
    scores = np.array([1.0, 2.0, 4.0])
    np.testing.assert_allclose(normalize(scores, "minmax"), [0.0, 1 / 3, 1.0])
    np.testing.assert_allclose(normalize(scores, "centred-minmax"), [-0.5, -1 / 6, 0.5])
    np.testing.assert_allclose(normalize(scores, "zscore"), (scores - scores.mean()) / scores.std())
    np.testing.assert_allclose(normalize(scores, "none"), scores)
    assert normalize(np.array([3.0, 3.0]), "minmax").tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="unknown normalization"):
        normalize(scores, "softmax")  # type: ignore[arg-type]


def test_missing_document_takes_the_lists_minimum() -> None:
    dense = {"q": {"a": 0.9, "b": 0.5, "c": 0.1}}
    sparse = {"q": {"b": 12.0, "d": 4.0}}
    fused = interpolate(dense, sparse, 0.5, normalization="none")["q"]
    # d is missing from the dense list: it takes 0.1; a and c take the sparse minimum 4.0.
    assert fused == pytest.approx(
        {
            "a": 0.5 * 0.9 + 0.5 * 4.0,
            "b": 0.5 * 0.5 + 0.5 * 12.0,
            "c": 0.5 * 0.1 + 0.5 * 4.0,
            "d": 0.5 * 0.1 + 0.5 * 4.0,
        }
    )
    minmax = interpolate(dense, sparse, 0.5)["q"]
    # after min-max the missing ones sit at 0 on that side
    assert minmax["d"] == pytest.approx(0.5 * 0.0 + 0.5 * 0.0)
    assert minmax["a"] == pytest.approx(0.5 * 1.0 + 0.5 * 0.0)
    assert minmax["b"] == pytest.approx(0.5 * 0.5 + 0.5 * 1.0)
    assert set(minmax) == {"a", "b", "c", "d"}  # the union of both lists


def test_query_in_one_run_only_keeps_that_runs_order() -> None:
    fused = interpolate({"q": {"a": 2.0, "b": 1.0}}, {}, 0.3)
    assert [doc for doc, _ in ranked(fused["q"])] == ["a", "b"]


@settings(max_examples=200, deadline=None)
@given(dense=scored_lists(), sparse=scored_lists())
def test_alpha_one_is_the_dense_ranking(dense: dict[str, float], sparse: dict[str, float]) -> None:
    fused = interpolate({"q": dense}, {"q": sparse}, 1.0, k=None).get("q", {})
    dense_order = [doc for doc, _ in ranked(dense)]
    fused_order = [doc for doc, _ in ranked(fused)]
    if not dense:
        return
    low = min(dense.values())
    above_minimum = [doc for doc in dense_order if dense[doc] > low]
    # Every dense document above the dense minimum comes first, in dense order; the rest tie
    # at the minimum with the sparse-only documents, which take that minimum.
    assert fused_order[: len(above_minimum)] == above_minimum
    assert set(fused) == set(dense) | set(sparse)
    if set(sparse) <= set(dense):
        assert fused_order == dense_order


@settings(max_examples=100, deadline=None)
@given(dense=scored_lists(), sparse=scored_lists())
def test_alpha_zero_is_the_sparse_ranking_and_centred_minmax_ranks_like_minmax(
    dense: dict[str, float], sparse: dict[str, float]
) -> None:
    fused = interpolate({"q": dense}, {"q": sparse}, 0.0, k=None).get("q", {})
    above = [doc for doc, _ in ranked(sparse) if sparse[doc] > min(sparse.values())]
    assert [doc for doc, _ in ranked(fused)][: len(above)] == above
    minmax = interpolate({"q": dense}, {"q": sparse}, 0.3, k=None).get("q", {})
    centred = interpolate(
        {"q": dense}, {"q": sparse}, 0.3, normalization="centred-minmax", k=None
    ).get("q", {})
    assert ranked(centred) == [(doc, centred[doc]) for doc, _ in ranked(minmax)]
    if len(set(dense.values())) > 1 and len(set(sparse.values())) > 1:
        # with both lists non-constant, the scores differ by exactly the shift 0.5
        np.testing.assert_allclose(
            [centred[d] for d in minmax], [minmax[d] - 0.5 for d in minmax], atol=1e-12
        )


def test_interpolation_cuts_at_k() -> None:
    dense = {"q": {f"d{i}": float(i) for i in range(10)}}
    fused = interpolate(dense, dense, 0.5, k=3)["q"]
    assert list(fused) == ["d9", "d8", "d7"]


def test_rrf_by_hand() -> None:
    first = {"q": {"a": 3.0, "b": 2.0, "c": 1.0}}
    second = {"q": {"c": 9.0, "a": 1.0}}
    fused = reciprocal_rank_fusion([first, second])["q"]
    assert fused == pytest.approx({"a": 1 / 61 + 1 / 62, "b": 1 / 62, "c": 1 / 63 + 1 / 61})
    assert [doc for doc, _ in ranked(fused)] == ["a", "c", "b"]
    assert reciprocal_rank_fusion([first], rank_constant=0)["q"]["a"] == pytest.approx(1.0)


def test_rrf_uses_trec_order_for_tied_scores() -> None:
    # b and a tie; trec_eval ranks the larger id first, so b is rank 1.
    fused = reciprocal_rank_fusion([{"q": {"a": 1.0, "b": 1.0}}])["q"]
    assert fused["b"] == pytest.approx(1 / 61)
    assert fused["a"] == pytest.approx(1 / 62)


def test_fuse_three_lists_and_maximum() -> None:
    one = Ranking(np.array([0, 1]), np.array([1.0, 0.0]))
    two = Ranking(np.array([1, 2]), np.array([1.0, 0.0]))
    fused = fuse([one, two, Ranking.empty()], [0.5, 0.5, 1.0], normalization="minmax")
    assert fused.docs.tolist() == [1, 0, 2]
    np.testing.assert_allclose(fused.scores, [0.5, 0.5, 0.0])
    best = maximum([one, two])
    assert dict(zip(best.docs.tolist(), best.scores.tolist(), strict=True)) == {
        0: 1.0,
        1: 1.0,
        2: 0.0,
    }
    assert maximum([]).size == 0


def test_rejects_bad_alpha() -> None:
    with pytest.raises(ValueError, match="alpha"):
        interpolate({}, {}, 1.5)
