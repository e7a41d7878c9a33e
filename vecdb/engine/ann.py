"""The approximate nearest-neighbour index: reduced, quantized, partitioned, then exactly reranked.

Search runs in two stages, as in LeanVec:

1. **Primary**: queries and rows are projected to ``d' < d`` dims (:mod:`vecdb.engine.projection`:
   PCA for in-distribution queries, LeanVec-OOD when training queries are given) and searched in a
   faiss structure over quantized codes of the reduced rows: an inverted file over 8-bit scalar
   codes (``IVF…,SQ8``) or over 4-bit fast-scan PQ codes with one or two dims per sub-quantizer
   (``IVF…,PQ…x4fs``, after a random rotation that spreads the variance the projection leaves in
   its first dims), or an HNSW graph over scalar codes (``HNSW…_SQ8``). The structure is described
   by its faiss ``index_factory`` string.
2. **Rerank**: the top ``k · rerank_factor`` candidates are re-scored exactly against the
   full-precision vectors the caller passes (an array or a memory map), as one gathered batch.

:meth:`AnnIndex.build` chooses every knob the caller leaves open by measuring recall@10 against
exact search on a tuning sample: up to 1000 of the training queries (which the OOD projection is
also fitted on, through their second moment), or sampled rows that each exclude themselves. A
point passes when its recall minus two standard errors reaches the target:

- the OOD shrinkage (first, when training queries are given): how far their second moment is
  shrunk toward the data's before fitting, by cross-validating the LeanVec-OOD loss on held-out
  training queries (:func:`vecdb.engine.projection.choose_shrinkage`);
- ``reduced_dim``: the smallest ``d'`` on a grid whose *flat* reduced search, reranked at
  ``rerank_factor`` 8, keeps recall above the target with half of the remaining error budget to
  spare for the quantizer and the structure;
- structure, code bits, graph degree / list count: each candidate is built and measured, the
  cheapest to reach the target wins (HNSW candidates only up to ``HNSW_AUTO_MAX_ROWS`` rows:
  above that a graph build alone costs more than the whole IVF path, and on the 200k generated
  set it lost to IVF; a caller may still ask for ``structure="hnsw"``);
- ``ef_search`` / ``nprobe`` and ``rerank_factor``: for each candidate the sweep takes, per
  ``ef_search`` / ``nprobe``, the smallest rerank factor reaching the target, prices that
  operating point for one query per call from the codes it scores (the rows of its lists, or
  the graph's distance computations) and the candidates it reranks, with the planner's measured
  constants, and keeps the cheapest: a count rather than a timing, so two builds of the same
  data choose the same point however busy the machine.

Rows are the positions ``0 .. covered_rows - 1`` of the collection's matrix; faiss ids are row
numbers. ``allowed`` masks go down to faiss as an ``IDSelectorBitmap`` so filtered rows are skipped
inside the structure, and are checked again on the candidates.

A filtered search keeps the recall the index was tuned for at any selectivity. On an IVF the
matching rows are counted per list (one ``bincount`` of their list ids) and each query probes the
lists holding matches in centroid order, skipping lists without any, until the matching rows
covered reach what the tuned ``nprobe`` covers for that query unfiltered times
``selectivity ** exponent``. Each IVF index measures its own exponents at a few selectivities
(:meth:`AnnIndex.calibrate_filters`: held-out queries under synthetic filters, the cheapest
exponent whose recall@10 keeps the recall target with a margin), saves them with the index, and
interpolates between them; ``FILTER_COVERAGE_EXPONENT`` is the default of an index without them.
A filter that many rows pass (``FILTER_WIDEN_MIN_SHARE``) skips the counting and ranking: the
nearest ``nprobe * selectivity ** (exponent - 1)`` lists are scanned with the filter as a
selector, which covers as many matching rows when the matches spread evenly; a query whose
scanned lists held fewer matches than it reranks falls back to the counted probing. The
calibration measures broad filters on that scan, and where no exponent keeps it on target,
broad filters take the counted probing instead (:attr:`AnnIndex.widen_min_share`). It also
chooses each selectivity's rerank factor (``FILTER_CALIBRATION_RERANK``): keeping more
candidates from fewer lists can cost less when only the matching share of the scanned codes can
become candidates (:meth:`AnnIndex.filter_rerank_factor`).
On HNSW ``ef_search`` grows by ``selectivity ** -FILTER_COVERAGE_EXPONENT``.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, NamedTuple

import faiss
import numpy as np
from numpy.typing import NDArray

from vecdb.engine import planner
from vecdb.engine import projection as projections
from vecdb.engine.errors import DimensionMismatch, InvalidArgument
from vecdb.engine.projection import Projection

Metric = Literal["cosine", "ip", "l2"]
Structure = Literal["hnsw", "ivf"]
ProjectionKind = Literal["pca", "ood"]
Progress = Callable[[str, float], None]

METRICS: tuple[Metric, ...] = ("cosine", "ip", "l2")
FORMAT_VERSION = 1
RECALL_K = 10
# Candidate rerank factors tried by the sweep (the rerank set for a smaller factor is a prefix).
RERANK_FACTORS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32)
# Rerank factor and query count of the flat check that picks d'.
FLAT_CHECK_RERANK = 8
FLAT_CHECK_QUERIES = 300
IVF_PROBES = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)
HNSW_EF = (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024)
HNSW_AUTO_MAX_ROWS = 100_000
HNSW_DEGREES = (16, 32)
HNSW_QUANTIZER_MIN_LISTS = 2048
HNSW_QUANTIZER_DEGREE = 32
MAX_TUNE_QUERIES = 1000
# Cross-validating the OOD shrinkage (projection.choose_shrinkage) fits every fold once per
# weight: folds, Frank-Wolfe iterations and eigen blend grid are cut down for it (the final fit
# uses the full ones), which keeps it to seconds at d = 384.
SHRINKAGE_CV_FOLDS = 3
SHRINKAGE_CV_ITERATIONS = 15
SHRINKAGE_CV_EIGEN_GRID = 6
# Standard errors of margin a tuned point needs above the target: the sample is finite and the
# cheapest passing point of many tried is biased upwards (winner's curse).
TUNE_MARGIN_ERRORS = 2.0
# k-means training rows per list for the coarse quantizer (faiss runs 10 iterations), and the
# fewest rows per list the default list count allows.
IVF_TRAIN_ROWS_PER_LIST = 20
IVF_MIN_ROWS_PER_LIST = 39
# Rows per block when projecting or scanning the full matrix (bounds temporary memory).
BLOCK_ROWS = 65_536
# Queries per block when ranking every centroid for them (bounds the distance matrix).
RANK_BLOCK_QUERIES = 2048
# Bytes of gathered full-precision candidates per rerank block.
RERANK_BLOCK_BYTES = 32 << 20
# A filtered IVF search covers (unfiltered coverage) * selectivity ** FILTER_COVERAGE_EXPONENT
# matching rows (the exponent lives in the planner, which prices the same search). With matches
# spread evenly an exponent of 1 keeps nprobe as tuned, but the k nearest of a fraction s of the
# rows are about the k/s nearest of all of them, a wider region that needs more probes; 0 covers
# as many matching rows as the unfiltered search covers rows. Measured on the 1M generated set
# (384-d, IVF4096, PQ128x4fs, tuned nprobe 64 for recall 0.958, 100 queries, attributes
# correlated with the vectors), recall@10 with 0.5 was 0.995 at s = 0.01 (712 lists probed),
# 0.987 at s = 0.1 (502 lists); 0.4 gave 1.000 and 0.992 for a third more lists, 0.3 1.000 and
# 0.995 for 80% more. On seeded clustered data where a fifth of the matching rows are scattered
# (20k rows, 256 lists, nprobe 8, unfiltered recall 0.97, a 5% filter) 0.5 gave 0.91, 0.35 0.95,
# and the tuned nprobe with a selector alone 0.50.
FILTER_COVERAGE_EXPONENT = planner.FILTER_COVERAGE_EXPONENT
# The exponent an index needs depends on how its data clusters, so each IVF index measures its
# own (``AnnIndex.calibrate_filters``, at build, or once on load for an index saved without
# one): held-out queries under synthetic filters of a few selectivities, random and following
# the lists (whole lists plus a sprinkle of rows from everywhere, as topic-correlated
# attributes are), the exponent tried from the cheapest down until recall@10 minus
# TUNE_MARGIN_ERRORS standard errors reaches the index's recall target under every filter; when
# a cheaper one missed, the exponent halfway between the two is tried as well.
# Each filter is searched through the plan its selectivity gets (counted probing below
# FILTER_WIDEN_MIN_SHARE, the widened scan from it), so the exponent is measured on the search
# that will use it; when the widened scan misses the target at every exponent (a fixed set of
# nearest lists misses the matches of queries whose matches lie elsewhere, which counted
# probing goes on to find), broad filters take counted probing instead.
FILTER_CALIBRATION_EXPONENTS = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2)
FILTER_CALIBRATION_SELECTIVITIES = (0.01, 0.1)
# A filtered search finds its candidates among scanned codes of which only the matching ones
# count, so a larger rerank (more candidates kept from fewer lists) can cost less than the
# tuned one at the same recall. Each selectivity is calibrated with the tuned rerank factor
# times each of these, and keeps the one whose passing exponent costs least, priced from the
# codes scanned, the rows scored exactly and the candidates reranked of its calibration
# searches with the planner's constants (a count, so the choice does not depend on how busy the
# machine is). Measured on the 1M generated set (IVF4096 PQ128x4fs, nprobe 128, rerank 6,
# 200 queries, one at a time): at 10% matching, exponent 0.85 with rerank 12 ran 1.18x the
# queries per second of 0.75 with rerank 6 at equal recall@10 (0.983 / 0.985).
FILTER_CALIBRATION_RERANK = (1, 2, 4)
# As many held-out queries as the build's tuning keeps: the margin of TUNE_MARGIN_ERRORS standard
# errors shrinks with the square root of the queries, so a larger sample lets the calibration keep
# a cheaper exponent at the same confidence (the exact filtered truth it needs, one product per
# filter, is most of its cost).
FILTER_CALIBRATION_QUERIES = MAX_TUNE_QUERIES
# share of a list-following calibration filter's rows drawn from everywhere
FILTER_CALIBRATION_SCATTER = 0.1
# Up to this share of the rows matching, a mask is turned into rows so the matches per list are
# counted exactly and lists holding few of them can be replaced by exact scores of those rows.
FILTER_ROWS_MAX_SHARE = 0.0625
# Rows sampled per list when counting a filter's matches per list: matching rows when the
# caller has them as rows, else rows of the mask (beyond this a strided sample suffices).
FILTER_COUNT_SAMPLE_PER_LIST = 16
# From this share of the rows matching, a filtered IVF search scans the nearest lists, as many as
# cover the rows the counted probing would cover were the matches spread evenly (nprobe *
# selectivity ** (exponent - 1)), with the filter as a selector: no per-query count, ranking or
# exact scoring of the lists holding matches. A query whose scanned lists held fewer than
# k * rerank_factor matching rows is searched by counted probing instead. Measured on the 1M
# generated set (200 queries, attributes correlated with the vectors, one at a time): at 10%
# matching, recall@10 0.982 at 1.2x the queries per second of counted probing (0.980); at 50%,
# 0.968 at 1.0-1.2x the post-filter plan (0.960) in two runs, no query falling back. On seeded
# clusters with queries far from every match (tests/unit/engine/test_planner.py) the fallback
# keeps recall at 0.83, counted probing alone 0.85.
FILTER_WIDEN_MIN_SHARE = planner.FILTER_WIDEN_MIN_SHARE

_FILES = ("meta.json", "projection.npz", "structure.faiss")
# written with the index, or later once an index saved without it is calibrated
FILTER_FILE = "filter.json"
# the rule a calibration was measured by: 5 as 4, choosing each selectivity's rerank factor
# with its exponent (FILTER_CALIBRATION_RERANK); 4 as 3, with the widened scan on the exactly nearest
# lists (before, the lists came from the structure's quantizer, which for a graph quantizer
# returns fewer lists than asked past its efSearch, and not the nearest ones); 3 measures a broad
# filter on the widened scan it gets, and where no exponent keeps that scan on target, on counted
# probing, which its searches then take (see AnnIndex.widen_min_share); 1 measured every
# selectivity on counted probing and kept the widened scan. An index loaded with an older
# calibration calibrates again, once.
FILTER_CALIBRATION_VERSION = 5


@dataclass(frozen=True)
class AnnConfig:
    """The index knobs. At build, ``None`` fields are chosen by measurement; after build all the
    fields that apply to the chosen structure are set (``ef_search`` / ``graph_degree`` for HNSW,
    ``list_count`` / ``nprobe`` for IVF).

    ``code_bits`` is the code size per reduced dim: 8 means 8-bit scalar codes (``SQ8``); for IVF,
    4 means fast-scan PQ with one dim per 4-bit sub-quantizer and 2 means two dims per 4-bit
    sub-quantizer; for HNSW, 4 means 4-bit scalar codes (``SQ4``).
    ``index_factory`` is the faiss string of the primary structure over the ``reduced_dim``-dim
    codes (e.g. ``"IVF1024,SQ8"``); a caller may pass one to pin the structure outright.
    """

    projection: ProjectionKind | None = None
    reduced_dim: int | None = None
    code_bits: int | None = None
    structure: Structure | None = None
    graph_degree: int | None = None
    list_count: int | None = None
    ef_search: int | None = None
    nprobe: int | None = None
    rerank_factor: int | None = None
    index_factory: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> AnnConfig:
        """Return a config from :meth:`to_dict` output (unknown keys are an error)."""
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(values) - known
        if unknown:
            raise InvalidArgument(
                f"unknown index settings {sorted(unknown)}; allowed: {sorted(known)}"
            )
        return cls(**values)


@dataclass(frozen=True)
class OperatingPoint:
    """One measured setting of the sweep: recall@10 after rerank and modelled seconds per query
    (one query per call, see ``_Builder._cost``)."""

    index_factory: str
    reduced_dim: int
    knob: int
    rerank_factor: int
    recall: float
    seconds_per_query: float


class _Bound(NamedTuple):
    """One filter calibration point: the lowest recall bound over its filters, the modelled
    seconds per query of their searches, and the exponent, rerank factor and plan measured."""

    lowest: float
    cost: float
    exponent: float
    rerank: int
    widen: bool


@dataclass
class TuningReport:
    """What the build measured: the flat check per ``d'`` and the swept operating points."""

    tune_queries: int
    held_out: str
    # OOD only: how far the training queries' second moment was shrunk toward the data's, and
    # the held-out loss of each weight cross-validated (see projection.choose_shrinkage)
    ood_shrinkage: float | None = None
    shrinkage_losses: dict[float, float] = field(default_factory=dict)
    flat_recall: dict[int, float] = field(default_factory=dict)
    points: list[OperatingPoint] = field(default_factory=list)
    candidates: dict[str, float] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# small helpers


