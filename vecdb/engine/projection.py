"""Linear projections from ``d`` to ``d' < d`` dimensions for the primary (approximate) search.

Two families, as in LeanVec:

- **ID** (:func:`fit_pca`): principal components of the data. Queries and data share one matrix.
- **OOD** (:func:`fit_ood`): learned from a sample of queries as well as the data, so that
  query-document inner products survive the reduction when queries follow another distribution
  than the documents. Queries and data get *different* matrices ``A`` and ``B`` (``d' x d``) that
  minimise the LeanVec-OOD loss

      ||Qᵀ X - Qᵀ Aᵀ B X||²_F  =  tr((I - AᵀB)ᵀ Kq (I - AᵀB) Kx),

  with ``Kq = Q Qᵀ / m`` and ``Kx = X Xᵀ / n`` the second-moment matrices. Three solvers:

  ``"eigen"``
      ``A = B = P`` with orthonormal rows: the top eigenvectors of a blend
      ``(1 - β) Kx/‖Kx‖ + β Kq/‖Kq‖``, the blend weight ``β`` searched on a grid for the lowest
      loss.
  ``"frank_wolfe"``
      the paper's scheme: relax the orthonormal-row constraint to its convex hull (spectral norm
      at most 1) and alternate Frank-Wolfe steps on ``A`` and ``B``; each step's linear
      minimisation oracle is the SVD of the gradient (``-U Vᵀ``), and the step length is the exact
      minimiser of the quadratic along the step. Starts from the eigen solution.
  ``"closed_form"``
      the unconstrained optimum at rank ``d'``: with ``Kq^½ Kx^½ = U S Vᵀ``, queries map through
      ``U_d'ᵀ Kq^-½`` and data through ``S_d' V_d'ᵀ Kx^-½`` (Eckart-Young). Lowest loss, but the
      data side is whitened, which suits graph / cluster structures less well.

A few hundred training queries give a noisy ``Kq``, and every solver fits it exactly, including
its noise. :func:`choose_shrinkage` therefore picks, by k-fold cross-validation of the loss on
held-out training queries, how far to shrink ``Kq`` toward ``Kx`` first
(``(1 - λ) Kq/‖Kq‖ + λ Kx/‖Kx‖``, the ``shrinkage`` argument of :func:`fit_ood`).

Everything here is plain numpy on ``d x d`` matrices: fitting costs one pass over the data to form
``Kx`` plus a few hundred small factorisations, independent of the collection size afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from vecdb.engine.errors import InvalidArgument

FloatMatrix = NDArray[np.float32]
OodMethod = Literal["eigen", "frank_wolfe", "closed_form"]
OOD_METHODS: tuple[OodMethod, ...] = ("eigen", "frank_wolfe", "closed_form")

# Rows per block when forming second moments, to bound the temporary float64 copies.
_MOMENT_BLOCK_ROWS = 65_536

# Shrinkage weights choose_shrinkage cross-validates, and its folds of the training queries.
SHRINKAGE_GRID: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75)
SHRINKAGE_FOLDS = 4
# The shrinkage used when there are too few training queries to hold any out.
FEW_QUERIES_SHRINKAGE = 0.5


@dataclass(frozen=True)
class Projection:
    """A learned linear reduction: ``data_matrix`` for stored vectors, ``query_matrix`` for queries.

    Both matrices are ``(reduced_dim, dim)`` float32. For PCA they are the same array; reduced
    inner products approximate the full ones (``(A q)·(B x) ≈ q·x``), and for PCA also reduced
    squared distances approximate the full ones. ``offset`` (the data mean, used for squared
    distances only, where a common shift cancels) is subtracted from both sides first.
    """

    data_matrix: FloatMatrix
    query_matrix: FloatMatrix
    kind: Literal["pca", "ood"]
    method: str
    offset: FloatMatrix | None = None

    @property
    def dim(self) -> int:
        """The input dimension ``d``."""
        return int(self.data_matrix.shape[1])

    @property
    def reduced_dim(self) -> int:
        """The output dimension ``d'``."""
        return int(self.data_matrix.shape[0])

    def project_data(self, vectors: NDArray[np.floating]) -> FloatMatrix:
        """Return the stored vectors mapped to ``(n, reduced_dim)`` float32."""
        return _apply(self.data_matrix, vectors, self.offset)

    def project_queries(self, queries: NDArray[np.floating]) -> FloatMatrix:
        """Return the queries mapped to ``(m, reduced_dim)`` float32."""
        return _apply(self.query_matrix, queries, self.offset)


