"""Fusion of runs: weighted score interpolation and reciprocal rank fusion.

Interpolation follows Pyserini's hybrid searcher: the result is the union of the lists, and a
document missing from a list takes that list's minimum score before normalisation. For a dense and
a sparse run it scores ``alpha * norm(dense) + (1 - alpha) * norm(sparse)``, so ``alpha = 1`` is
the dense ranking and ``alpha = 0`` the sparse one.

Normalisations (each over one query's retrieved list):

* ``minmax``: ``(s - min) / (max - min)``, in [0, 1];
* ``centred-minmax``: Pyserini's ``(s - (min + max) / 2) / (max - min)``, in [-0.5, 0.5]. Under
  convex weights it ranks exactly like ``minmax`` (the shift adds the same constant to every
  document); it is kept for comparison with Pyserini's figures;
* ``zscore``: ``(s - mean) / std``;
* ``none``: raw scores.

A list whose scores are all equal normalises to zeros (it cannot order anything).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal, get_args

import numpy as np

from retrieval.ranking import DocIds, FloatArray, Ranking, to_rankings, to_run
from retrieval.records import Run

Normalization = Literal["minmax", "centred-minmax", "zscore", "none"]
NORMALIZATIONS: tuple[str, ...] = get_args(Normalization)
RRF_K = 60
"""The rank constant of Cormack et al. (2009), Pyserini's default."""

Runlike = Mapping[str, Mapping[str, float]]


def normalize(
    scores: FloatArray, method: Normalization, *, reference: FloatArray | None = None
) -> FloatArray:
    """Return ``scores`` normalised with the statistics of ``reference`` (default: ``scores``)."""
    values = np.asarray(scores, dtype=np.float64)
    basis = values if reference is None else np.asarray(reference, dtype=np.float64)
    if method == "none":
        return values
    if basis.size == 0:
        return np.zeros_like(values)
    if method in ("minmax", "centred-minmax"):
        low, high = float(basis.min()), float(basis.max())
        if high <= low:
            return np.zeros_like(values)
        offset = low if method == "minmax" else (low + high) / 2.0
        return (values - offset) / (high - low)
    if method == "zscore":
        mean, spread = float(basis.mean()), float(basis.std())
        if spread <= 0.0:
            return np.zeros_like(values)
        return (values - mean) / spread
    raise ValueError(f"unknown normalization {method!r}; use one of {', '.join(NORMALIZATIONS)}")


def _check_normalization(normalization: str) -> None:
    if normalization not in NORMALIZATIONS:
        raise ValueError(
            f"unknown normalization {normalization!r}; use one of {', '.join(NORMALIZATIONS)}"
        )


def _aligned(rankings: Sequence[Ranking]) -> tuple[np.ndarray, list[FloatArray]]:
    """Return the union of the rankings' documents and each list's scores over it.

    A document missing from a list gets that list's minimum score.
    """
    union, inverse = np.unique(np.concatenate([r.docs for r in rankings]), return_inverse=True)
    columns = []
    offset = 0
    for ranking in rankings:
        filled = np.full(len(union), ranking.scores.min() if ranking.size else 0.0)
        filled[inverse[offset : offset + ranking.size]] = ranking.scores
        offset += ranking.size
        columns.append(filled)
    return union, columns


def fuse(
    rankings: Sequence[Ranking],
    weights: Sequence[float],
    *,
    normalization: Normalization = "minmax",
    k: int | None = 1000,
) -> Ranking:
    """Return ``sum(weight * norm(list))`` over the union of one query's lists, best first."""
    if len(rankings) != len(weights):
        raise ValueError(f"{len(rankings)} rankings but {len(weights)} weights")
    _check_normalization(normalization)
    if not rankings or all(r.size == 0 for r in rankings):
        return Ranking.empty()
    union, columns = _aligned(rankings)
    combined = np.zeros(len(union))
    for weight, ranking, column in zip(weights, rankings, columns, strict=True):
        if weight != 0.0 and ranking.size:
            combined += weight * normalize(column, normalization, reference=ranking.scores)
    return Ranking(union, combined).best(k)


def maximum(rankings: Sequence[Ranking], *, k: int | None = None) -> Ranking:
    """Return each document's best score over the lists (a missing document takes the list's minimum)."""
    if not rankings or all(r.size == 0 for r in rankings):
        return Ranking.empty()
    union, columns = _aligned([r for r in rankings if r.size])
    return Ranking(union, np.max(np.vstack(columns), axis=0)).best(k)


def reciprocal_rank_fusion_query(
    rankings: Sequence[Ranking], *, rank_constant: int = RRF_K, k: int | None = 1000
) -> Ranking:
    """Return RRF of one query's lists: ``sum(1 / (rank_constant + rank))``, ranks from 1."""
    if rank_constant < 0:
        raise ValueError(f"rank_constant must be >= 0, got {rank_constant}")
    ordered = [r.best() for r in rankings if r.size]
    if not ordered:
        return Ranking.empty()
    union, inverse = np.unique(np.concatenate([r.docs for r in ordered]), return_inverse=True)
    contributions = np.concatenate(
        [1.0 / (rank_constant + np.arange(1, r.size + 1, dtype=np.float64)) for r in ordered]
    )
    totals = np.bincount(inverse, weights=contributions, minlength=len(union))
    return Ranking(union, totals.astype(np.float64)).best(k)


def _run_doc_ids(runs: Sequence[Runlike]) -> DocIds:
    return DocIds(doc_id for run in runs for scores in run.values() for doc_id in scores)


def interpolate(
    dense: Runlike,
    sparse: Runlike,
    alpha: float,
    *,
    normalization: Normalization = "minmax",
    k: int | None = 1000,
) -> Run:
    """Return ``alpha * norm(dense) + (1 - alpha) * norm(sparse)`` per query, over both lists' union."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    _check_normalization(normalization)
    doc_ids = _run_doc_ids([dense, sparse])
    dense_rankings, sparse_rankings = to_rankings(dense, doc_ids), to_rankings(sparse, doc_ids)
    empty = Ranking.empty()
    fused = {
        query_id: fuse(
            [dense_rankings.get(query_id, empty), sparse_rankings.get(query_id, empty)],
            [alpha, 1.0 - alpha],
            normalization=normalization,
            k=k,
        )
        for query_id in dict.fromkeys([*dense, *sparse])
    }
    return to_run(fused, doc_ids)


def reciprocal_rank_fusion(
    runs: Sequence[Runlike], *, rank_constant: int = RRF_K, k: int | None = 1000
) -> Run:
    """Return the RRF of ``runs``: each document scores ``sum(1 / (rank_constant + rank))``."""
    doc_ids = _run_doc_ids(runs)
    rankings = [to_rankings(run, doc_ids) for run in runs]
    empty = Ranking.empty()
    fused = {
        query_id: reciprocal_rank_fusion_query(
            [per_run.get(query_id, empty) for per_run in rankings],
            rank_constant=rank_constant,
            k=k,
        )
        for query_id in dict.fromkeys(q for run in runs for q in run)
    }
    return to_run(fused, doc_ids)