def _as_matrix(name: str, values: Any, dim: int | None = None) -> NDArray[np.float32]:
    array = np.asarray(values)
    if array.ndim != 2:
        raise InvalidArgument(f"{name} must be a 2-d array (rows, dim), got shape {array.shape}")
    if dim is not None and array.shape[1] != dim:
        raise DimensionMismatch(f"{name} have dimension {array.shape[1]}, the index has {dim}")
    if not np.issubdtype(array.dtype, np.floating):
        raise InvalidArgument(f"{name} must be floating point, got {array.dtype}")
    return np.ascontiguousarray(array, dtype=np.float32)


def _normalise(rows: NDArray[np.float32]) -> NDArray[np.float32]:
    norms = np.sqrt(np.einsum("ij,ij->i", rows, rows))
    out: NDArray[np.float32] = rows / np.maximum(norms, np.float32(1e-30))[:, None]
    return out.astype(np.float32, copy=False)


def _blocks(total: int, size: int) -> Iterator[tuple[int, int]]:
    for start in range(0, total, size):
        yield start, min(total, start + size)


def _pow2_near(value: float) -> int:
    return int(2 ** max(0, round(math.log2(max(value, 1.0)))))


def _default_list_count(rows: int) -> int:
    """Return about ``4·√n`` lists, a power of two, with at least 39 rows per list."""
    count = _pow2_near(4.0 * math.sqrt(rows))
    while count > 1 and count * IVF_MIN_ROWS_PER_LIST > rows:
        count //= 2
    return count


def _dim_grid(dim: int) -> list[int]:
    """Return the candidate reduced dims for input dimension ``dim`` (ascending)."""
    if dim <= 16:
        return [dim]
    fractions = (1 / 12, 1 / 8, 1 / 6, 1 / 4, 1 / 3, 5 / 12, 1 / 2, 2 / 3, 3 / 4)
    grid = {max(8, round(dim * f / 8) * 8) for f in fractions}
    return sorted(d for d in grid if d < dim) or [dim]


def _fsync_write(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _faiss_metric(metric: Metric) -> int:
    return int(faiss.METRIC_L2 if metric == "l2" else faiss.METRIC_INNER_PRODUCT)


def _structure_of(index: Any) -> Structure:
    if isinstance(index, faiss.IndexHNSW):
        return "hnsw"
    if faiss.try_extract_index_ivf(index) is not None:
        return "ivf"
    raise InvalidArgument("the index_factory string must describe an HNSW or IVF structure")


def _factory_string(
    structure: Structure, reduced_dim: int, code_bits: int, degree_or_lists: int
) -> str:
    if structure == "hnsw":
        if code_bits not in (4, 8):
            raise InvalidArgument(f"code_bits {code_bits} is not supported for hnsw; allowed: 4, 8")
        return f"HNSW{degree_or_lists}_SQ{code_bits}"
    lists = str(degree_or_lists)
    if degree_or_lists >= HNSW_QUANTIZER_MIN_LISTS:
        # Many lists: a small HNSW graph over the centroids assigns the rows at build in
        # O(log lists) instead of a scan of all centroids. Searches rank the centroids exactly
        # (one product per query block): the graph returns fewer lists than asked once nprobe
        # passes its efSearch, and not the nearest ones (AnnIndex._candidates).
        lists += f"_HNSW{HNSW_QUANTIZER_DEGREE}"
    if code_bits == 8:
        return f"IVF{lists},SQ8"
    if code_bits == 4:
        return f"IVF{lists},PQ{reduced_dim}x4fs"
    if code_bits == 2:
        return f"IVF{lists},PQ{max(1, reduced_dim // 2)}x4fs"
    raise InvalidArgument(f"code_bits {code_bits} is not supported for ivf; allowed: 2, 4, 8")


def _list_count(factory: str) -> int:
    """Return the IVF list count a factory string asks for (0 when it is not an IVF)."""
    head = factory.split(",")[0]
    if not head.startswith("IVF"):
        return 0
    digits = "".join(ch for ch in head[3:] if ch.isdigit() or ch == "_").split("_")[0]
    return int(digits) if digits else 0


def _needs_rotation(factory: str) -> bool:
    # PQ sub-quantizers get equal bits: a rotation evens out the variance a projection leaves
    # concentrated in its first dims. Scalar codes keep per-dim ranges and need none.
    return ",PQ" in factory


def _random_rotation(dim: int, seed: int) -> NDArray[np.float32]:
    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.standard_normal((dim, dim)))
    return (q * np.sign(np.diag(r))).astype(np.float32)


def _rotated(projection: Projection, rotation: NDArray[np.float32]) -> Projection:
    return replace(
        projection,
        data_matrix=np.ascontiguousarray(rotation @ projection.data_matrix),
        query_matrix=np.ascontiguousarray(rotation @ projection.query_matrix),
    )


# --------------------------------------------------------------------------------------------
# exact scoring


def _worst(metric: Metric) -> float:
    return math.inf if metric == "l2" else -math.inf


def _exact_scores(
    queries: NDArray[np.float32],
    candidates: NDArray[np.int64],
    vectors: NDArray[Any],
    metric: Metric,
    norms: NDArray[np.float32] | None = None,
) -> NDArray[np.float32]:
    """Return exact scores of each query against its candidate rows (``-1`` gets the worst score).

    ``queries`` are already normalised for cosine. With float32 rows and (for cosine) their
    norms, faiss scores the rows where they lie; otherwise one gather of all candidate rows, then
    one batched matrix product. No Python loop over candidates either way.
    """
    m, count = candidates.shape
    flat = candidates.reshape(-1)
    invalid = flat < 0
    padded = bool(invalid.any())
    ids = np.ascontiguousarray(np.where(invalid, 0, flat) if padded else flat, dtype=np.int64)
    in_place = (
        vectors.dtype == np.float32
        and vectors.flags.c_contiguous
        and (metric != "cosine" or norms is not None)
    )
    if in_place:
        scored = _scores_in_place(queries, ids, vectors, metric, norms, m, count)
        if padded:
            scored[invalid.reshape(m, count)] = _worst(metric)
        return scored
    rows = np.take(vectors, ids, axis=0)
    if rows.dtype != np.float32:
        rows = rows.astype(np.float32)
    dots = np.matmul(rows.reshape(m, count, -1), queries[:, :, None]).reshape(m, count)
    if metric == "ip":
        scores = dots
    else:
        squares = np.einsum("ij,ij->i", rows, rows).reshape(m, count)
        if metric == "cosine":
            scores = dots / np.sqrt(np.maximum(squares, np.float32(1e-30)))
        else:
            query_squares = np.einsum("ij,ij->i", queries, queries)[:, None]
            scores = np.maximum(query_squares - 2.0 * dots + squares, 0.0)
    out: NDArray[np.float32] = scores.astype(np.float32, copy=False)
    if padded:
        out[invalid.reshape(m, count)] = _worst(metric)
    return out


def _scores_in_place(
    queries: NDArray[np.float32],
    ids: NDArray[np.int64],
    vectors: NDArray[np.float32],
    metric: Metric,
    norms: NDArray[np.float32] | None,
    m: int,
    count: int,
) -> NDArray[np.float32]:
    """Return the ``(m, count)`` scores of ``queries`` against rows ``ids`` of ``vectors`` (the
    ``count`` ids of each query in turn), computed by faiss on the rows where they lie."""
    # named, so the arrays faiss reads outlive the call
    x = np.ascontiguousarray(queries, dtype=np.float32)
    out = np.empty((m, count), dtype=np.float32)
    score: Any = (
        faiss.fvec_L2sqr_by_idx  # type: ignore[attr-defined]
        if metric == "l2"
        else faiss.fvec_inner_products_by_idx  # type: ignore[attr-defined]
    )
    score(
        faiss.swig_ptr(out),
        faiss.swig_ptr(x),
        faiss.swig_ptr(vectors),
        faiss.swig_ptr(ids),
        vectors.shape[1],
        m,
        count,
    )
    if metric == "cosine":
        assert norms is not None
        out /= np.maximum(norms[ids].reshape(m, count), np.float32(1e-30))
    elif metric == "l2":
        np.maximum(out, 0.0, out=out)
    return out