def _apply(
    matrix: FloatMatrix, vectors: NDArray[np.floating], offset: FloatMatrix | None
) -> FloatMatrix:
    if vectors.ndim != 2 or vectors.shape[1] != matrix.shape[1]:
        raise InvalidArgument(
            f"vectors of shape {vectors.shape} do not match the projection's input dimension "
            f"{matrix.shape[1]}"
        )
    rows = np.asarray(vectors, dtype=np.float32)
    if offset is not None:
        rows = rows - offset
    out: FloatMatrix = rows @ matrix.T
    return np.ascontiguousarray(out, dtype=np.float32)


def mean_of(vectors: NDArray[np.floating]) -> NDArray[np.float64]:
    """Return the mean row as float64, block-wise (works on memory maps)."""
    total = np.zeros(vectors.shape[1], dtype=np.float64)
    for start in range(0, vectors.shape[0], _MOMENT_BLOCK_ROWS):
        total += np.asarray(vectors[start : start + _MOMENT_BLOCK_ROWS], dtype=np.float64).sum(
            axis=0
        )
    mean: NDArray[np.float64] = total / max(1, vectors.shape[0])
    return mean


def second_moment(
    vectors: NDArray[np.floating], *, offset: NDArray[np.float64] | None = None
) -> NDArray[np.float64]:
    """Return ``E[(x - offset)(x - offset)ᵀ]`` as a float64 ``(d, d)`` matrix (block-wise)."""
    n, dim = vectors.shape
    if n == 0:
        raise InvalidArgument("cannot fit a projection on zero vectors")
    shift = np.zeros(dim, dtype=np.float32) if offset is None else offset.astype(np.float32)
    moment = np.zeros((dim, dim), dtype=np.float64)
    for start in range(0, n, _MOMENT_BLOCK_ROWS):
        block = np.asarray(vectors[start : start + _MOMENT_BLOCK_ROWS], dtype=np.float32) - shift
        # float32 products per block (fast BLAS), float64 accumulation across blocks.
        moment += (block.T @ block).astype(np.float64)
    moment /= n
    symmetric: NDArray[np.float64] = (moment + moment.T) / 2.0
    return symmetric


def _top_eigenvectors(matrix: NDArray[np.float64], count: int) -> NDArray[np.float64]:
    """Return the ``count`` leading eigenvectors of a symmetric matrix as rows."""
    values, vectors = np.linalg.eigh(matrix)
    order = np.argsort(values)[::-1][:count]
    return np.ascontiguousarray(vectors[:, order].T)


def _check_ood_arguments(
    queries: NDArray[np.floating], reduced_dim: int, dim: int, method: str
) -> None:
    _check_reduced_dim(reduced_dim, dim)
    if queries.ndim != 2 or queries.shape[1] != dim:
        raise InvalidArgument(
            f"training queries of shape {queries.shape} do not match the dimension {dim}"
        )
    if method not in OOD_METHODS:
        raise InvalidArgument(f"unknown OOD method {method!r}; allowed: {', '.join(OOD_METHODS)}")


def _check_reduced_dim(reduced_dim: int, dim: int) -> None:
    if not 1 <= reduced_dim <= dim:
        raise InvalidArgument(
            f"reduced_dim {reduced_dim} must be between 1 and the dimension {dim}"
        )


def fit_pca(
    data: NDArray[np.floating],
    reduced_dim: int,
    *,
    center: bool = False,
    moment: NDArray[np.float64] | None = None,
    mean: NDArray[np.float64] | None = None,
) -> Projection:
    """Return the LeanVec-ID projection: the top principal directions of the data.

    ``center=False`` uses the uncentred second moment, which keeps the mean direction (it carries
    real inner-product mass for embeddings) and suits inner products; ``center=True`` uses the
    covariance and subtracts the mean, which suits squared distances. ``moment`` (and ``mean``
    when centring) may pass precomputed statistics to fit several ``reduced_dim`` cheaply.
    """
    dim = int(data.shape[1])
    _check_reduced_dim(reduced_dim, dim)
    offset = None
    if center:
        offset = mean_of(data) if mean is None else mean
    kx = second_moment(data, offset=offset) if moment is None else moment
    with threadpool_limits(limits=1, user_api="blas"):
        basis = _top_eigenvectors(kx, reduced_dim).astype(np.float32)
    return Projection(
        basis,
        basis,
        kind="pca",
        method="centered" if center else "uncentered",
        offset=None if offset is None else offset.astype(np.float32),
    )


def ood_loss(
    query_matrix: NDArray[np.floating],
    data_matrix: NDArray[np.floating],
    query_moment: NDArray[np.float64],
    data_moment: NDArray[np.float64],
) -> float:
    """Return the LeanVec-OOD loss relative to ``tr(Kq Kx)`` (0 = inner products kept exactly)."""
    a = np.asarray(query_matrix, dtype=np.float64)
    b = np.asarray(data_matrix, dtype=np.float64)
    residual = np.eye(a.shape[1]) - a.T @ b
    loss = float(np.einsum("ij,ij->", residual.T @ query_moment @ residual, data_moment))
    return loss / float(np.einsum("ij,ji->", query_moment, data_moment))


def _normalized(moment: NDArray[np.float64]) -> NDArray[np.float64]:
    scale = float(np.linalg.norm(moment, 2))
    return moment / scale if scale > 0 else moment


def _fit_eigen(
    kq: NDArray[np.float64], kx: NDArray[np.float64], reduced_dim: int, grid: int
) -> tuple[NDArray[np.float64], float]:
    """Return the best orthonormal ``P`` (rows) over the blend grid and its blend weight."""
    kq_unit, kx_unit = _normalized(kq), _normalized(kx)
    best: tuple[float, NDArray[np.float64], float] | None = None
    for beta in np.linspace(0.0, 1.0, grid):
        basis = _top_eigenvectors((1.0 - beta) * kx_unit + beta * kq_unit, reduced_dim)
        loss = ood_loss(basis, basis, kq, kx)
        if best is None or loss < best[0]:
            best = (loss, basis, float(beta))
    assert best is not None
    return best[1], best[2]


def _spectral_lmo(gradient: NDArray[np.float64]) -> NDArray[np.float64]:
    """Return argmin over the spectral-norm unit ball of ``<gradient, S>``: ``-U Vᵀ``."""
    u, _, vt = np.linalg.svd(gradient, full_matrices=False)
    vertex: NDArray[np.float64] = -(u @ vt)
    return vertex


def _line_search(
    gradient: NDArray[np.float64], direction: NDArray[np.float64], curvature: float
) -> float:
    """Return the exact minimiser in [0, 1] of a quadratic along a Frank-Wolfe direction."""
    slope = float(np.einsum("ij,ij->", gradient, direction))
    if slope >= 0.0:
        return 0.0
    if curvature <= 0.0:
        return 1.0
    return min(1.0, -slope / (2.0 * curvature))