def _top_k(
    scores: NDArray[np.float32], rows: NDArray[np.int64], k: int, metric: Metric
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """Return the best ``k`` (scores, rows) per line, best first, padded with worst / -1.

    Equal scores keep their input order (a stable sort), so results are deterministic.
    """
    m, count = scores.shape
    keyed = scores if metric == "l2" else -scores
    base = (np.arange(m, dtype=np.int64) * count)[:, None]
    if count > 4 * k:
        part = np.argpartition(keyed, k - 1, axis=1)[:, :k]
        # Restore input order inside the partition so the stable sort below stays deterministic.
        part.sort(axis=1)
        flat = (part + base).reshape(-1)
        keyed = keyed.reshape(-1)[flat].reshape(m, k)
        scores = scores.reshape(-1)[flat].reshape(m, k)
        rows = rows.reshape(-1)[flat].reshape(m, k)
        count, base = k, (np.arange(m, dtype=np.int64) * k)[:, None]
    order = np.argsort(keyed, axis=1, kind="stable")[:, :k]
    flat = (order + base).reshape(-1)
    width = order.shape[1]
    top_scores = scores.reshape(-1)[flat].reshape(m, width)
    top_rows = rows.reshape(-1)[flat].reshape(m, width)
    top_rows = np.where(np.isfinite(top_scores), top_rows, -1)
    if width < k:
        pad = k - width
        top_scores = np.pad(top_scores, ((0, 0), (0, pad)), constant_values=_worst(metric))
        top_rows = np.pad(top_rows, ((0, 0), (0, pad)), constant_values=-1)
    return top_scores.astype(np.float32, copy=False), top_rows.astype(np.int64, copy=False)


def exact_search(
    queries: NDArray[np.float32],
    vectors: NDArray[Any],
    k: int,
    metric: Metric,
    *,
    rows: int | None = None,
    exclude: NDArray[np.int64] | None = None,
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """Return the exact top ``k`` (scores, rows) of each query over the first ``rows`` rows.

    Block-wise over the matrix (works on memory maps), each block through faiss' brute-force
    kernels. ``exclude`` gives per query one row to leave out (a query sampled from the rows
    themselves). Cosine normalises the rows of each block; queries must come normalised.
    """
    total = int(vectors.shape[0] if rows is None else rows)
    m = queries.shape[0]
    width = k + (0 if exclude is None else 1)
    faiss_metric = _faiss_metric(metric)
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    best_scores = np.full((m, 0), _worst(metric), dtype=np.float32)
    best_rows = np.full((m, 0), -1, dtype=np.int64)
    for start, stop in _blocks(total, BLOCK_ROWS):
        block = np.ascontiguousarray(vectors[start:stop], dtype=np.float32)
        if metric == "cosine":
            block = _normalise(block)
        scores, found = faiss.knn(queries, block, min(width, stop - start), metric=faiss_metric)
        found = np.where(found >= 0, found + start, -1)
        best_scores, best_rows = _top_k(
            np.concatenate([best_scores, scores], axis=1),
            np.concatenate([best_rows, found], axis=1),
            width,
            metric,
        )
    if exclude is not None:
        keep = best_rows != exclude[:, None]
        scores = np.where(keep, best_scores, _worst(metric)).astype(np.float32)
        best_scores, best_rows = _top_k(scores, np.where(keep, best_rows, -1), k, metric)
    return best_scores[:, :k], best_rows[:, :k]


def _recall(found: NDArray[np.int64], truth: NDArray[np.int64]) -> float:
    """Return the mean fraction of each truth row set found (``-1`` never matches)."""
    k = truth.shape[1]
    hits = (found[:, :, None] == truth[:, None, :]) & (truth[:, None, :] >= 0)
    return float(hits.any(axis=1).sum() / max(1, (truth >= 0).sum())) if k else 0.0


# --------------------------------------------------------------------------------------------
# the index


class AnnIndex:
    """A trained primary structure plus its projection; search reranks against the caller's rows."""

    def __init__(
        self,
        *,
        metric: Metric,
        dim: int,
        projection: Projection,
        structure: Any,
        config: AnnConfig,
        covered_rows: int,
        measured_recall: float,
        build_seconds: float,
        report: TuningReport | None = None,
        filter_calibration: dict[str, Any] | None = None,
    ) -> None:
        self.metric: Metric = metric
        self.dim = dim
        self.projection = projection
        self.config = config
        self.covered_rows = covered_rows
        self.measured_recall = measured_recall
        self.build_seconds = build_seconds
        self.report = report
        # what calibrate_filters measured (None: not calibrated, the default exponent applies)
        self.filter_calibration = filter_calibration
        self._structure = structure
        self._memory_bytes: int | None = None
        self._plain_params: dict[int, Any] = {}
        # IVF only, built on first filtered search: each row's list, list sizes, centroids, and
        # the strided sample of rows (with their lists) that counts a mask's matches per list
        self._list_of_row: NDArray[np.int32] | None = None
        self._list_sizes: NDArray[np.int64] | None = None
        self._centroids: NDArray[np.float32] | None = None
        self._ivf: Any = None
        self._sample: tuple[int, NDArray[np.int32]] | None = None
        self._scan_cost: float | None = None
        self._graph: bool | None = None

    # ---------------------------------------------------------------- build

    @classmethod
    def build(
        cls,
        vectors: NDArray[Any],
        metric: Metric = "cosine",
        recall_target: float = 0.95,
        train_queries: NDArray[Any] | None = None,
        config: AnnConfig | None = None,
        progress: Progress | None = None,
        seed: int = 0,
    ) -> AnnIndex:
        """Return an index over all rows of ``vectors``, its knobs chosen to reach ``recall_target``.

        ``train_queries`` (real queries) switch the projection to LeanVec-OOD (fitted on all of
        them) and are what recall is measured on (a sample of up to 1000); without them the
        projection is PCA and recall is measured on sampled rows (each excluding itself).
        """
        started = time.perf_counter()
        builder = _Builder(vectors, metric, recall_target, train_queries, config, progress, seed)
        index = builder.run()
        index.build_seconds = time.perf_counter() - started
        return index

    @property
    def widen_min_share(self) -> float:
        """Return the share of rows matching from which a filtered search scans the nearest
        lists widened: ``FILTER_WIDEN_MIN_SHARE``, or never (inf) when the calibration found
        that scan short of the recall target at a broad selectivity (counted probing then)."""
        calibration = self.filter_calibration
        if calibration is None or all(calibration.get("widened", {}).values()):
            return FILTER_WIDEN_MIN_SHARE
        return math.inf

    @property
    def filter_exponents(self) -> tuple[tuple[float, float], ...]:
        """Return the (selectivity, coverage exponent) points of filtered IVF searches: the
        calibrated ones, else the default at every selectivity."""
        if self.filter_calibration is None:
            return ((1.0, FILTER_COVERAGE_EXPONENT),)
        return tuple(
            (float(share), float(power))
            for share, power in sorted(
                self.filter_calibration["exponents"].items(), key=lambda item: float(item[0])
            )
        )

    def filter_rerank_factor(self, selectivity: float) -> int:
        """Return the rerank factor of a filtered IVF search at ``selectivity``: the calibrated
        ones (geometric between them, the nearest one's outside), else the tuned one."""
        tuned = int(self.config.rerank_factor or 1)
        calibration = self.filter_calibration
        factors = None if calibration is None else calibration.get("rerank_factors")
        if not factors:
            return tuned
        points = tuple((float(share), math.log(float(f))) for share, f in factors.items())
        return max(1, round(math.exp(planner.by_selectivity(points, selectivity))))

    # ---------------------------------------------------------------- search

    def search(
        self,
        queries: NDArray[Any],
        k: int,
        *,
        vectors: NDArray[Any],
        allowed: NDArray[np.bool_] | None = None,
        ef_search: int | None = None,
        nprobe: int | None = None,
        rerank_factor: int | None = None,
        allowed_rows: NDArray[np.int64] | None = None,
        stats: dict[str, float] | None = None,
        allowed_count: int | None = None,
        norms: NDArray[np.float32] | None = None,
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """Return ``(scores, rows)`` of shape ``(m, k)``, best first, padded with worst / -1.

        Scores are similarities for cosine / ip (higher is better) and squared distances for l2.
        ``vectors`` holds the full-precision rows (at least ``covered_rows``) for the rerank;
        ``allowed`` (bool, length at least ``covered_rows``) restricts the rows returned, and the
        search widens with the share of rows it allows (see the module notes). ``allowed_rows``
        may pass the same rows as an array (in any order) when the caller has it (saves one pass), and
        ``allowed_count`` how many of the first ``covered_rows`` it allows when the caller has
        counted them (saves another). ``norms`` may give the rows' L2 norms (float32, at least
        ``covered_rows``): the rerank then scores rows in place, without gathering copies of them.
        ``stats``, when given, receives ``lists_probed`` and ``codes_scanned`` per query and the
        ``rerank_factor`` used (filtered IVF).
        """
        if not isinstance(k, (int, np.integer)) or k < 1:
            raise InvalidArgument(f"k must be a positive integer, got {k!r}")
        query_matrix = _as_matrix("queries", queries, self.dim)
        if not np.isfinite(query_matrix).all():
            raise InvalidArgument("queries contain NaN or infinite values")
        if (
            vectors.ndim != 2
            or vectors.shape[1] != self.dim
            or vectors.shape[0] < self.covered_rows
        ):
            raise InvalidArgument(
                f"vectors of shape {vectors.shape} must have at least {self.covered_rows} rows of "
                f"dimension {self.dim}"
            )
        mask = None
        if allowed is not None:
            mask = np.asarray(allowed)
            if mask.dtype != np.bool_ or mask.ndim != 1 or mask.shape[0] < self.covered_rows:
                raise InvalidArgument(
                    f"allowed must be a bool vector of length >= {self.covered_rows}, got "
                    f"{mask.dtype} of shape {mask.shape}"
                )
            mask = mask[: self.covered_rows]
        if norms is not None and (
            norms.dtype != np.float32 or norms.ndim != 1 or norms.shape[0] < self.covered_rows
        ):
            raise InvalidArgument(
                f"norms must be a float32 vector of length >= {self.covered_rows}, got "
                f"{norms.dtype} of shape {norms.shape}"
            )
        factor = self.config.rerank_factor if rerank_factor is None else rerank_factor
        if factor is None or factor < 1:
            raise InvalidArgument(f"rerank_factor must be >= 1, got {factor!r}")
        knob = self._knob(ef_search, nprobe)
        if len(query_matrix) == 0:
            return np.empty((0, int(k)), dtype=np.float32), np.empty((0, int(k)), dtype=np.int64)
        if self.metric == "cosine":
            query_matrix = _normalise(query_matrix)
        if mask is not None and self.config.structure == "ivf":
            if allowed_rows is not None:
                if len(allowed_rows) and int(allowed_rows.max()) >= self.covered_rows:
                    allowed_rows = allowed_rows[allowed_rows < self.covered_rows]
                allowed_count = len(allowed_rows)
            elif allowed_count is None:
                allowed_count = int(np.count_nonzero(mask))
            if rerank_factor is None:
                factor = self.filter_rerank_factor(allowed_count / max(self.covered_rows, 1))
            if stats is not None:
                stats["rerank_factor"] = float(factor)
            return self._search_ivf_filtered(
                query_matrix,
                int(k),
                vectors,
                mask,
                allowed_rows,
                knob,
                int(factor),
                stats,
                matching=allowed_count,
                norms=norms,
            )
        if mask is not None:
            share = max(float(np.count_nonzero(mask)), 1.0) / max(self.covered_rows, 1)
            knob = min(self.covered_rows, math.ceil(knob * share**-FILTER_COVERAGE_EXPONENT))
        return self._search(query_matrix, int(k), vectors, mask, knob, int(factor), norms=norms)

    def _knob(self, ef_search: int | None, nprobe: int | None) -> int:
        if self.config.structure == "hnsw":
            value = self.config.ef_search if ef_search is None else ef_search
        else:
            value = self.config.nprobe if nprobe is None else nprobe
        if value is None or value < 1:
            raise InvalidArgument(f"ef_search / nprobe must be >= 1, got {value!r}")
        return int(value)

    def _params(self, knob: int, mask: NDArray[np.bool_] | None) -> tuple[Any, Any]:
        """Return faiss search parameters and the bitmap they point into (keep it alive)."""
        if mask is None:
            # Unfiltered parameters are read-only in faiss: build once per knob, share.
            cached = self._plain_params.get(knob)
            if cached is None:
                cached = self._plain_params[knob] = self._new_params(knob)
            return cached, None
        bitmap = np.packbits(mask, bitorder="little")
        selector = faiss.IDSelectorBitmap(self.covered_rows, faiss.swig_ptr(bitmap))
        params = self._new_params(knob)
        params.sel = selector
        return params, (bitmap, selector)

    def _scan_lists(
        self,
        ivf: Any,
        reduced: NDArray[np.float32],
        assign: NDArray[np.int64],
        coarse: NDArray[np.float32],
        count: int,
        mask: NDArray[np.bool_] | None,
    ) -> NDArray[np.int64]:
        """Return each query's ``count`` best matching rows among the lists in its row of
        ``assign`` (-1 skips a slot), scanned with the mask (if any) as a selector; -1 pads."""
        m, width = assign.shape
        params, keep_alive = self._params(width, mask)
        found_distances = np.empty((m, count), dtype=np.float32)
        found = np.empty((m, count), dtype=np.int64)
        # named, so the arrays faiss reads outlive the call
        queries = np.ascontiguousarray(reduced, dtype=np.float32)
        lists = np.ascontiguousarray(assign, dtype=np.int64)
        distances = np.ascontiguousarray(coarse, dtype=np.float32)
        ivf.search_preassigned_c(
            m,
            faiss.swig_ptr(queries),
            count,
            faiss.swig_ptr(lists),
            faiss.swig_ptr(distances),
            faiss.swig_ptr(found_distances),
            faiss.swig_ptr(found),
            False,
            params,
        )
        del keep_alive
        if mask is None:
            return found
        # the selector already skips non-matching rows; the mask check also drops -1 padding
        candidates: NDArray[np.int64] = np.where(
            (found >= 0) & mask[np.maximum(found, 0)], found, -1
        )
        return candidates

    def _new_params(self, knob: int) -> Any:
        params: Any
        if self.config.structure == "hnsw":
            params = faiss.SearchParametersHNSW()  # type: ignore[attr-defined]
            params.efSearch = knob
        else:
            params = faiss.SearchParametersIVF()
            params.nprobe = knob
        return params

    def _candidates(
        self, reduced: NDArray[np.float32], count: int, knob: int, mask: NDArray[np.bool_] | None
    ) -> NDArray[np.int64]:
        if self.config.structure == "ivf" and self._graph_quantizer():
            # the graph picks the lists well only up to its efSearch: past it, it returns fewer
            # lists than asked and not the nearest ones, so the centroids are ranked exactly
            ivf = self._ivf_lists()[0]
            found = np.empty((len(reduced), count), dtype=np.int64)
            for lo, hi in _blocks(len(reduced), RANK_BLOCK_QUERIES):  # bounds the distances
                assign, coarse = self._nearest_lists(reduced[lo:hi], knob)
                found[lo:hi] = self._scan_lists(ivf, reduced[lo:hi], assign, coarse, count, mask)
            return found
        params, keep_alive = self._params(knob, mask)
        _, found = self._structure.search(reduced, count, params=params)
        del keep_alive
        return np.asarray(found, dtype=np.int64)

    def _search(
        self,
        queries: NDArray[np.float32],
        k: int,
        vectors: NDArray[Any],
        mask: NDArray[np.bool_] | None,
        knob: int,
        rerank_factor: int,
        norms: NDArray[np.float32] | None = None,
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        count = min(self.covered_rows, k * rerank_factor)
        reduced = self.projection.project_queries(queries)
        candidates = self._candidates(reduced, max(1, count), knob, mask)
        if mask is not None:
            # The selector already skipped these; checking again costs one gather.
            candidates = np.where(
                (candidates >= 0) & mask[np.maximum(candidates, 0)], candidates, -1
            )
        return self._rerank(queries, candidates, k, vectors, norms)

    def _ivf_lists(self) -> tuple[Any, NDArray[np.int32], NDArray[np.int64], NDArray[np.float32]]:
        """Return the IVF, each row's list, each list's size and the centroids (cached)."""
        ivf: Any = self._ivf
        if ivf is None:
            ivf = self._ivf = faiss.extract_index_ivf(self._structure)
        if self._list_of_row is None or self._list_sizes is None or self._centroids is None:
            lists = int(ivf.nlist)
            invlists = ivf.invlists
            list_of_row = np.full(self.covered_rows, -1, dtype=np.int32)
            sizes = np.zeros(lists, dtype=np.int64)
            for list_no in range(lists):  # once per list, not per row
                size = int(invlists.list_size(list_no))
                if size:
                    ids = faiss.rev_swig_ptr(invlists.get_ids(list_no), size)
                    list_of_row[np.asarray(ids, dtype=np.int64)] = list_no
                    sizes[list_no] = size
            self._centroids = np.ascontiguousarray(
                ivf.quantizer.reconstruct_n(0, lists), dtype=np.float32
            )
            self._list_sizes = sizes
            self._list_of_row = list_of_row
        return ivf, self._list_of_row, self._list_sizes, self._centroids

    def _search_ivf_filtered(
        self,
        queries: NDArray[np.float32],
        k: int,
        vectors: NDArray[Any],
        mask: NDArray[np.bool_],
        rows: NDArray[np.int64] | None,
        nprobe: int,
        rerank_factor: int,
        stats: dict[str, float] | None,
        exponent: float | None = None,
        widen: bool | None = None,
        matching: int | None = None,
        norms: NDArray[np.float32] | None = None,
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """Return the filtered search's ``(scores, rows)``: a widened scan of the nearest lists
        for a filter many rows pass, else the lists holding matches probed in centroid order
        until enough matching rows are covered; then an exact rerank.

        ``rows`` (when given) are the mask's rows below ``covered_rows``. ``exponent`` overrides
        the index's coverage exponent and ``widen`` whether a broad filter gets the widened scan
        (calibration tries both); ``matching`` may give how many rows ``mask`` allows and
        ``norms`` the rows' norms (see :meth:`search`).
        """
        if rows is not None:
            matching = len(rows)
        elif matching is None:
            matching = int(np.count_nonzero(mask))
        selectivity = matching / max(self.covered_rows, 1)
        if widen is None:
            widen = selectivity >= self.widen_min_share
        if widen and selectivity >= FILTER_WIDEN_MIN_SHARE:
            candidates, covered = self._widened_candidates(
                queries, k, mask, nprobe, rerank_factor, selectivity, stats, exponent
            )
            if covered.all():
                return self._rerank(queries, candidates, k, vectors, norms)
            # a query whose nearest lists hold too few matches probes the lists holding them
            short = ~covered
            scores = np.empty((len(queries), k), dtype=np.float32)
            found = np.empty((len(queries), k), dtype=np.int64)
            if covered.any():
                scores[covered], found[covered] = self._rerank(
                    queries[covered], candidates[covered], k, vectors, norms
                )
            scores[short], found[short] = self._search_ivf_counted(
                queries[short],
                k,
                vectors,
                mask,
                rows,
                matching,
                nprobe,
                rerank_factor,
                None,
                exponent,
                norms,
            )
            if stats is not None:
                stats["queries_probing_by_count"] = float(short.sum())
            return scores, found
        return self._search_ivf_counted(
            queries, k, vectors, mask, rows, matching, nprobe, rerank_factor, stats, exponent, norms
        )

    def _widened_candidates(
        self,
        queries: NDArray[np.float32],
        k: int,
        mask: NDArray[np.bool_],
        nprobe: int,
        rerank_factor: int,
        selectivity: float,
        stats: dict[str, float] | None,
        exponent: float | None = None,
    ) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
        """Return the ``k * rerank_factor`` best candidates of a scan of the nearest ``nprobe *
        selectivity ** (exponent - 1)`` lists with the mask as a selector (lists covering as
        many matching rows as the counted probing covers when matches spread evenly), and per
        query whether the scanned lists held that many matching rows."""
        ivf, _, sizes, _ = self._ivf_lists()
        lists = len(sizes)
        power = (
            planner.coverage_exponent(self.filter_exponents, selectivity)
            if exponent is None
            else exponent
        )
        width = max(1, min(lists, math.ceil(nprobe * selectivity ** (power - 1.0))))
        count = min(self.covered_rows, k * rerank_factor)
        reduced = self.projection.project_queries(queries)
        assign, coarse = self._nearest_lists(reduced, width)
        candidates = self._scan_lists(ivf, reduced, assign, coarse, count, mask)
        if stats is not None:
            stats["widened"] = 1.0
            stats["lists_probed"] = float(width)
            stats["codes_scanned"] = float(sizes[np.maximum(assign, 0)].sum(axis=1).mean())
            stats["rows_scored_exactly"] = 0.0
        # every candidate slot filled: the scanned lists held at least k * rerank_factor matches
        filled: NDArray[np.bool_] = np.count_nonzero(candidates < 0, axis=1) == 0
        return candidates, filled

    def _search_ivf_counted(
        self,
        queries: NDArray[np.float32],
        k: int,
        vectors: NDArray[Any],
        mask: NDArray[np.bool_],
        rows: NDArray[np.int64] | None,
        matching: int,
        nprobe: int,
        rerank_factor: int,
        stats: dict[str, float] | None,
        exponent: float | None = None,
        norms: NDArray[np.float32] | None = None,
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """Probe, per query, the lists holding matching rows in centroid order until enough
        matching rows are covered; then rerank exactly."""
        ivf, list_of_row, sizes, _ = self._ivf_lists()
        lists = len(sizes)
        if rows is None and matching <= self.covered_rows * FILTER_ROWS_MAX_SHARE:
            rows = np.flatnonzero(mask[: self.covered_rows]).astype(np.int64)
        # a strided sample counts the matches per list well enough once there are many; from a
        # mask, the sample is of rows (matching or not) so it touches a bounded part of it
        if rows is not None:
            stride = max(1, matching // (FILTER_COUNT_SAMPLE_PER_LIST * lists))
            sampled = list_of_row[rows[::stride]]
        else:
            stride, sample_lists = self._mask_sample()
            sampled = sample_lists[mask[::stride]]
        counts = np.bincount(sampled, minlength=lists) * stride
        # a sample may miss a list's few matches: then every non-empty list stays a candidate
        probed = counts > 0 if stride == 1 else sizes > 0
        holding = np.flatnonzero(probed)
        count = min(self.covered_rows, k * rerank_factor)
        m = queries.shape[0]
        if matching == 0 or len(holding) == 0:
            return (
                np.full((m, k), _worst(self.metric), dtype=np.float32),
                np.full((m, k), -1, dtype=np.int64),
            )
        reduced = self.projection.project_queries(queries)
        distances, keyed = self._centroid_distances(reduced)
        # what the tuned nprobe covers for this query unfiltered, scaled by the selectivity
        nearest = min(nprobe, lists)
        if nearest < lists:
            tuned = np.argpartition(keyed, nearest - 1, axis=1)[:, :nearest]
        else:
            tuned = np.broadcast_to(np.arange(lists), (m, lists))
        unfiltered = sizes[tuned].sum(axis=1)
        selectivity = matching / max(self.covered_rows, 1)
        power = (
            planner.coverage_exponent(self.filter_exponents, selectivity)
            if exponent is None
            else exponent
        )
        wanted = np.maximum(unfiltered * selectivity**power, count)
        # only the lists holding matches are probed, nearest first
        probe_order = holding[np.argsort(keyed[:, holding], axis=1)]
        covered = np.cumsum(counts[probe_order], axis=1)
        probes = np.minimum((covered < wanted[:, None]).sum(axis=1) + 1, len(holding))
        width = int(probes.max())
        chosen = np.arange(width)[None, :] < probes[:, None]
        extra: NDArray[np.int64] | None = None
        if rows is not None and stride == 1:
            # a list holding few matches costs more to scan than its matching rows cost to
            # score exactly: those rows join the rerank instead of the list being scanned
            scan_cost = sizes * self._code_price()
            sparse = (counts > 0) & (counts * self.dim * planner.EXACT_PER_ROW_DIM <= scan_cost)
            exact_lists = sparse[probe_order[:, :width]] & chosen
            if exact_lists.any():
                chosen &= ~exact_lists
                # with stride 1 the sample is every matching row's list
                extra = self._rows_in_lists(rows, sampled, probe_order, exact_lists)
        assign = np.where(chosen, probe_order[:, :width], -1).astype(np.int64)
        coarse = np.ascontiguousarray(np.take_along_axis(distances, probe_order[:, :width], 1))
        candidates = self._scan_lists(ivf, reduced, assign, coarse, count, mask)
        if stats is not None:
            stats["lists_probed"] = float(probes.mean())
            scanned = np.where(assign >= 0, sizes[np.maximum(assign, 0)], 0).sum(axis=1)
            stats["codes_scanned"] = float(scanned.mean())
            stats["rows_scored_exactly"] = 0.0 if extra is None else float((extra >= 0).sum() / m)
        if extra is not None:
            candidates = np.concatenate([candidates, extra], axis=1)
        return self._rerank(queries, candidates, k, vectors, norms)

    def _graph_quantizer(self) -> bool:
        """Return whether this IVF picks its lists with a graph over the centroids (cached)."""
        if self._graph is None:
            quantizer = faiss.downcast_index(faiss.extract_index_ivf(self._structure).quantizer)
            self._graph = isinstance(quantizer, faiss.IndexHNSW)
        return self._graph

    def _nearest_lists(
        self, reduced: NDArray[np.float32], width: int
    ) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """Return each query's ``width`` nearest lists, nearest first, ranked exactly against
        every centroid, and its distances to them as faiss defines them."""
        distances, keyed = self._centroid_distances(reduced)
        lists = keyed.shape[1]
        width = max(1, min(width, lists))
        if width < lists:
            nearest = np.argpartition(keyed, width - 1, axis=1)[:, :width]
        else:
            nearest = np.broadcast_to(np.arange(lists), keyed.shape)
        order = np.take_along_axis(nearest, np.argsort(np.take_along_axis(keyed, nearest, 1)), 1)
        assign = np.ascontiguousarray(order, dtype=np.int64)
        return assign, np.ascontiguousarray(np.take_along_axis(distances, assign, 1))

    def _centroid_distances(
        self, reduced: NDArray[np.float32]
    ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """Return each query's distances to every list's centroid as faiss defines them (its
        probes take them) and the same as a key that sorts nearest first."""
        _, _, _, centroids = self._ivf_lists()
        dots = reduced @ centroids.T
        if self.metric == "l2":
            centroid_squares = np.einsum("ij,ij->i", centroids, centroids)
            query_squares = np.einsum("ij,ij->i", reduced, reduced)[:, None]
            distances = (query_squares - 2.0 * dots + centroid_squares[None, :]).astype(np.float32)
            return distances, distances
        distances = dots.astype(np.float32, copy=False)
        return distances, -distances

    def _mask_sample(self) -> tuple[int, NDArray[np.int32]]:
        """Return the stride of the rows sampled to count a mask's matches per list, and the
        lists of those rows (cached: the per-query work is one strided read of the mask)."""
        if self._sample is None:
            _, list_of_row, sizes, _ = self._ivf_lists()
            stride = max(1, self.covered_rows // (FILTER_COUNT_SAMPLE_PER_LIST * len(sizes)))
            self._sample = (stride, np.ascontiguousarray(list_of_row[::stride]))
        return self._sample

    def _code_price(self) -> float:
        """Return the planner's measured seconds per code this structure's search scores
        (cached): a distance computed on HNSW; a code scanned on IVF, per sub-quantizer for
        fast-scan codes and per reduced dimension for scalar ones."""
        if self._scan_cost is None:
            index: Any = faiss.downcast_index(self._structure)
            if isinstance(index, faiss.IndexHNSW):
                self._scan_cost = planner.HNSW_PER_DISTANCE
            else:
                ivf: Any = faiss.downcast_index(faiss.extract_index_ivf(index))
                if isinstance(ivf, faiss.IndexIVFPQFastScan):
                    self._scan_cost = planner.FAST_SCAN_PER_CODE_DIM * int(ivf.pq.M)
                else:
                    self._scan_cost = planner.SCALAR_CODE_PER_CODE_DIM * self.projection.reduced_dim
        return self._scan_cost

    @staticmethod
    def _rows_in_lists(
        rows: NDArray[np.int64],
        lists_of_rows: NDArray[np.int32],
        probe_order: NDArray[np.int64],
        picked: NDArray[np.bool_],
    ) -> NDArray[np.int64]:
        """Return, per query, the ``rows`` lying in its picked lists (padded with -1)."""
        m = len(picked)
        lists = int(max(int(probe_order.max()) + 1, int(lists_of_rows.max(initial=0)) + 1))
        found: list[NDArray[np.int64]] = []
        for q in range(m):  # per query: one vectorised pass over the matching rows
            wanted = np.zeros(lists, dtype=np.bool_)
            wanted[probe_order[q, : picked.shape[1]][picked[q]]] = True
            found.append(rows[wanted[lists_of_rows]])
        width = max(1, max(len(f) for f in found))
        out = np.full((m, width), -1, dtype=np.int64)
        for q, line in enumerate(found):
            out[q, : len(line)] = line
        return out

    def _rerank(
        self,
        queries: NDArray[np.float32],
        candidates: NDArray[np.int64],
        k: int,
        vectors: NDArray[Any],
        norms: NDArray[np.float32] | None = None,
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        m, count = candidates.shape
        block = max(1, RERANK_BLOCK_BYTES // max(1, count * self.dim * 4))
        if m <= block:
            scores = _exact_scores(queries, candidates, vectors, self.metric, norms)
            return _top_k(scores, candidates, k, self.metric)
        # Blocks bound the gathered copy; each block is one gather and one batched product.
        out_scores = np.empty((m, k), dtype=np.float32)
        out_rows = np.empty((m, k), dtype=np.int64)
        for lo, hi in _blocks(m, block):
            scores = _exact_scores(queries[lo:hi], candidates[lo:hi], vectors, self.metric, norms)
            out_scores[lo:hi], out_rows[lo:hi] = _top_k(scores, candidates[lo:hi], k, self.metric)
        return out_scores, out_rows

    # ---------------------------------------------------------------- filter calibration

    def calibrate_filters(
        self,
        vectors: NDArray[Any],
        queries: NDArray[np.float32],
        recall_target: float,
        *,
        exclude: NDArray[np.int64] | None = None,
        alive: NDArray[np.bool_] | None = None,
        source: str = "",
        seed: int = 0,
    ) -> dict[str, Any] | None:
        """Measure the coverage exponent filtered searches of this IVF need; keep and return it.

        ``queries`` are held out from the build's fit (normalised for cosine); ``exclude`` gives
        rows of the index the queries were sampled from (kept out of every filter), ``alive``
        the rows a filter may match. Returns None (nothing changes) for HNSW or too few rows.
        """
        if self.config.structure != "ivf" or len(queries) == 0:
            return None
        started = time.perf_counter()
        _, _, sizes, _ = self._ivf_lists()
        list_of_row = self._list_of_row
        assert list_of_row is not None
        rows = self.covered_rows
        factor = int(self.config.rerank_factor or 1)
        nprobe = int(self.config.nprobe or 1)
        k = min(RECALL_K, rows)
        rng = np.random.default_rng(seed)
        queries = np.ascontiguousarray(queries[:FILTER_CALIBRATION_QUERIES], dtype=np.float32)
        m = len(queries)
        usable = np.ones(rows, np.bool_) if alive is None else alive[:rows].copy()
        if exclude is not None:
            usable[exclude[:m]] = False
        # regions: each list joins the nearest of about sqrt(lists) of the centroids
        centroids = self._centroids
        assert centroids is not None
        anchors = centroids[rng.choice(len(centroids), max(2, math.isqrt(len(centroids))), False)]
        region_of_list = np.argmax(centroids @ anchors.T, axis=1)
        if self.metric == "l2":
            region_of_list = np.argmin(
                np.einsum("ij,ij->i", anchors, anchors)[None, :] - 2.0 * centroids @ anchors.T,
                axis=1,
            )
        regions = np.bincount(region_of_list, weights=sizes, minlength=len(anchors))
        masks: dict[str, NDArray[np.bool_]] = {}
        shares: dict[str, float] = {}
        for share in FILTER_CALIBRATION_SELECTIVITIES:
            if share * rows < 4 * k * factor:
                continue
            masks[f"random {share:g}"] = (rng.random(rows) < share) & usable
            # whole lists in a random order up to most of the share, plus rows from everywhere
            order = rng.permutation(len(sizes))
            taken = order[: int(np.searchsorted(np.cumsum(sizes[order]), share * rows * 0.9))]
            in_lists = np.zeros(len(sizes), np.bool_)
            in_lists[taken] = True
            scattered = rng.random(rows) < share * FILTER_CALIBRATION_SCATTER
            masks[f"lists {share:g}"] = (in_lists[list_of_row] | scattered) & usable
            # whole regions (lists grouped around a few centroids), so that most queries lie
            # outside the matching region and their neighbours are the scattered rows
            order = rng.permutation(len(regions))
            region_sizes = regions[order]
            taken = order[: int(np.searchsorted(np.cumsum(region_sizes), share * rows * 0.9))]
            in_regions = np.isin(region_of_list, taken)
            scattered = rng.random(rows) < share * FILTER_CALIBRATION_SCATTER
            masks[f"regions {share:g}"] = (in_regions[list_of_row] | scattered) & usable
            for kind in ("random", "lists", "regions"):
                shares[f"{kind} {share:g}"] = share
        if not masks:
            return None
        found_truth = self._masked_truth(queries, vectors, list(masks.values()), k)
        truth = dict(zip(masks, found_truth, strict=True))
        goal = min(recall_target, self.measured_recall) if self.measured_recall else recall_target
        tried: dict[str, dict[str, float]] = {}
        exponents: dict[str, float] = {}
        rerank_factors: dict[str, int] = {}
        costs: dict[str, dict[str, float]] = {}
        passed = True
        widened: dict[str, bool] = {}

        def bound(names: list[str], power: float, rerank: int, widen: bool, label: str) -> _Bound:
            """Return the lowest recall bound over the filters ``names`` (stops at a miss) and
            the mean modelled seconds per query of their searches."""
            lowest = math.inf
            seconds: list[float] = []
            for name in names:
                mask, want = masks[name], truth[name]
                stats: dict[str, float] = {}
                _, found = self._search_ivf_filtered(
                    queries,
                    k,
                    vectors,
                    mask,
                    np.flatnonzero(mask).astype(np.int64),
                    nprobe,
                    rerank,
                    stats,
                    exponent=power,
                    widen=widen,
                )
                seconds.append(self._filtered_cost(stats, k * rerank))
                hits = (found[:, :, None] == want[:, None, :]) & (want[:, None, :] >= 0)
                per_query = hits.any(axis=1).sum(axis=1) / np.maximum(1, (want >= 0).sum(axis=1))
                recall = float(per_query.mean())
                error = float(per_query.std() / math.sqrt(m))
                tried.setdefault(name, {})[f"{label}{power:g}"] = recall
                lowest = min(lowest, recall - TUNE_MARGIN_ERRORS * error)
                if lowest < goal:
                    break  # this exponent fails: no need to measure the other filters
            return _Bound(lowest, float(np.mean(seconds)), power, rerank, widen)

        def largest_passing(names: list[str], rerank: int, widen: bool, label: str) -> list[_Bound]:
            """Return the bounds measured down the exponent grid until one passes (the last,
            or the exponent halfway to the cheaper one that missed when that passes too)."""
            measured: list[_Bound] = []
            for power in FILTER_CALIBRATION_EXPONENTS:
                measured.append(bound(names, power, rerank, widen, label))
                if measured[-1].lowest >= goal:
                    if len(measured) > 1:
                        # one bisection step between the grid's two: halfway may pass too
                        halfway = round((power + measured[-2].exponent) / 2.0, 6)
                        between = bound(names, halfway, rerank, widen, label)
                        if between.lowest >= goal:
                            measured.append(between)
                    break
            return measured

        # per selectivity: for each rerank factor the largest (cheapest) exponent every filter of
        # it passes with, on the widened scan for a broad selectivity unless no exponent keeps it
        # on target there; then the factor whose passing exponent costs least
        for share in sorted(set(shares.values())):
            names = [name for name, value in shares.items() if value == share]
            plans = (True, False) if share >= FILTER_WIDEN_MIN_SHARE else (False,)
            measured: list[_Bound] = []
            passing: list[_Bound] = []
            for multiplier in FILTER_CALIBRATION_RERANK:
                rerank = factor * multiplier
                if share * rows < 4 * k * rerank:
                    continue
                for widen in plans:
                    label = "widened " if widen else ("counted " if len(plans) > 1 else "")
                    if multiplier != 1:
                        label = f"rerank {rerank} {label}"
                    measured += largest_passing(names, rerank, widen, label)
                    if measured[-1].lowest >= goal:
                        passing.append(measured[-1])
                        costs.setdefault(f"{share:g}", {})[f"rerank {rerank}"] = measured[-1].cost
                        break  # on target: the next plan is not needed
            key = f"{share:g}"
            if passing:
                chosen = min(passing, key=lambda point: point.cost)
            else:
                chosen = max(measured, key=lambda point: point.lowest)
                passed = False  # none passed: the one that came closest
            exponents[key], rerank_factors[key] = chosen.exponent, chosen.rerank
            if share >= FILTER_WIDEN_MIN_SHARE:
                widened[key] = chosen.widen
        self.filter_calibration = {
            "version": FILTER_CALIBRATION_VERSION,
            "exponents": exponents,
            "rerank_factors": rerank_factors,
            "widened": widened,
            "modelled_seconds": costs,
            "passed": passed,
            "recall_goal": goal,
            "queries": m,
            "source": source,
            "recall": tried,
            "seconds": time.perf_counter() - started,
        }
        return self.filter_calibration

    def _filtered_cost(self, stats: dict[str, float], candidates: int) -> float:
        """Return the modelled seconds per query of a filtered search from its ``stats`` (codes
        scanned, rows scored exactly) and its ``candidates`` reranked, with the planner's
        constants. A further candidate costs what scoring a row exactly costs (gathering and
        scoring it), not RERANK_PER_DIM, which spreads the search's fixed work over the
        tuned rerank's candidates."""
        exact_rows = stats.get("rows_scored_exactly", 0.0) + candidates
        return (
            stats.get("codes_scanned", 0.0) * self._code_price()
            + exact_rows * self.dim * planner.EXACT_PER_ROW_DIM
            # counted probing ranks the lists holding matches and counts them, per query
            + (0.0 if stats.get("widened") else planner.SELECTOR_FIXED)
        )

    def _masked_truth(
        self,
        queries: NDArray[np.float32],
        vectors: NDArray[Any],
        masks: list[NDArray[np.bool_]],
        k: int,
    ) -> list[NDArray[np.int64]]:
        """Return the exact top ``k`` rows of each query among each mask's rows (one pass)."""
        m = len(queries)
        faiss_metric = _faiss_metric(self.metric)
        best = [
            (np.full((m, 0), _worst(self.metric), np.float32), np.full((m, 0), -1, np.int64))
            for _ in masks
        ]
        for start, stop in _blocks(self.covered_rows, BLOCK_ROWS):
            block = np.ascontiguousarray(vectors[start:stop], dtype=np.float32)
            if self.metric == "cosine":
                block = _normalise(block)
            for position, mask in enumerate(masks):
                picked = np.flatnonzero(mask[start:stop])
                if len(picked) == 0:
                    continue
                scores, found = faiss.knn(
                    queries, block[picked], min(k, len(picked)), metric=faiss_metric
                )
                found = np.where(found >= 0, picked[np.maximum(found, 0)] + start, -1)
                held_scores, held_rows = best[position]
                best[position] = _top_k(
                    np.concatenate([held_scores, scores], axis=1),
                    np.concatenate([held_rows, found], axis=1),
                    k,
                    self.metric,
                )
        return [found for _, found in best]

    def save_filter_calibration(self, directory: Path) -> None:
        """Write the filter calibration into the saved index ``directory`` (fsynced)."""
        if self.filter_calibration is not None:
            _fsync_write(
                Path(directory) / FILTER_FILE,
                json.dumps(self.filter_calibration, indent=2).encode(),
            )

    # ---------------------------------------------------------------- size, save, load

    def memory_bytes(self) -> int:
        """Return the bytes this index holds in RAM: structure (graph or lists, codes) + matrices."""
        if self._memory_bytes is None:
            structure = int(faiss.serialize_index(self._structure).nbytes)
            matrices = self.projection.data_matrix.nbytes + self.projection.query_matrix.nbytes
            offset = 0 if self.projection.offset is None else self.projection.offset.nbytes
            self._memory_bytes = structure + matrices + offset
        return self._memory_bytes

    def save(self, directory: Path) -> None:
        """Write the index into ``directory`` (existing, empty); each file is fsynced."""
        directory = Path(directory)
        if not directory.is_dir():
            raise InvalidArgument(f"{directory} is not an existing directory")
        if any(directory.iterdir()):
            raise InvalidArgument(f"{directory} is not empty")
        meta = {
            "format_version": FORMAT_VERSION,
            "metric": self.metric,
            "dim": self.dim,
            "covered_rows": self.covered_rows,
            "measured_recall": self.measured_recall,
            "build_seconds": self.build_seconds,
            "config": self.config.to_dict(),
            "projection": {"kind": self.projection.kind, "method": self.projection.method},
        }
        _fsync_write(directory / "meta.json", json.dumps(meta, indent=2).encode())
        arrays: dict[str, NDArray[np.float32]] = {
            "data_matrix": self.projection.data_matrix,
            "query_matrix": self.projection.query_matrix,
        }
        if self.projection.offset is not None:
            arrays["offset"] = self.projection.offset
        path = directory / "projection.npz"
        with open(path, "wb") as handle:
            np.savez(handle, **arrays)  # type: ignore[arg-type]
            handle.flush()
            os.fsync(handle.fileno())
        _fsync_write(
            directory / "structure.faiss", faiss.serialize_index(self._structure).tobytes()
        )
        self.save_filter_calibration(directory)

    @classmethod
    def load(cls, directory: Path) -> AnnIndex:
        """Return the index saved in ``directory``; results are identical, nothing is retrained."""
        directory = Path(directory)
        missing = [name for name in _FILES if not (directory / name).exists()]
        if missing:
            raise InvalidArgument(f"{directory} lacks index files {missing}")
        meta = json.loads((directory / "meta.json").read_text())
        if meta.get("format_version") != FORMAT_VERSION:
            raise InvalidArgument(
                f"index format {meta.get('format_version')!r} is not supported (expected {FORMAT_VERSION})"
            )
        with np.load(directory / "projection.npz") as arrays:
            projection = Projection(
                data_matrix=np.ascontiguousarray(arrays["data_matrix"], dtype=np.float32),
                query_matrix=np.ascontiguousarray(arrays["query_matrix"], dtype=np.float32),
                kind=meta["projection"]["kind"],
                method=meta["projection"]["method"],
                offset=(
                    np.ascontiguousarray(arrays["offset"], dtype=np.float32)
                    if "offset" in arrays.files
                    else None
                ),
            )
        raw = np.fromfile(directory / "structure.faiss", dtype=np.uint8)
        structure = faiss.deserialize_index(raw)
        calibration_file = directory / FILTER_FILE
        calibration = (
            json.loads(calibration_file.read_text()) if calibration_file.exists() else None
        )
        if calibration is not None and calibration.get("version") != FILTER_CALIBRATION_VERSION:
            calibration = None  # measured by an older rule: the loader calibrates again
        return cls(
            metric=meta["metric"],
            dim=int(meta["dim"]),
            projection=projection,
            structure=structure,
            config=AnnConfig.from_dict(meta["config"]),
            covered_rows=int(meta["covered_rows"]),
            measured_recall=float(meta["measured_recall"]),
            build_seconds=float(meta["build_seconds"]),
            filter_calibration=calibration,
        )


# --------------------------------------------------------------------------------------------
# the build: measure, choose, train


@dataclass
class _TuneSet:
    queries: NDArray[np.float32]  # normalised for cosine
    truth: NDArray[np.int64]  # (m, RECALL_K)
    exclude: NDArray[np.int64] | None  # the query's own row when sampled from the data

    def head(self, count: int) -> _TuneSet:
        """Return the first ``count`` queries (the set is already in random order)."""
        return _TuneSet(
            self.queries[:count],
            self.truth[:count],
            None if self.exclude is None else self.exclude[:count],
        )


class _Builder:
    def __init__(
        self,
        vectors: NDArray[Any],
        metric: Metric,
        recall_target: float,
        train_queries: NDArray[Any] | None,
        config: AnnConfig | None,
        progress: Progress | None,
        seed: int,
    ) -> None:
        if metric not in METRICS:
            raise InvalidArgument(f"unknown metric {metric!r}; allowed: {', '.join(METRICS)}")
        if not 0.0 < recall_target <= 1.0:
            raise InvalidArgument(f"recall_target must be in (0, 1], got {recall_target}")
        if vectors.ndim != 2 or vectors.shape[0] < 1 or vectors.shape[1] < 1:
            raise InvalidArgument(
                f"vectors must be a non-empty (rows, dim) array, got {vectors.shape}"
            )
        if not np.issubdtype(vectors.dtype, np.floating):
            raise InvalidArgument(f"vectors must be floating point, got {vectors.dtype}")
        self.vectors = vectors
        self.rows, self.dim = int(vectors.shape[0]), int(vectors.shape[1])
        self.metric: Metric = metric
        self.target = recall_target
        self.config = config or AnnConfig()
        self.progress = progress
        self.rng = np.random.default_rng(seed)
        self.seed = seed
        self.train_queries = (
            None if train_queries is None else _as_matrix("train_queries", train_queries, self.dim)
        )
        kind = self.config.projection or ("ood" if self.train_queries is not None else "pca")
        if kind == "ood" and self.train_queries is None:
            raise InvalidArgument("projection 'ood' needs train_queries")
        if kind not in ("pca", "ood"):
            raise InvalidArgument(f"unknown projection {kind!r}; allowed: pca, ood")
        self.kind: ProjectionKind = kind
        self.k = (
            min(RECALL_K, self.rows - 1) if self.train_queries is None else min(RECALL_K, self.rows)
        )
        self.k = max(1, self.k)
        self._inverse_norms: NDArray[np.float32] | None = None
        # OOD: the cross-validated shrinkage of the training queries' second moment
        self.shrinkage = 0.0
        # Standard error of each recall the last _evaluate call returned, per rerank factor.
        self.last_standard_error: dict[int, float] = {}

    def _report(self, stage: str, fraction: float) -> None:
        if self.progress is not None:
            self.progress(stage, min(1.0, max(0.0, fraction)))

    # ---- data access (block-wise, normalised for cosine, centred by the projection for l2)

    def _data_blocks(self) -> Iterator[tuple[int, NDArray[np.float32]]]:
        """Yield ``(first row, block)`` over all rows, normalised for cosine.

        The cosine blocks share one buffer: a consumer must use each block before the next.
        """
        buffer: NDArray[np.float32] | None = None
        first_pass = self._inverse_norms is None
        if first_pass and self.metric == "cosine":
            self._inverse_norms = np.empty(self.rows, dtype=np.float32)
        for start, stop in _blocks(self.rows, BLOCK_ROWS):
            block = np.ascontiguousarray(self.vectors[start:stop], dtype=np.float32)
            if first_pass and not np.isfinite(block).all():
                raise InvalidArgument(
                    f"vectors contain NaN or infinite values (rows {start}..{stop - 1})"
                )
            if self._inverse_norms is None:
                yield start, block
                continue
            if first_pass:
                norms = np.sqrt(np.einsum("ij,ij->i", block, block))
                self._inverse_norms[start:stop] = 1.0 / np.maximum(norms, np.float32(1e-30))
            if buffer is None:
                buffer = np.empty((min(BLOCK_ROWS, self.rows), self.dim), dtype=np.float32)
            out = buffer[: stop - start]
            np.multiply(block, self._inverse_norms[start:stop, None], out=out)
            yield start, out

    def _reduced_data(self, projection: Projection) -> NDArray[np.float32]:
        out = np.empty((self.rows, projection.reduced_dim), dtype=np.float32)
        for start, block in self._data_blocks():
            out[start : start + len(block)] = projection.project_data(block)
        return out

    # ---- stages

    def _split_queries(self) -> tuple[NDArray[np.float32] | None, _TuneSet, str]:
        """Return (queries to fit the projection on, the tune set, how it was drawn).

        With training queries, the projection is fitted on all of them (it only uses their
        second moment, and more queries give a steadier one) and recall is measured on a random
        sample of up to ``MAX_TUNE_QUERIES`` of them. Without, recall is measured on sampled rows,
        each query excluding its own row.
        """
        if self.train_queries is not None:
            queries = self.train_queries
            if self.metric == "cosine":
                queries = _normalise(queries)
            m = len(queries)
            held = min(MAX_TUNE_QUERIES, m)
            tune = queries[self.rng.permutation(m)[:held]]
            how = f"{held} of {m} training queries (the projection is fitted on all {m})"
            truth = exact_search(tune, self.vectors, self.k, self.metric)[1]
            return queries, _TuneSet(tune, truth, None), how
        count = min(MAX_TUNE_QUERIES, max(1, self.rows // 10), self.rows)
        picked = self.rng.choice(self.rows, size=count, replace=False).astype(np.int64)
        tune = np.asarray(self.vectors[picked], dtype=np.float32)
        if self.metric == "cosine":
            tune = _normalise(tune)
        truth = exact_search(tune, self.vectors, self.k, self.metric, exclude=picked)[1]
        return None, _TuneSet(tune, truth, picked), f"{count} sampled rows (each excluding itself)"

    def _moments(self, fit_queries: NDArray[np.float32] | None) -> dict[str, Any]:
        """Return the statistics every projection fit needs, from one or two passes over rows."""
        center = self.metric == "l2"
        mean = None
        if center:
            mean = np.zeros(self.dim, dtype=np.float64)
            for _, block in self._data_blocks():
                mean += block.astype(np.float64).sum(axis=0)
            mean /= self.rows
        data = np.zeros((self.dim, self.dim), dtype=np.float64)
        for _, block in self._data_blocks():
            data += projections.second_moment(block, offset=mean) * (len(block) / self.rows)
        moments: dict[str, Any] = {"mean": mean, "data": data}
        if fit_queries is not None:
            moments["queries"] = projections.second_moment(fit_queries, offset=mean)
        return moments

    def _fit(
        self,
        reduced_dim: int,
        fit_queries: NDArray[np.float32] | None,
        moments: dict[str, Any],
        method: projections.OodMethod = "frank_wolfe",
    ) -> Projection:
        # The rows themselves are not read again: the moments carry all the fit needs.
        if self.kind == "pca":
            return projections.fit_pca(
                self.vectors,
                reduced_dim,
                center=self.metric == "l2",
                moment=moments["data"],
                mean=moments["mean"],
            )
        assert fit_queries is not None
        return projections.fit_ood(
            self.vectors,
            fit_queries,
            reduced_dim,
            method=method,
            shrinkage=self.shrinkage,
            data_moment=moments["data"],
            query_moment=moments["queries"],
            center=self.metric == "l2",
            mean=moments["mean"],
        )

    def _evaluate(
        self,
        tune: _TuneSet,
        candidates: NDArray[np.int64],
        factors: tuple[int, ...],
    ) -> dict[int, float]:
        """Return recall@k after an exact rerank of each prefix ``k·r`` of the candidates.

        An exact rerank keeps every true neighbour that is among the candidates in its top k
        (at most k - 1 rows beat it anywhere), so recall after rerank is the share of the true
        neighbours inside the prefix: no scoring needed while sweeping.
        """
        if tune.exclude is not None:
            candidates = np.where(candidates == tune.exclude[:, None], -1, candidates)
        matches = (candidates[:, :, None] == tune.truth[:, None, :]) & (tune.truth[:, None, :] >= 0)
        # Position of each true neighbour among the candidates (count if absent).
        width = candidates.shape[1]
        position = np.where(matches.any(axis=1), matches.argmax(axis=1), width)
        wanted = np.maximum(1, (tune.truth >= 0).sum(axis=1))
        extra = 0 if tune.exclude is None else 1
        out: dict[int, float] = {}
        self.last_standard_error = {}
        for factor in factors:
            per_query = (position < min(width, self.k * factor + extra)).sum(axis=1) / wanted
            out[factor] = float(per_query.mean())
            self.last_standard_error[factor] = float(per_query.std() / math.sqrt(len(per_query)))
        return out

    def _flat_recall(self, projection: Projection, tune: _TuneSet) -> float:
        """Return recall@k after an exact rerank of a flat (exhaustive) reduced search."""
        tune = tune.head(FLAT_CHECK_QUERIES)
        reduced_queries = projection.project_queries(tune.queries)
        width = self.k * FLAT_CHECK_RERANK + (0 if tune.exclude is None else 1)
        reduced_metric: Metric = "l2" if self.metric == "l2" else "ip"
        best_scores = np.full((len(reduced_queries), 0), _worst(reduced_metric), np.float32)
        best_rows = np.full((len(reduced_queries), 0), -1, np.int64)
        for start, block in self._data_blocks():
            scores, rows = exact_search(
                reduced_queries, projection.project_data(block), width, reduced_metric
            )
            rows = np.where(rows >= 0, rows + start, -1)
            best_scores, best_rows = _top_k(
                np.concatenate([best_scores, scores], axis=1),
                np.concatenate([best_rows, rows], axis=1),
                width,
                reduced_metric,
            )
        return self._evaluate(tune, best_rows, (FLAT_CHECK_RERANK,))[FLAT_CHECK_RERANK]

    def _choose_reduced_dim(
        self,
        tune: _TuneSet,
        fit_queries: NDArray[np.float32] | None,
        moments: dict[str, Any],
        report: TuningReport,
    ) -> list[int]:
        """Return candidate ``d'`` values, the measured choice first, larger fallbacks after."""
        if self.config.reduced_dim is not None:
            if not 1 <= self.config.reduced_dim <= self.dim:
                raise InvalidArgument(
                    f"reduced_dim {self.config.reduced_dim} must be between 1 and {self.dim}"
                )
            return [self.config.reduced_dim]
        grid = _dim_grid(self.dim)
        goal = self.target + (1.0 - self.target) / 2.0
        low, high = 0, len(grid) - 1
        # Binary search for the smallest passing d' (recall grows with d').
        while low < high:
            middle = (low + high) // 2
            # The eigen solution is cheap and never better than the final Frank-Wolfe one, so
            # a d' it passes with is safe.
            projection = self._fit(grid[middle], fit_queries, moments, method="eigen")
            recall = self._flat_recall(projection, tune)
            report.flat_recall[grid[middle]] = recall
            self._report("reduced_dim", 0.2 * (1 - (high - low) / len(grid)))
            if recall >= goal:
                high = middle
            else:
                low = middle + 1
        chosen = grid[low]
        fallbacks = [d for d in grid if d > chosen][:2]
        return [chosen, *fallbacks]

    def _candidate_factories(self, reduced_dim: int) -> list[str]:
        if self.config.index_factory is not None:
            return [self.config.index_factory]
        structures: list[Structure]
        if self.config.structure is not None:
            structures = [self.config.structure]
        else:
            structures = ["ivf", "hnsw"] if self.rows <= HNSW_AUTO_MAX_ROWS else ["ivf"]
        out: list[str] = []
        for structure in structures:
            if structure == "ivf":
                lists = self.config.list_count or _default_list_count(self.rows)
                bits = [self.config.code_bits] if self.config.code_bits else [8, 4, 2]
                out += [_factory_string("ivf", reduced_dim, b, lists) for b in bits]
            else:
                degrees = (
                    [self.config.graph_degree] if self.config.graph_degree else list(HNSW_DEGREES)
                )
                bits = [self.config.code_bits] if self.config.code_bits else [8]
                out += [_factory_string("hnsw", reduced_dim, b, m) for m in degrees for b in bits]
        return out

    def _train_structure(
        self, factory: str, reduced: NDArray[np.float32], centroids: NDArray[np.float32] | None
    ) -> Any:
        """Return the trained, filled faiss structure; IVF reuses ``centroids`` when given."""
        index = faiss.index_factory(reduced.shape[1], factory, _faiss_metric(self.metric))
        ivf = faiss.try_extract_index_ivf(index)
        sample = reduced
        if ivf is not None:
            ivf.cp.seed = self.seed
            ivf.cp.min_points_per_centroid = min(
                ivf.cp.min_points_per_centroid, IVF_TRAIN_ROWS_PER_LIST
            )
            if centroids is not None and len(centroids) == ivf.nlist:
                # A filled flat quantizer with nlist entries is not clustered again.
                ivf.quantizer.add(centroids)
            wanted = IVF_TRAIN_ROWS_PER_LIST * ivf.nlist
            if self.rows > wanted:
                sample = reduced[np.sort(self.rng.choice(self.rows, size=wanted, replace=False))]
        index.train(sample)
        index.add(reduced)
        return index

    def _sweep(
        self,
        factory: str,
        projection: Projection,
        structure: Any,
        tune: _TuneSet,
        report: TuningReport,
    ) -> tuple[float, int, int, float] | None:
        """Return (seconds per query, knob, rerank factor, recall) of the cheapest passing point."""
        kind = _structure_of(structure)
        index = AnnIndex(
            metric=self.metric,
            dim=self.dim,
            projection=projection,
            structure=structure,
            config=AnnConfig(structure=kind, rerank_factor=1, ef_search=1, nprobe=1),
            covered_rows=self.rows,
            measured_recall=0.0,
            build_seconds=0.0,
        )
        fixed_knob = self.config.ef_search if kind == "hnsw" else self.config.nprobe
        if fixed_knob is not None:
            knobs: tuple[int, ...] = (fixed_knob,)
        elif kind == "hnsw":
            knobs = HNSW_EF
        else:
            knobs = tuple(p for p in IVF_PROBES if p <= faiss.extract_index_ivf(structure).nlist)
        factors = (self.config.rerank_factor,) if self.config.rerank_factor else RERANK_FACTORS
        reduced_queries = projection.project_queries(tune.queries)
        extra = 0 if tune.exclude is None else 1
        best: tuple[float, int, int, float] | None = None
        fallback: tuple[float, int, int, float] | None = None
        previous_top = -1.0
        stalled = 0
        for knob in knobs:
            width = min(self.rows, self.k * max(factors) + extra)
            if kind == "hnsw":
                width = min(width, max(knob, self.k + extra))
            usable = tuple(f for f in factors if self.k * f + extra <= width) or (factors[0],)
            if kind == "hnsw":
                _hnsw_stats().reset()
            candidates = index._candidates(reduced_queries, width, knob, None)
            codes = self._codes_per_query(index, reduced_queries, knob)
            recalls = self._evaluate(tune, candidates, usable)
            errors = self.last_standard_error
            passing = [
                f for f in usable if recalls[f] - TUNE_MARGIN_ERRORS * errors[f] >= self.target
            ]
            top = max(recalls.values())
            for factor in usable:
                report.points.append(
                    OperatingPoint(
                        factory, projection.reduced_dim, knob, factor, recalls[factor], math.nan
                    )
                )
            if passing:
                factor = passing[0]
                seconds = self._cost(index, codes, factor)
                report.points[-len(usable) + usable.index(factor)] = OperatingPoint(
                    factory, projection.reduced_dim, knob, factor, recalls[factor], seconds
                )
                if best is None or seconds < best[0]:
                    best = (seconds, knob, factor, recalls[factor])
                elif seconds > 2.0 * best[0]:
                    break
            elif fallback is None or top > fallback[3]:
                best_factor = max(usable, key=lambda f: recalls[f])
                fallback = (math.inf, knob, best_factor, top)
            stalled = stalled + 1 if top <= previous_top + 1e-3 else 0
            previous_top = max(previous_top, top)
            if stalled >= 2:
                break
        if best is None and fallback is not None and fixed_knob is None:
            return (math.inf, fallback[1], fallback[2], fallback[3])
        return best if best is not None else fallback

    @staticmethod
    def _codes_per_query(index: AnnIndex, reduced_queries: NDArray[np.float32], knob: int) -> float:
        """Return the codes a query scores at ``knob``, on average over ``reduced_queries``: the
        rows of its ``knob`` nearest lists on an IVF; on HNSW the distances the search that
        just ran computed (faiss's ``hnsw_stats``, reset before it)."""
        if index.config.structure == "hnsw":
            return float(_hnsw_stats().ndis) / max(1, len(reduced_queries))
        sizes = index._ivf_lists()[2]
        total = 0
        for lo, hi in _blocks(len(reduced_queries), RANK_BLOCK_QUERIES):  # bounds the distances
            total += int(sizes[index._nearest_lists(reduced_queries[lo:hi], knob)[0]].sum())
        return total / max(1, len(reduced_queries))

    def _cost(self, index: AnnIndex, codes: float, factor: int) -> float:
        """Return the modelled seconds of one query per call at an operating point that scores
        ``codes`` codes and reranks ``k * factor`` candidates, with the planner's constants: a
        count, so two builds of the same data choose the same point however busy the machine
        (timing a whole batch of queries, as the build did, also priced the scans as a batch
        runs them, several times cheaper per query in faiss's fast-scan than one query per
        call, and two builds of the same data could choose different points)."""
        rerank = self.k * factor * self.dim * planner.EXACT_PER_ROW_DIM
        return planner.INDEX_FIXED + codes * index._code_price() + rerank

    def run(self) -> AnnIndex:
        self._report("ground_truth", 0.0)
        fit_queries, tune, how = self._split_queries()
        report = TuningReport(tune_queries=len(tune.queries), held_out=how)
        self._report("ground_truth", 1.0)
        moments = self._moments(fit_queries)
        if self.kind == "ood" and fit_queries is not None:
            self._report("query shrinkage", 0.0)
            # chosen once, at the fixed d' or the middle of the d' grid the search starts from
            grid = _dim_grid(self.dim)
            choice = projections.choose_shrinkage(
                fit_queries,
                moments["data"],
                self.config.reduced_dim or grid[(len(grid) - 1) // 2],
                offset=moments["mean"],
                seed=self.seed,
                iterations=SHRINKAGE_CV_ITERATIONS,
                eigen_grid=SHRINKAGE_CV_EIGEN_GRID,
                folds=SHRINKAGE_CV_FOLDS,
            )
            self.shrinkage = choice.shrinkage
            report.ood_shrinkage = choice.shrinkage
            report.shrinkage_losses = choice.held_out_loss
        dims = self._choose_reduced_dim(tune, fit_queries, moments, report)
        chosen: tuple[float, str, Projection, Any, int, int, float] | None = None
        for attempt, reduced_dim in enumerate(dims):
            base = self._fit(reduced_dim, fit_queries, moments)
            factories = self._candidate_factories(reduced_dim)
            centroids: dict[int, NDArray[np.float32]] = {}
            rotation = _random_rotation(reduced_dim, self.seed)
            for position, factory in enumerate(factories):
                self._report(f"structure {factory}", 0.2 + 0.8 * position / len(factories))
                projection = base
                if _needs_rotation(factory):
                    projection = _rotated(base, rotation)
                reduced = self._reduced_data(projection)
                lists = _list_count(factory)
                shared = centroids.get(lists)
                if shared is not None and _needs_rotation(factory):
                    shared = np.ascontiguousarray(shared @ rotation.T)
                structure = self._train_structure(factory, reduced, shared)
                del reduced
                ivf = faiss.try_extract_index_ivf(structure)
                if ivf is not None and not _needs_rotation(factory) and lists not in centroids:
                    centroids[lists] = ivf.quantizer.reconstruct_n(0, ivf.nlist)
                outcome = self._sweep(factory, projection, structure, tune, report)
                if outcome is None:
                    continue
                seconds, knob, factor, recall = outcome
                report.candidates[f"d'={reduced_dim} {factory}"] = seconds
                better = chosen is None or (
                    (recall >= self.target, -seconds, recall)
                    > (chosen[6] >= self.target, -chosen[0], chosen[6])
                )
                if better:
                    chosen = (seconds, factory, projection, structure, knob, factor, recall)
            if chosen is not None and chosen[6] >= self.target:
                break
            if attempt + 1 < len(dims):
                continue
        assert chosen is not None
        seconds, factory, projection, structure, knob, factor, recall = chosen
        kind = _structure_of(structure)
        ivf = faiss.try_extract_index_ivf(structure)
        config = AnnConfig(
            projection=self.kind,
            reduced_dim=projection.reduced_dim,
            code_bits=_code_bits(structure),
            structure=kind,
            graph_degree=int(structure.hnsw.nb_neighbors(1)) if kind == "hnsw" else None,
            list_count=int(ivf.nlist) if ivf is not None else None,
            ef_search=knob if kind == "hnsw" else None,
            nprobe=knob if kind == "ivf" else None,
            rerank_factor=factor,
            index_factory=factory,
        )
        index = AnnIndex(
            metric=self.metric,
            dim=self.dim,
            projection=projection,
            structure=structure,
            config=config,
            covered_rows=self.rows,
            measured_recall=recall,
            build_seconds=0.0,
            report=report,
        )
        if kind == "ivf":
            self._report("filter calibration", 0.0)
            held = tune.head(FILTER_CALIBRATION_QUERIES)
            index.calibrate_filters(
                self.vectors,
                held.queries,
                self.target,
                exclude=held.exclude,
                source=how,
                seed=self.seed,
            )
        self._report("done", 1.0)
        return index


def _hnsw_stats() -> Any:
    """Return faiss's global HNSW search counters (distances computed, hops)."""
    swig_globals: Any = faiss.cvar
    return swig_globals.hnsw_stats


def _code_bits(structure: Any) -> int:
    index: Any = faiss.downcast_index(structure)
    if isinstance(index, faiss.IndexHNSW):
        storage: Any = faiss.downcast_index(index.storage)
        return 4 if storage.sq.qtype == faiss.ScalarQuantizer.QT_4bit else 8
    ivf: Any = faiss.downcast_index(faiss.extract_index_ivf(index))
    if isinstance(ivf, faiss.IndexIVFScalarQuantizer):
        return 4 if ivf.sq.qtype == faiss.ScalarQuantizer.QT_4bit else 8
    if isinstance(ivf, faiss.IndexIVFPQFastScan):
        # Bits per reduced dim: 4-bit sub-quantizers over dsub dims each.
        return int(ivf.pq.nbits) // int(ivf.pq.dsub)
    return 8