def _fit_frank_wolfe(
    kq: NDArray[np.float64],
    kx: NDArray[np.float64],
    start: NDArray[np.float64],
    iterations: int,
    tolerance: float,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Return ``(A, B)`` after alternating Frank-Wolfe steps from ``A = B = start``."""
    a = start.copy()
    b = start.copy()
    kqkx = kq @ kx
    previous = ood_loss(a, b, kq, kx)
    for _ in range(iterations):
        # Step on B with A fixed: f(B) = c - 2 tr(A Kq Kx Bᵀ) + tr(Bᵀ M B Kx), M = A Kq Aᵀ.
        m_a = a @ kq @ a.T
        grad_b = 2.0 * (m_a @ b @ kx - a @ kqkx)
        direction = _spectral_lmo(grad_b) - b
        curvature = float(np.einsum("ij,ij->", m_a @ direction @ kx, direction))
        b = b + _line_search(grad_b, direction, curvature) * direction
        # Step on A with B fixed: f(A) = c - 2 tr(B Kx Kq Aᵀ) + tr(A Kq Aᵀ N), N = B Kx Bᵀ.
        n_b = b @ kx @ b.T
        grad_a = 2.0 * (n_b @ a @ kq - b @ kqkx.T)
        direction = _spectral_lmo(grad_a) - a
        curvature = float(np.einsum("ij,ij->", n_b @ direction @ kq, direction))
        a = a + _line_search(grad_a, direction, curvature) * direction
        loss = ood_loss(a, b, kq, kx)
        if previous - loss <= tolerance * previous:
            break
        previous = loss
    return a, b


def _inverse_sqrt_and_sqrt(
    moment: NDArray[np.float64], regularization: float
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    values, vectors = np.linalg.eigh(moment)
    floor = regularization * max(float(values.max()), 1e-30)
    values = np.maximum(values, 0.0) + floor
    root = (vectors * np.sqrt(values)) @ vectors.T
    inverse_root = (vectors / np.sqrt(values)) @ vectors.T
    return inverse_root, root


def _fit_closed_form(
    kq: NDArray[np.float64], kx: NDArray[np.float64], reduced_dim: int, regularization: float
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    kq_inv_root, kq_root = _inverse_sqrt_and_sqrt(kq, regularization)
    kx_inv_root, kx_root = _inverse_sqrt_and_sqrt(kx, regularization)
    u, s, vt = np.linalg.svd(kq_root @ kx_root)
    a = u[:, :reduced_dim].T @ kq_inv_root
    b = (s[:reduced_dim, None] * vt[:reduced_dim]) @ kx_inv_root
    return a, b


def shrunk_moment(
    query_moment: NDArray[np.float64], data_moment: NDArray[np.float64], shrinkage: float
) -> NDArray[np.float64]:
    """Return ``(1 - λ) Kq/‖Kq‖ + λ Kx/‖Kx‖`` for ``λ = shrinkage`` (the solvers do not depend
    on the scale of ``Kq``, only on its shape)."""
    if not 0.0 <= shrinkage <= 1.0:
        raise InvalidArgument(f"shrinkage {shrinkage} is not allowed: use a value in [0, 1]")
    if shrinkage == 0.0:
        return query_moment
    blended: NDArray[np.float64] = (1.0 - shrinkage) * _normalized(
        query_moment
    ) + shrinkage * _normalized(data_moment)
    return blended


@dataclass(frozen=True)
class _Solver:
    """One OOD solver and its settings (see :func:`fit_ood`)."""

    method: OodMethod
    iterations: int
    tolerance: float
    eigen_grid: int
    regularization: float

    def solve(
        self, kq: NDArray[np.float64], kx: NDArray[np.float64], reduced_dim: int
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], str]:
        """Return ``(A, B, label)`` minimising the OOD loss for ``Kq``, ``Kx``."""
        # These are small d x d factorisations: threaded BLAS only adds contention here.
        with threadpool_limits(limits=1, user_api="blas"):
            if self.method == "closed_form":
                a, b = _fit_closed_form(kq, kx, reduced_dim, self.regularization)
                return a, b, "closed_form"
            basis, beta = _fit_eigen(kq, kx, reduced_dim, self.eigen_grid)
            if self.method == "eigen":
                return basis, basis, f"eigen(beta={beta:.2f})"
            a, b = _fit_frank_wolfe(kq, kx, basis, self.iterations, self.tolerance)
            return a, b, f"frank_wolfe(from beta={beta:.2f})"


@dataclass(frozen=True)
class ShrinkageChoice:
    """What :func:`choose_shrinkage` measured: the chosen weight and, per weight tried, the mean
    OOD loss on held-out training queries (empty when too few queries to hold any out)."""

    shrinkage: float
    held_out_loss: dict[float, float]
    folds: int


def choose_shrinkage(
    queries: NDArray[np.floating],
    data_moment: NDArray[np.float64],
    reduced_dim: int,
    *,
    method: OodMethod = "frank_wolfe",
    offset: NDArray[np.float64] | None = None,
    grid: tuple[float, ...] = SHRINKAGE_GRID,
    folds: int = SHRINKAGE_FOLDS,
    seed: int = 0,
    iterations: int = 60,
    tolerance: float = 1e-5,
    eigen_grid: int = 11,
    regularization: float = 1e-4,
) -> ShrinkageChoice:
    """Return the shrinkage of ``Kq`` toward ``Kx`` (see :func:`fit_ood`) whose fits keep the
    inner products of *unseen* queries best: k-fold cross-validation over the training queries,
    each fold fitted on the others and scored by the OOD loss on its own second moment. Ties go
    to the smaller weight. With fewer than two queries nothing can be held out, and
    :data:`FEW_QUERIES_SHRINKAGE` is returned.

    ``offset`` is subtracted from the queries first (the data mean, when fitting for squared
    distances); ``data_moment`` must be taken with the same offset.
    """
    dim = int(data_moment.shape[0])
    _check_ood_arguments(queries, reduced_dim, dim, method)
    if not grid or any(not 0.0 <= weight <= 1.0 for weight in grid):
        raise InvalidArgument(f"shrinkage grid {grid} is not allowed: use values in [0, 1]")
    m = len(queries)
    folds = min(folds, m)
    if folds < 2:
        return ShrinkageChoice(FEW_QUERIES_SHRINKAGE, {}, 0)
    parts = np.array_split(np.random.default_rng(seed).permutation(m), folds)
    # each part's sum of outer products, so that a fold's complement costs one subtraction
    sums = [second_moment(queries[np.sort(part)], offset=offset) * len(part) for part in parts]
    total = np.sum(sums, axis=0)
    solver = _Solver(method, iterations, tolerance, eigen_grid, regularization)
    losses = {weight: 0.0 for weight in grid}
    for part, part_sum in zip(parts, sums, strict=True):
        held_out = part_sum / len(part)
        fitted = (total - part_sum) / (m - len(part))
        for weight in grid:
            shrunk = shrunk_moment(fitted, data_moment, weight)
            a, b, _ = solver.solve(shrunk, data_moment, reduced_dim)
            losses[weight] += ood_loss(a, b, held_out, data_moment) / folds
    best = min(grid, key=lambda weight: (losses[weight], weight))
    return ShrinkageChoice(float(best), {float(w): float(v) for w, v in losses.items()}, folds)


def fit_ood(
    data: NDArray[np.floating],
    queries: NDArray[np.floating],
    reduced_dim: int,
    *,
    method: OodMethod = "frank_wolfe",
    shrinkage: float = 0.0,
    iterations: int = 60,
    tolerance: float = 1e-5,
    eigen_grid: int = 11,
    regularization: float = 1e-4,
    center: bool = False,
    data_moment: NDArray[np.float64] | None = None,
    query_moment: NDArray[np.float64] | None = None,
    mean: NDArray[np.float64] | None = None,
) -> Projection:
    """Return the LeanVec-OOD projection fitted on documents and a sample of queries.

    ``shrinkage`` (in [0, 1]) fits ``(1 - λ) Kq/‖Kq‖ + λ Kx/‖Kx‖`` instead of ``Kq``: a few
    hundred queries give a noisy ``Kq``, and :func:`choose_shrinkage` finds the weight that
    generalises to unseen queries. ``center`` subtracts the data mean from both sides first (for
    squared distances). ``data_moment`` / ``query_moment`` (and ``mean`` when centring) may pass
    precomputed statistics (``E[x xᵀ]`` of the shifted rows) so that several ``reduced_dim`` can
    be fitted without another pass over the data.
    """
    dim = int(data.shape[1])
    _check_ood_arguments(queries, reduced_dim, dim, method)
    offset = None
    if center:
        offset = mean_of(data) if mean is None else mean
    kx = second_moment(data, offset=offset) if data_moment is None else data_moment
    kq = second_moment(queries, offset=offset) if query_moment is None else query_moment
    solver = _Solver(method, iterations, tolerance, eigen_grid, regularization)
    a, b, label = solver.solve(shrunk_moment(kq, kx, shrinkage), kx, reduced_dim)
    if shrinkage:
        noted = f"shrinkage={shrinkage:.2f}"
        label = f"{label[:-1]}, {noted})" if label.endswith(")") else f"{label}({noted})"
    return Projection(
        np.ascontiguousarray(b, dtype=np.float32),
        np.ascontiguousarray(a, dtype=np.float32),
        kind="ood",
        method=label,
        offset=None if offset is None else offset.astype(np.float32),
    )
