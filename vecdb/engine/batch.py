"""Batch workloads planned as a whole (HQI): a workload-aware partitioning and grouped scoring.

A batch of hybrid queries (vector + tenant + filter) is answered chunk by chunk; chunks gather
the queries that share a tenant and filter, so each distinct filter is handled once:

1. **One mask per distinct filter**, its predicates (and tenants) evaluated once each and shared
   between filters (:func:`_evaluate_shared`), cached until the collection changes.
2. **A plan per filter, priced in seconds per query** (with a :class:`Partitioning`):

   - *exact*: few matching rows — one product of the filter's queries with those rows;
   - *cells*: the partitioning is a qd-tree cut on the atomic predicates (and tenants) the
     workload uses most, each leaf holding a small IVF over reduced vectors, laid out
     contiguously. A query visits only the cells ("IVF lists") holding rows its mask allows:
     every such cell whose centroid is within a calibrated gap of its nearest, and enough to see
     a minimum of allowed rows;
   - *flat*: a scan of the reduced codes of every allowed row, when that is cheaper than cells
     (or not much dearer: it finds more of the true neighbours);
   - *index*: the collection's own plan (its planner and index), all the filter's queries in one
     call, when that is priced lower than the cells — filters the partitioning does not fit.

   Without a partitioning every filter takes the last plan.
3. **Multi-query optimization.** A filter's queries share one gather of the codes they need
   (flat: every allowed row; cells: the allowed rows of the cells any of them visits). Cells
   are scanned in the locality order of their centroids (a PCA tree over the centroids), in
   blocks of whole cells (their size chosen per filter); each block is scored with one matrix
   product for the queries that visit one of its cells, and each query sees only the cells it
   visits itself. Reduced vectors are held as 8-bit codes, so a gather reads a quarter of the
   bytes; the exact rerank makes up for their rounding. Scores go into per-query heaps
   (faiss), so no block is sorted; the best candidates are reranked exactly with the
   full-precision vectors.

Routing is driven by the masks themselves, never by reasoning about predicates, so a
partitioning only ever changes speed, not which rows a query may return. Rows written after the
partitioning was built are scanned exactly, as the collection does for rows its index does not
cover. Probing depth and rerank factor are calibrated at build on a sample of the workload
against exact search, to a recall target.

:func:`run_batch` is a generator: results stream one chunk at a time, each tagged with its query
id, and a caller cancels a long batch simply by no longer iterating.
"""

from __future__ import annotations

import functools
import heapq
import json
import math
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from vecdb.engine import artefacts, planner
from vecdb.engine import filters as flt
from vecdb.engine.attributes import (
    AttributeTable,
    KeywordColumn,
    KeywordListColumn,
    Mask,
    Rows,
)
from vecdb.engine.errors import FailedPrecondition, InvalidArgument, NotFound
from vecdb.engine.filters import Filter
from vecdb.engine.projection import Projection, fit_pca
from vecdb.engine.schema import Metric, check_name

if TYPE_CHECKING:
    from vecdb.engine.collection import Collection, Hits

Vectors = NDArray[np.float32]
Scores = NDArray[np.float32]
KEYWORD_COLUMNS = (KeywordColumn, KeywordListColumn)
# The batch planner prices each filter's plans in seconds per query, in the unit of
# vecdb.engine.planner (whose estimates price the collection's own plans). Both the flat and the
# cells plan gather the reduced codes of a filter's allowed rows once (cells: only those in a
# cell one of its queries visits) and score them for its queries with one matrix product per
# block, kept in per-query heaps. Measured on the generated 1M set (384-d rows, 128-d reduced
# codes), one thread, on a shared 2-core x86-64 machine, 10,000 queries of 475 filters:
# - scoring a gathered code: 0.06-0.09 ns per dim and query (11-17 G multiply-adds/s with the
#   heaps), so 0.06 ns;
# - gathering a code: 0.09-0.23 µs per row (the higher figure with the machine busy), 0.1 µs
#   (measured with float codes; 8-bit codes, gathered and widened to float, took about 0.08 µs
#   in later profiles, so the figure errs towards fewer gathers);
# - a filter's fixed work (its allowed rows, their cells, each query's visits) and a block of
#   cells' work besides its product (slicing, masks, heaps): about 0.5 ms and 30 µs, estimated
#   from profiles of the same runs.
SCAN_PER_CODE_DIM = 0.06e-9
GATHER_PER_ROW = 0.1e-6
FILTER_FIXED = 0.5e-3
# columns scored per block of a scan (bounds the gathered codes and the score block)
SCAN_BLOCK = 8_192
CELL_BLOCK_FIXED = 30e-6
# allowed rows per block of a cells scan (whole cells): each filter takes the size of these
# whose blocks cost least, products (larger blocks: more queries scored against cells they do
# not visit) plus the fixed work per block
SCAN_CELL_BLOCKS = (256, 512, 1_024, 2_048, 4_096)  # powers of two
assert all(size & (size - 1) == 0 for size in SCAN_CELL_BLOCKS)
# centroid scores computed in one product for a chunk's queries up to this many (64 MB), else
# per filter
CENTROID_SCORES_BOUND = 1 << 24
# rows gathered per block where full vectors are scored or projected (6 MB at 384 dims: they
# stay in cache for the product)
GATHER_BLOCK_ROWS = 4_096
# faiss adds at most this many heap entries per call on the calling thread (above, OpenMP)
HEAP_SERIAL_ENTRIES = 100_000

# recall@k the probing is calibrated for unless asked otherwise: about what the collection's own
# filtered search reaches (0.983-0.987 on the generated 200k / 1M sets), so a batch answers as
# well as its queries run alone would
DEFAULT_RECALL_TARGET = 0.98

# version 2: reduced vectors held as 8-bit codes (version 1's are rounded when loaded)
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
# how a query of a batch was answered
EXACT, FLAT, CELLS, INDEX = 0, 1, 2, 3
PLAN_NAMES = {EXACT: "batch:exact", FLAT: "batch:flat", CELLS: "batch:partition"}
PARTITIONING_FILE = "partitioning.json"
ARRAYS_FILE = "partitioning.npz"


@dataclass(frozen=True)
class BatchQuery:
    """One query of a batch: an id the caller knows it by, a vector, ``k``, tenant and filter."""

    query_id: str
    vector: NDArray[np.float32]
    k: int
    tenant: str | None = None
    filter: Filter | None = None


@dataclass(frozen=True)
class BatchSettings:
    """Knobs of batch execution; None means "as the partitioning was calibrated"."""

    # a filter matching at most this many rows is answered by an exact scan of those rows
    exact_rows: int = 2_048
    # queries per chunk planned together; results stream chunk by chunk
    chunk_size: int = 4_096
    # False: chunks gather the queries that share a tenant and filter, so each filter is
    # evaluated, routed and scanned once per batch (results stream in that planned order, each
    # tagged with its query id); True: chunks follow the input order
    keep_order: bool = False
    # partition path: visit every cell holding allowed rows whose centroid scores within
    # probe_gap of the query's best such cell, and nearest first until at least
    # min_probe_rows allowed rows were seen
    probe_gap: float | None = None
    min_probe_rows: int | None = None
    # candidates kept per query for the exact rerank, as a multiple of k
    rerank_factor: float | None = None
    # a filter's reduced codes are scanned flat when that costs at most this times the cells the
    # probe rule would visit (0: never flat)
    flat_preference: float = 1.2
    # with an index, a filter goes through the collection's own plan when that costs at most
    # this times the cells (0: never)
    index_preference: float = 1.0
    # bytes of filter masks kept between chunks
    mask_cache_bytes: int = 256 << 20
    # BLAS threads while a chunk runs: the per-cell products are small, and on a busy machine
    # one thread per product beats several that wait for each other (None: leave as configured)
    blas_threads: int | None = 1


@dataclass(frozen=True)
class _Probe:
    """The resolved knobs of one partition search."""

    gap: float
    min_rows: int
    rerank_factor: float
    exact_rows: int
    flat_preference: float
    index_preference: float = 1.0


def workload_key(tenant: str | None, filter: Filter | None) -> str:
    """Return a canonical text key for a (tenant, filter) pair: equal filters share one mask."""
    return json.dumps(
        [tenant, None if filter is None else flt.to_json(filter)], sort_keys=True, default=str
    )


# --- the one place that reads a collection's internals ---------------------------------------


@dataclass
class _Snapshot:
    """What a batch reads from a collection, taken under its read lock."""

    rows: int
    live: int
    sequence: int
    metric: Metric
    vectors: Vectors
    norms: NDArray[np.float32]
    alive: Mask


class _Reader:
    """Read-only access to a collection's arrays (replaceable by public accessors later)."""

    def __init__(self, collection: Collection) -> None:
        self.collection = collection

    @contextmanager
    def snapshot(self) -> Iterator[_Snapshot]:
        """Hold the collection's read lock and yield its arrays for the duration of the block."""
        collection = self.collection
        with collection._lock.read():
            cols = collection._cols
            n = collection.row_count
            yield _Snapshot(
                rows=n,
                live=len(collection),
                sequence=collection.sequence,
                metric=collection.metric,
                vectors=cols.vectors,
                norms=cols.norms,
                alive=cols.alive[:n],
            )

    def mask(self, snapshot: _Snapshot, tenant: str | None, filter: Filter | None) -> Mask:
        """Return the rows a (tenant, filter) allows, live rows only (call inside snapshot)."""
        mask = self.collection.candidate_mask(tenant, filter)
        return snapshot.alive.copy() if mask is None else mask

    def tenant_mask(self, snapshot: _Snapshot, tenant: str) -> Mask:
        """Return the rows ``tenant`` may see (call inside snapshot)."""
        mask = np.zeros(snapshot.rows, np.bool_)
        rows = self.collection.tenant_rows(tenant)
        mask[rows[rows < snapshot.rows]] = True
        return mask

    def shared_mask(
        self,
        snapshot: _Snapshot,
        tenant: str | None,
        filter: Filter | None,
        atoms: dict[str, Mask],
    ) -> Mask:
        """Return what :meth:`mask` returns, evaluating each predicate (and tenant) at most once
        across calls that share ``atoms`` (call inside snapshot; ``atoms`` must be dropped when
        the collection changes)."""
        mask = snapshot.alive.copy()
        if tenant is not None:
            key = f"tenant:{tenant}"
            if key not in atoms:
                atoms[key] = self.tenant_mask(snapshot, tenant)
            mask &= atoms[key]
        if filter is not None:
            mask &= _evaluate_shared(filter, self.collection.attributes, snapshot.rows, atoms, 0)
        return mask

    def index_cost(self, snapshot: _Snapshot) -> Callable[[int, int, int], float] | None:
        """Return the seconds per query of the collection's own plan for ``queries`` queries of
        ``k`` on a filter matching ``matching`` rows (the planner's estimate, less the work a
        batch shares between the filter's queries), or None without an index (call inside
        snapshot)."""
        collection = self.collection
        shape = collection.planner.index
        if collection.index is None or shape is None:
            return None
        live = max(snapshot.live, 1)

        def cost(matching: int, k: int, queries: int) -> float:
            plan = planner.choose(
                matching, live, k, filtered=True, has_index=True, settings=collection.planner
            )
            estimates = plan.estimates or planner.estimate(matching, k, collection.dim, shape)
            seconds = estimates.get(plan.name, min(estimates.values()))
            if plan.name == planner.INDEX_SELECTOR:
                # one call per filter shares the work on its mask: the bitmap and the list
                # counts, or (broad filters) the passes over the mask (as the planner prices it)
                if matching / max(shape.rows, 1) >= shape.widen_min_share:
                    shared = shape.rows * planner.MASK_PASS_PER_ROW
                else:
                    shared = planner.SELECTOR_FIXED
                    shared += min(matching, 16 * shape.lists) * planner.COUNT_PER_ROW
                seconds -= min(shared, seconds) * (1.0 - 1.0 / queries)
            return seconds

        return cost

    def search_masked(
        self,
        snapshot: _Snapshot,
        queries: Vectors,
        k: int,
        mask: Mask | None,
        matching: int,
    ) -> list[Hits]:
        """Return what ``Collection.search`` returns for ``queries`` when its candidate mask is
        ``mask`` (None: every live row), without evaluating the filter again: the collection's
        own planner, exact scan and index (call inside snapshot)."""
        from vecdb.engine.collection import Explain, SearchOptions

        collection = self.collection
        index = collection.index
        plan = planner.choose(
            matching,
            max(snapshot.live, 1),
            k,
            filtered=mask is not None,
            has_index=index is not None,
            settings=collection.planner,
        )
        if index is None or plan.name == planner.EXACT:
            scores, rows = collection._exact(queries, k, mask, snapshot.rows)
            scored = matching
        else:
            scores, rows, scored = collection._indexed(
                queries, k, mask, snapshot.rows, index, plan, SearchOptions()
            )
        explain = Explain(
            plan=plan.name,
            estimated_selectivity=plan.selectivity,
            matching_points=matching,
            candidates_scored=scored,
            detail=plan.reason,
        )
        return collection._hits(scores, rows, explain)

    def ids(self, rows: Rows) -> list[str]:
        """Return the point ids of ``rows`` (call inside snapshot)."""
        ids = self.collection._cols.ids
        return [ids[r] or "" for r in rows.tolist()]


def _evaluate_shared(
    node: Filter, table: AttributeTable, n: int, atoms: dict[str, Mask], depth: int
) -> Mask:
    """Evaluate a filter as :func:`filters.evaluate` does, reusing predicate masks in ``atoms``.

    Predicates are evaluated by :func:`filters.evaluate` itself (same semantics and errors); only
    the and / or / not combination happens here. Masks in ``atoms`` are never modified.
    """
    if depth > flt.MAX_DEPTH or (isinstance(node, flt.And | flt.Or) and not node.children):
        return flt.evaluate(node, table, n)  # raises the engine's own error
    if isinstance(node, flt.And | flt.Or):
        children = [_evaluate_shared(c, table, n, atoms, depth + 1) for c in node.children]
        combined = children[0].copy()
        for child in children[1:]:
            if isinstance(node, flt.And):
                combined &= child
            else:
                combined |= child
        return combined
    if isinstance(node, flt.Not):
        return ~_evaluate_shared(node.child, table, n, atoms, depth + 1)
    column = table.columns.get(node.field)
    if isinstance(node, flt.In) and node.values and isinstance(column, KEYWORD_COLUMNS):
        # "any of" over keywords: an or of single-keyword predicates, each shared with others
        single = flt.Contains if isinstance(column, KeywordListColumn) else flt.Equals
        if all(isinstance(value, str) for value in node.values):
            either = flt.Or(tuple(single(node.field, str(value)) for value in node.values))
            return _evaluate_shared(either, table, n, atoms, depth)
    key = json.dumps(flt.to_json(node), sort_keys=True, default=str)
    found = atoms.get(key)
    if found is None:
        found = flt.evaluate(node, table, n)
        atoms[key] = found
    return found


# --- scoring helpers --------------------------------------------------------------------------


def _exact_scores(snapshot: _Snapshot, queries: Vectors, rows: Rows) -> Scores:
    """Return (m, len(rows)) higher-is-better scores of ``queries`` against shared ``rows``."""
    block = np.take(snapshot.vectors, rows, axis=0)  # faster than fancy indexing for rows
    dots: Scores = np.ascontiguousarray((block @ queries.T).T)
    if snapshot.metric is Metric.IP:
        return dots
    norms = snapshot.norms[rows]
    if snapshot.metric is Metric.COSINE:
        query_norms = np.linalg.norm(queries, axis=1, keepdims=True)
        cosine: Scores = dots / (query_norms * norms[None, :])
        return cosine
    query_sq = np.einsum("ij,ij->i", queries, queries)[:, None]
    negated: Scores = (2.0 * dots - query_sq - (norms * norms)[None, :]).astype(np.float32)
    return negated


def _candidate_scores(snapshot: _Snapshot, queries: Vectors, candidates: Rows) -> Scores:
    """Return exact scores of each query against its own candidate rows (-1: -inf), computed
    by faiss on the rows where they lie (no gathered copy of every candidate)."""
    from vecdb.engine.ann import _scores_in_place

    valid = candidates >= 0
    safe = np.ascontiguousarray(np.where(valid, candidates, 0), dtype=np.int64)
    m, count = safe.shape
    scores = _scores_in_place(
        np.ascontiguousarray(queries, dtype=np.float32),
        safe.reshape(-1),
        np.ascontiguousarray(snapshot.vectors, dtype=np.float32),  # a collection's already are
        snapshot.metric.value,
        snapshot.norms,
        m,
        count,
    )
    if snapshot.metric is Metric.COSINE:  # faiss divided by the rows' norms only
        scores /= np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-30)
    elif snapshot.metric is Metric.L2:  # squared distances: higher is better here
        np.negative(scores, out=scores)
    return np.where(valid, scores, -np.inf).astype(np.float32)


def _prepare_rows(metric: Metric, vectors: Vectors) -> Vectors:
    """Vectors as the reduced space compares them (cosine: unit length)."""
    if metric is Metric.COSINE:
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        out: Vectors = (vectors / np.maximum(norms, 1e-30)).astype(np.float32)
        return out
    return np.asarray(vectors, dtype=np.float32)


def _bias(metric: Metric, codes: Vectors) -> NDArray[np.float32]:
    """Per-row score offset: l2 ranks by q·x - |x|²/2, the others by q·x."""
    if metric is Metric.L2:
        squares: NDArray[np.float32] = np.einsum("ij,ij->i", codes, codes)
        return (-0.5 * squares).astype(np.float32)
    return np.zeros(len(codes), np.float32)


def quantize_codes(
    vectors: Vectors,
) -> tuple[NDArray[np.int8], NDArray[np.float32], NDArray[np.float32]]:
    """Return 8-bit codes of ``vectors`` and the per-dimension scale and offset that restore
    them: ``vectors ≈ offset + scale * codes``, codes in [-127, 127] spanning each dimension's
    range (the rounding error is at most half a step, 1/254 of that range)."""
    low = vectors.min(axis=0) if len(vectors) else np.zeros(vectors.shape[1], np.float32)
    high = vectors.max(axis=0) if len(vectors) else np.zeros(vectors.shape[1], np.float32)
    offset = ((high + low) / 2).astype(np.float32)
    spread = (high - low) / 254
    scale = np.where(spread > 0, spread, 1.0).astype(np.float32)
    codes = np.empty(vectors.shape, np.int8)
    for lo in range(0, len(vectors), 65_536):  # bounds the temporary floats
        block = np.rint((vectors[lo : lo + 65_536] - offset) / scale)
        codes[lo : lo + len(block)] = np.clip(block, -127, 127)
    return codes, scale, offset


def _code_bias(
    metric: Metric,
    codes: NDArray[Any],
    scale: NDArray[np.float32] | None,
    offset: NDArray[np.float32] | None,
) -> NDArray[np.float32]:
    """Return :func:`_bias` of the vectors the (possibly 8-bit) codes stand for."""
    if metric is not Metric.L2:
        return np.zeros(len(codes), np.float32)
    if scale is None or offset is None:
        return _bias(metric, codes)
    out = np.empty(len(codes), np.float32)
    for lo in range(0, len(codes), 65_536):
        out[lo : lo + 65_536] = _bias(metric, offset + scale * codes[lo : lo + 65_536])
    return out


# --- the partitioning ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Atom:
    """A cut of the qd-tree: an atomic predicate, or visibility to a tenant."""

    tenant: str | None = None
    filter: Filter | None = None

    def to_json(self) -> dict[str, object]:
        """Return the JSON form of the cut."""
        if self.tenant is not None:
            return {"tenant": self.tenant}
        assert self.filter is not None
        return {"filter": flt.to_json(self.filter)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Atom:
        """Return the cut a :meth:`to_json` object describes."""
        if "tenant" in data:
            return cls(tenant=str(data["tenant"]))
        return cls(filter=flt.from_json(data["filter"]))

    def describe(self) -> str:
        """Return a short human-readable form."""
        if self.tenant is not None:
            return f"tenant={self.tenant}"
        return json.dumps(self.to_json()["filter"], sort_keys=True)


def atoms_of(filter: Filter | None) -> list[Filter]:
    """Return the atomic predicates a filter requires (its conjuncts that are not and/or/not)."""
    if filter is None:
        return []
    if isinstance(filter, flt.And):
        return [atom for child in filter.children for atom in atoms_of(child)]
    if isinstance(filter, flt.Or | flt.Not):
        return []
    return [filter]


@dataclass
class _Node:
    """A qd-tree node: a cut with two children, or a leaf."""

    atom: Atom | None = None
    match: int = -1
    rest: int = -1
    leaf: int = -1


@dataclass
class Partitioning:
    """A qd-tree over a collection's rows, each leaf with its own small IVF over reduced vectors.

    Cells (the IVF lists of every leaf) are stored contiguously: ``order[cell_starts[c]:
    cell_starts[c + 1]]`` are the rows of cell ``c`` and ``codes`` the same slice of their reduced
    vectors, so the queries probing a cell are scored with one matrix product. Reduced vectors
    are held as 8-bit codes (a scale and offset per dimension, see :func:`quantize_codes`): a
    scan gathers a quarter of the bytes, and the exact rerank makes up for the rounding. Without
    a projection the codes are the full vectors, unrounded.
    """

    metric: Metric
    dim: int
    covered_rows: int
    sequence: int
    projection: Projection | None
    order: Rows
    codes: NDArray[Any]  # float32, or int8 with code_scale and code_offset
    bias: NDArray[np.float32]
    cell_starts: Rows
    cell_leaf: NDArray[np.int32]
    centroids: Vectors
    centroid_bias: NDArray[np.float32]
    nodes: list[_Node]
    leaf_paths: list[list[tuple[Atom, bool]]]
    # with a projection, ``codes`` are 8-bit: reduced vector = code_offset + code_scale * code
    code_scale: NDArray[np.float32] | None = None
    code_offset: NDArray[np.float32] | None = None
    probe_gap: float = 0.1
    min_probe_rows: int = 1_024
    rerank_factor: float = 4.0
    measured_recall: float | None = None
    build_seconds: float = 0.0
    # cells stored in the locality order of their centroids (so storage order is scan order)
    locality_ordered: bool = False
    cell_of_row: NDArray[np.int32] = field(init=False, repr=False)
    cell_rank: NDArray[np.int64] = field(init=False, repr=False)
    code_rows: NDArray[np.void] = field(init=False, repr=False)
    # the collection's attributes in storage order (built on first need, see attributes_in_order)
    _attributes: tuple[AttributeTable, AttributeTable] | None = field(
        init=False, repr=False, default=None
    )

    def __post_init__(self) -> None:
        self.codes = np.ascontiguousarray(self.codes)
        # each row's code as one record, so a gather copies whole rows
        self.code_rows = self.codes.view(
            np.dtype((np.void, self.codes.dtype.itemsize * self.codes.shape[1]))
        ).reshape(-1)
        self.cell_of_row = np.full(self.covered_rows, -1, np.int32)
        sizes = np.diff(self.cell_starts)
        self.cell_of_row[self.order] = np.repeat(np.arange(len(sizes), dtype=np.int32), sizes)
        if self.locality_ordered:
            self.cell_rank = np.arange(len(sizes), dtype=np.int64)
        else:
            self.cell_rank = np.empty(len(sizes), np.int64)
            self.cell_rank[_locality_order(self.centroids)] = np.arange(len(sizes))

    def in_locality_order(self) -> Partitioning:
        """Return this partitioning with its cells stored in the locality order of their
        centroids, so a filter's scan reads the codes in storage order (no sort by cell)."""
        if self.locality_ordered:
            return self
        cells = np.argsort(self.cell_rank, kind="stable")
        sizes = np.diff(self.cell_starts)[cells]
        ends = np.cumsum(sizes)
        positions = np.repeat(self.cell_starts[cells] - (ends - sizes), sizes) + np.arange(
            int(ends[-1]) if len(ends) else 0
        )
        return replace(
            self,
            order=self.order[positions],
            codes=np.ascontiguousarray(self.codes[positions]),
            bias=self.bias[positions],
            cell_starts=np.concatenate([[0], ends]).astype(np.int64),
            cell_leaf=self.cell_leaf[cells],
            centroids=np.ascontiguousarray(self.centroids[cells]),
            centroid_bias=self.centroid_bias[cells],
            locality_ordered=True,
        )

    # --- description ----------------------------------------------------------------------------

    @property
    def leaf_count(self) -> int:
        """The number of leaves of the qd-tree."""
        return len(self.leaf_paths)

    @property
    def cell_count(self) -> int:
        """The number of IVF lists over all leaves."""
        return len(self.cell_leaf)

    @property
    def reduced_dim(self) -> int:
        """The dimension cells are scored in."""
        return int(self.codes.shape[1])

    def memory_bytes(self) -> int:
        """Return the bytes the partitioning holds in memory."""
        arrays = (
            self.order,
            self.codes,
            self.bias,
            self.cell_starts,
            self.cell_leaf,
            self.centroids,
            self.centroid_bias,
            self.cell_of_row,
        )
        total = sum(int(a.nbytes) for a in arrays)
        for extra in (self.code_scale, self.code_offset):
            total += 0 if extra is None else int(extra.nbytes)
        if self.projection is not None:
            total += int(self.projection.data_matrix.nbytes + self.projection.query_matrix.nbytes)
        if self._attributes is not None:
            total += self._attributes[1].nbytes()
        return total

    def describe(self) -> dict[str, object]:
        """Return what the partitioning is: leaves, their paths and sizes, and its settings."""
        leaf_rows = np.bincount(
            self.cell_leaf, weights=np.diff(self.cell_starts), minlength=self.leaf_count
        )
        return {
            "leaves": self.leaf_count,
            "cells": self.cell_count,
            "covered_rows": self.covered_rows,
            "reduced_dim": self.reduced_dim,
            "probe_gap": self.probe_gap,
            "min_probe_rows": self.min_probe_rows,
            "rerank_factor": self.rerank_factor,
            "measured_recall": self.measured_recall,
            "build_seconds": self.build_seconds,
            "memory_bytes": self.memory_bytes(),
            "leaf_paths": [
                {
                    "rows": int(leaf_rows[i]),
                    "path": [("" if side else "not ") + atom.describe() for atom, side in path],
                }
                for i, path in enumerate(self.leaf_paths)
            ],
        }

    # --- projection -------------------------------------------------------------------------------

    def project_queries(self, queries: Vectors) -> Vectors:
        """Return queries in the space cells are scored in."""
        prepared = _prepare_rows(self.metric, queries)
        if self.projection is None:
            return np.ascontiguousarray(prepared)
        return self.projection.project_queries(prepared)

    def project_rows(self, vectors: Vectors) -> Vectors:
        """Return stored vectors in the space cells are scored in."""
        prepared = _prepare_rows(self.metric, vectors)
        if self.projection is None:
            return np.ascontiguousarray(prepared)
        return self.projection.project_data(prepared)

    # --- positions ------------------------------------------------------------------------------
    # A batch works on positions rather than rows: first the covered rows in storage order (cell
    # by cell, so a filter's allowed positions come out grouped by cell), then the rows written
    # since the partitioning, in row order.

    def rows_at(self, positions: Rows) -> Rows:
        """Return the collection rows at ``positions``."""
        stored = len(self.order)
        inside = positions < stored
        rows: Rows = np.where(
            inside,
            self.order[np.where(inside, positions, 0)],
            positions - stored + self.covered_rows,
        )
        return rows

    def position_mask(self, mask: Mask) -> Mask:
        """Return a mask over the collection's rows as a mask over positions."""
        return np.concatenate([mask[self.order], mask[self.covered_rows :]])

    def attributes_in_order(self, table: AttributeTable) -> AttributeTable:
        """Return the collection's attribute ``table`` for the covered rows in storage order
        (copied on first need, then kept with the partitioning): a filter evaluated on it gives a
        mask over positions directly. Covered rows never get new values, and deleted rows are
        masked out as dead, so the copy stays valid."""
        found = self._attributes
        if found is None or found[0] is not table:
            found = (table, table.permuted(self.order))
            self._attributes = found
        return found[1]

    # --- building ---------------------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        collection: Collection,
        workload: Sequence[BatchQuery],
        *,
        reduced_dim: int | None = -1,
        list_rows: int = 256,
        max_leaves: int = 16,
        min_leaf_rows: int = 4_096,
        sample_rows: int = 32_768,
        recall_target: float = DEFAULT_RECALL_TARGET,
        settings: BatchSettings | None = None,
        seed: int = 0,
        progress: Callable[[str, float], None] | None = None,
    ) -> Partitioning:
        """Return a partitioning of ``collection`` learned from the workload's predicates.

        ``reduced_dim``: the dimension cells are scored in (-1: about a third of ``dim``, at least
        32; None: full vectors). Probing is calibrated on a sample of the workload's queries to
        reach ``recall_target`` recall@k against exact search.
        """
        import faiss  # noqa: F401  (loaded before the thread limits, so they reach its OpenMP pool)

        settings = settings or BatchSettings()
        if not 0.0 < recall_target <= 1.0:
            raise InvalidArgument(f"recall_target {recall_target} is not allowed: use (0, 1]")
        with _blas_threads(settings.blas_threads, user_api=None):
            return cls._build(
                collection,
                workload,
                reduced_dim=reduced_dim,
                list_rows=list_rows,
                max_leaves=max_leaves,
                min_leaf_rows=min_leaf_rows,
                sample_rows=sample_rows,
                recall_target=recall_target,
                settings=settings,
                seed=seed,
                progress=progress,
            )

    @classmethod
    def _build(
        cls,
        collection: Collection,
        workload: Sequence[BatchQuery],
        *,
        reduced_dim: int | None,
        list_rows: int,
        max_leaves: int,
        min_leaf_rows: int,
        sample_rows: int,
        recall_target: float,
        settings: BatchSettings,
        seed: int,
        progress: Callable[[str, float], None] | None,
    ) -> Partitioning:
        import faiss

        started = time.perf_counter()
        say = progress or (lambda stage, fraction: None)
        reader = _Reader(collection)
        rng = np.random.default_rng(seed)
        key_tenants, key_filters, key_weights = _distinct_keys(workload)
        cuts = _candidate_atoms(workload)
        say("masks", 0.0)
        with reader.snapshot() as snap:
            n = snap.rows
            key_masks = [
                reader.mask(snap, t, f) for t, f in zip(key_tenants, key_filters, strict=True)
            ]
            atom_masks: list[Mask] = []
            kept_atoms: list[Atom] = []
            for atom in cuts:
                if atom.tenant is not None:
                    mask = reader.tenant_mask(snap, atom.tenant) & snap.alive
                else:
                    mask = reader.mask(snap, None, atom.filter)
                atom_masks.append(mask)
                kept_atoms.append(atom)
            alive_rows = np.flatnonzero(snap.alive).astype(np.int64)
            vectors = snap.vectors
            metric = snap.metric
            sequence = snap.sequence
        dim = int(vectors.shape[1])
        if len(alive_rows) == 0:
            raise InvalidArgument(f"collection {collection.name!r} is empty: nothing to partition")

        # the qd-tree, grown greedily on a sample of rows
        say("tree", 0.1)
        sample = np.sort(
            rng.choice(alive_rows, size=min(sample_rows, len(alive_rows)), replace=False)
        )
        scale = len(alive_rows) / len(sample)
        counts = np.asarray([int(np.count_nonzero(m)) for m in key_masks], dtype=np.float64)
        # a query on the partition path scans about (rows it touches) / (its matching rows) rows
        # per matching row it needs; exact-path queries do not depend on the layout
        weights = np.where(counts > settings.exact_rows, key_weights / np.maximum(counts, 1), 0.0)
        nodes = _grow_tree(
            np.stack([m[sample] for m in key_masks])
            if key_masks
            else np.zeros((0, len(sample)), np.bool_),
            np.stack([m[sample] for m in atom_masks])
            if atom_masks
            else np.zeros((0, len(sample)), np.bool_),
            weights,
            kept_atoms,
            min_leaf=max(1, math.ceil(min_leaf_rows / scale)),
            max_leaves=max_leaves,
        )
        leaf_rows, leaf_paths = _assign_leaves(nodes, alive_rows, kept_atoms, atom_masks)
        del key_masks, atom_masks

        # the projection: reuse the index's when it has one, else PCA on a sample of the data
        say("projection", 0.2)
        projection: Projection | None = None
        index_projection = getattr(collection.index, "projection", None)
        if not isinstance(index_projection, Projection) or index_projection.dim != dim:
            index_projection = None
        if reduced_dim == -1 and index_projection is not None:
            reduced_dim = index_projection.reduced_dim
        elif reduced_dim == -1:
            reduced_dim = None if dim <= 64 else max(32, int(16 * round(dim / 3 / 16)))
        if reduced_dim is not None and reduced_dim < dim:
            if index_projection is not None and index_projection.reduced_dim == reduced_dim:
                projection = index_projection
            else:
                fit_rows = np.sort(
                    rng.choice(alive_rows, size=min(32_768, len(alive_rows)), replace=False)
                )
                projection = fit_pca(
                    _prepare_rows(metric, np.asarray(vectors[fit_rows])),
                    reduced_dim,
                    center=metric is Metric.L2,
                )

        # one small IVF per leaf, cells laid out contiguously
        orders: list[Rows] = []
        code_blocks: list[Vectors] = []
        starts: list[int] = [0]
        cell_leaf: list[int] = []
        centroid_blocks: list[Vectors] = []
        total = sum(len(r) for r in leaf_rows)
        done = 0
        for leaf, rows in enumerate(leaf_rows):
            say("lists", 0.25 + 0.7 * done / max(total, 1))
            done += len(rows)
            if len(rows) == 0:
                continue
            codes = _project(projection, metric, vectors, rows)
            lists = max(1, round(len(rows) / list_rows))
            if lists == 1:
                assignment = np.zeros(len(rows), np.int64)
                centroids = codes.mean(axis=0, keepdims=True).astype(np.float32)
            else:
                kmeans = faiss.Kmeans(
                    codes.shape[1],
                    lists,
                    niter=10,
                    seed=seed + leaf,
                    spherical=metric is Metric.COSINE,
                    max_points_per_centroid=64,
                )
                kmeans.train(codes)
                centroids = np.asarray(kmeans.centroids, dtype=np.float32)
                _, nearest = kmeans.index.search(codes, 1)
                assignment = nearest[:, 0].astype(np.int64)
            sizes = np.bincount(assignment, minlength=len(centroids))
            nonempty = np.flatnonzero(sizes)
            permutation = np.argsort(assignment, kind="stable")
            orders.append(rows[permutation])
            code_blocks.append(codes[permutation])
            for c in nonempty:
                starts.append(starts[-1] + int(sizes[c]))
                cell_leaf.append(leaf)
            centroid_blocks.append(centroids[nonempty])
        order = np.concatenate(orders).astype(np.int64)
        codes_all = np.ascontiguousarray(np.concatenate(code_blocks), dtype=np.float32)
        del code_blocks
        centroids_all = np.ascontiguousarray(np.concatenate(centroid_blocks), dtype=np.float32)
        stored: NDArray[Any] = codes_all
        code_scale = code_offset = None
        if projection is not None:
            stored, code_scale, code_offset = quantize_codes(codes_all)
        del codes_all
        part = cls(
            metric=metric,
            dim=dim,
            covered_rows=n,
            sequence=sequence,
            projection=projection,
            order=order,
            codes=stored,
            bias=_code_bias(metric, stored, code_scale, code_offset),
            code_scale=code_scale,
            code_offset=code_offset,
            cell_starts=np.asarray(starts, dtype=np.int64),
            cell_leaf=np.asarray(cell_leaf, dtype=np.int32),
            centroids=centroids_all,
            centroid_bias=_bias(metric, centroids_all),
            nodes=nodes,
            leaf_paths=leaf_paths,
        )
        part = part.in_locality_order()
        say("calibration", 0.95)
        part._calibrate(collection, workload, recall_target, settings, rng)
        part.build_seconds = time.perf_counter() - started
        say("done", 1.0)
        return part

    def _calibrate(
        self,
        collection: Collection,
        workload: Sequence[BatchQuery],
        recall_target: float,
        settings: BatchSettings,
        rng: np.random.Generator,
        sample_size: int = 384,
    ) -> None:
        """Choose probing depth and rerank factor: the cheapest that reach ``recall_target``.

        For a sample of the workload's partition-path queries, exact search gives the true
        neighbours, and the position of each neighbour's cell in the query's probe order gives the
        probing depth that finds it. The probe rule (every cell within a gap of the nearest, and
        enough to see a floor of allowed rows) is fitted to those depths for a share of the true
        neighbours in the cells visited; real searches then check each rerank factor, lightest
        first, and each round asks the cells for a larger share, up to 12 rounds (fewer once a
        round's scan alone costs more than the cheapest setting found). The cheapest setting
        whose searches reach ``recall_target`` is kept.
        """
        reader = _Reader(collection)
        with reader.snapshot() as snap:
            masks: dict[str, Mask] = {}
            picked: list[BatchQuery] = []
            for i in rng.permutation(len(workload))[: 8 * sample_size].tolist():
                query = workload[i]
                key = workload_key(query.tenant, query.filter)
                if key not in masks:
                    masks[key] = reader.mask(snap, query.tenant, query.filter)
                if int(np.count_nonzero(masks[key])) > max(settings.exact_rows, query.k):
                    picked.append(query)
                if len(picked) == sample_size:
                    break
            if not picked:
                self.measured_recall = 1.0
                return
            vectors = np.stack([q.vector for q in picked]).astype(np.float32)
            ks = np.asarray([q.k for q in picked], dtype=np.int64)
            keys = [workload_key(q.tenant, q.filter) for q in picked]
            distinct = list(dict.fromkeys(keys))
            slot = {key: i for i, key in enumerate(distinct)}
            key_masks = [self.position_mask(masks[key]) for key in distinct]
            mask_ids = np.asarray([slot[key] for key in keys], dtype=np.int64)
            truth = _exact_truth(snap, vectors, ks, keys, masks, self.covered_rows)
            depth = _probe_depths(self, snap, vectors, [masks[key] for key in keys], truth)
            factors = (2.0, 3.0, 5.0, 8.0, 12.0) if self.projection is not None else (1.0,)
            mean_k = float(ks.mean())
            chosen: tuple[float, int, float, float] | None = None
            cheapest = math.inf
            fitted_on = np.arange(len(picked))
            goal = recall_target
            # cells must reach at least the target's share of the true neighbours; try deeper
            # probing with lighter reranks too, and keep the cheapest setting that reaches it
            # (each round lets the cells miss a fifth fewer neighbours: small steps, so the
            # setting kept lands near the target rather than well past it)
            keeps = {factor: self._keep(snap, ks, factor) for factor in factors}
            scan_price = self.reduced_dim * SCAN_PER_CODE_DIM + GATHER_PER_ROW
            rerank_costs = {f: f * mean_k * self.dim * planner.RERANK_PER_DIM for f in factors}
            lightest = rerank_costs[factors[0]]

            def scan_price_of(scan: _Scan) -> float:
                cells = scan.plans == CELLS
                return float(scan.scanned[cells].mean()) * scan_price if cells.any() else 0.0

            for _ in range(12):
                gap, floor = depth.subset(fitted_on).fit(goal)

                # a scan depends on the candidates kept only through each query's floor and
                # whether its filter is answered exactly (the plans are all cells here), so
                # factors that agree on those share one scan, kept for the largest of them:
                # each smaller factor's candidates are the first of its
                scan_keys = {
                    factor: np.maximum(keep, floor).tobytes()
                    + np.maximum(keep, settings.exact_rows).tobytes()
                    for factor, keep in keeps.items()
                }
                scans: dict[bytes, _Scan] = {}
                for factor in factors:
                    rerank_cost = rerank_costs[factor]
                    if rerank_cost >= cheapest:
                        break
                    # every sampled filter through the cells (whichever plan it gets later)
                    probe = _Probe(gap, floor, factor, settings.exact_rows, 0.0, 0.0)
                    shared = scan_keys[factor]
                    scan = scans.get(shared)
                    if scan is None:
                        # the largest factor this round still tries (the round stops at the
                        # first whose rerank alone costs the cheapest setting found)
                        largest = max(
                            f
                            for f in factors
                            if scan_keys[f] == shared and rerank_costs[f] < cheapest
                        )
                        scan = scans[shared] = self._scan(
                            snap,
                            vectors,
                            ks,
                            key_masks,
                            keeps[largest],
                            probe=probe,
                            mask_ids=mask_ids,
                        )
                    found = self._finish(snap, vectors, key_masks, scan, keeps[factor])[1]
                    through_cells = np.flatnonzero(scan.plans == CELLS)
                    # clear the target by a standard error of the estimate, or picking the
                    # cheapest of many settings would favour lucky samples
                    recall = _recall(
                        found[through_cells], [truth[i] for i in through_cells], margin=True
                    )
                    if recall >= recall_target:
                        cost = rerank_cost + scan_price_of(scan)
                        if cost < cheapest:
                            cheapest = cost
                            chosen = (
                                gap,
                                floor,
                                factor,
                                _recall(found[through_cells], [truth[i] for i in through_cells]),
                            )
                        break
                # later rounds probe deeper, so they scan about as many rows or more: once even
                # the lightest rerank over this round's scan costs more than the cheapest setting
                # found (or no factor was worth trying), no later round can be cheaper
                if not scans or lightest + min(map(scan_price_of, scans.values())) >= cheapest:
                    break
                if len(through_cells) >= 16:
                    fitted_on = through_cells
                goal = 1.0 - (1.0 - goal) * 0.8
            if chosen is None:
                # nothing reached the target: probe every cell holding a matching row
                self.probe_gap, self.min_probe_rows = math.inf, 1 << 62
                self.rerank_factor = factors[-1]
                self.measured_recall = None
                return
            self.probe_gap, self.min_probe_rows, self.rerank_factor, self.measured_recall = chosen

    # --- searching --------------------------------------------------------------------------------

    def _search(
        self,
        snap: _Snapshot,
        queries: Vectors,
        ks: NDArray[np.int64],
        masks: Sequence[Mask],
        *,
        probe: _Probe,
        mask_ids: NDArray[np.int64] | None = None,
        index_cost: Callable[[int, int, int], float] | None = None,
    ) -> tuple[Scores, Rows, NDArray[np.int64], NDArray[np.int8]]:
        """Return internal scores, rows (-1 padded to the largest k), rows scored, and the plan
        (:data:`EXACT`, :data:`FLAT` or :data:`CELLS`) of each query.

        ``masks[mask_ids[i]]`` is query ``i``'s mask over positions (see :meth:`rows_at`;
        default: one mask each). Per distinct mask the plan is the cheapest of: an exact scan of
        its rows (only when they are few), a flat scan of the reduced codes of all its rows, or a
        scan of its rows in the cells the probe rule visits; the last two keep the best
        candidates and rerank them exactly.
        With ``index_cost`` (the collection's own plan per query, given the matching rows, k and
        the number of queries), filters it prices lower are left out (plan :data:`INDEX`) for
        the caller to answer through the collection.
        """
        keep = self._keep(snap, ks, probe.rerank_factor)
        scan = self._scan(
            snap, queries, ks, masks, keep, probe=probe, mask_ids=mask_ids, index_cost=index_cost
        )
        scores, rows = self._finish(snap, queries, masks, scan, keep)
        return scores, rows, scan.scanned, scan.plans

    def _keep(self, snap: _Snapshot, ks: NDArray[np.int64], factor: float) -> NDArray[np.int64]:
        """Return how many candidates each query keeps for the exact rerank."""
        keep = ks.copy()
        if self.projection is not None:
            keep = np.maximum(ks, np.ceil(ks * factor).astype(np.int64))
        out: NDArray[np.int64] = np.minimum(keep, max(snap.rows, 1))
        return out

    def _scan(
        self,
        snap: _Snapshot,
        queries: Vectors,
        ks: NDArray[np.int64],
        masks: Sequence[Mask],
        keep: NDArray[np.int64],
        *,
        probe: _Probe,
        mask_ids: NDArray[np.int64] | None = None,
        index_cost: Callable[[int, int, int], float] | None = None,
    ) -> _Scan:
        """Plan each distinct mask (see :meth:`_search`), answer the exact plans and collect the
        other queries' best ``keep`` candidates by reduced score (``keep`` replaces
        ``probe.rerank_factor``, which is not read)."""
        m = len(queries)
        ids = np.arange(m, dtype=np.int64) if mask_ids is None else mask_ids
        k_max = int(ks.max())
        stored, covered = len(self.order), self.covered_rows
        reduced = self.project_queries(queries)
        # scored against 8-bit codes, q·x = q·offset + (q * scale)·code: the first term is the
        # same for every row of a query, so it is left out (only each query's ranking matters)
        scan_queries = self._scan_queries(reduced)
        keep_max = int(keep.max())
        scores_out = np.full((m, k_max), -np.inf, np.float32)
        rows_out = np.full((m, k_max), -1, np.int64)
        scanned = np.zeros(m, np.int64)
        plans = np.full(m, EXACT, np.int8)
        # each query's best candidates by reduced score
        best_scores = np.full((m, keep_max), -np.inf, np.float32)
        best_rows = np.full((m, keep_max), -1, np.int64)
        approximate: list[tuple[int, NDArray[np.int64]]] = []
        rerank_cost = float(np.mean(keep)) * self.dim * planner.RERANK_PER_DIM
        # filters with few matching rows are answered exactly; the others need the centroid
        # scores of their queries (one product for all of them)
        routed: list[tuple[int, NDArray[np.int64], int]] = []
        for mask_id in np.unique(ids).tolist():
            members = np.flatnonzero(ids == mask_id)
            mask = masks[mask_id]
            matching = int(np.count_nonzero(mask))
            if matching <= max(probe.exact_rows, int(keep[members].max())):
                rows = np.sort(self.rows_at(np.flatnonzero(mask)))
                self._exact_into(snap, queries, members, rows, k_max, scores_out, rows_out)
                scanned[members] = matching
            else:
                routed.append((mask_id, members, matching))
        need = np.concatenate([members for _, members, _ in routed]) if routed else ids[:0]
        centroid_scores = None
        if len(need) * self.cell_count <= CENTROID_SCORES_BOUND:
            centroid_scores = reduced[need] @ self.centroids.T
        line = 0
        for mask_id, members, matching in routed:
            # allowed positions come cell by cell: where each cell's run of them starts
            allowed = np.flatnonzero(masks[mask_id][:stored])
            runs = np.searchsorted(allowed, self.cell_starts)
            if centroid_scores is not None:
                near = centroid_scores[line : line + len(members)]
            else:
                near = reduced[members] @ self.centroids.T
            line += len(members)
            # the cells holding allowed rows, how many each, and who visits which
            per_cell = np.diff(runs)
            present = np.flatnonzero(per_cell).astype(np.int64)
            counts = per_cell[present]
            floor = np.maximum(probe.min_rows, keep[members])
            if len(present) < self.cell_count:
                near = near[:, present]
            if self.metric is Metric.L2:
                near += self.centroid_bias[present]
            visits = self._visits(near, counts, probe, floor)
            layout = self._cell_layout(present, counts, visits)
            # seconds per query (see SCAN_PER_CODE_DIM): flat gathers every allowed row's code
            # once per filter and scores it for every query of the filter; cells gather those
            # in a cell some query visits and score each block of cells for the queries
            # visiting one of them
            group = len(members)
            flat_cost = (FILTER_FIXED + len(allowed) * GATHER_PER_ROW) / group + rerank_cost
            flat_cost += len(allowed) * self.reduced_dim * SCAN_PER_CODE_DIM
            cell_cost = (FILTER_FIXED + layout.rows * GATHER_PER_ROW) / group + rerank_cost
            cell_cost += layout.work / group * self.reduced_dim * SCAN_PER_CODE_DIM
            cell_cost += layout.blocks * CELL_BLOCK_FIXED / group
            own_cost = min(cell_cost, flat_cost / max(probe.flat_preference, 1e-9))
            if (
                index_cost is not None
                and index_cost(matching, int(ks[members].max()), group)
                <= probe.index_preference * own_cost
            ):
                plans[members] = INDEX  # left to the caller
                continue
            approximate.append((mask_id, members))
            if flat_cost <= probe.flat_preference * cell_cost:
                self._scan_into(scan_queries, members, allowed, keep, best_scores, best_rows)
                scanned[members] = len(allowed)
                plans[members] = FLAT
                continue
            # a query sees only the rows of the cells it visits itself, so its answer does not
            # depend on the other queries of its filter
            positions = self._cell_positions(layout, allowed, runs)
            self._scan_cells(scan_queries, members, layout, positions, keep, best_scores, best_rows)
            scanned[members] = layout.visible_rows
            plans[members] = CELLS
        if snap.rows > covered:  # rows written since the partitioning are scanned exactly
            for mask_id, members in approximate:
                scanned[members] += int(np.count_nonzero(masks[mask_id][stored:]))
        return _Scan(scores_out, rows_out, scanned, plans, best_scores, best_rows, approximate)

    def _finish(
        self,
        snap: _Snapshot,
        queries: Vectors,
        masks: Sequence[Mask],
        scan: _Scan,
        keep: NDArray[np.int64],
    ) -> tuple[Scores, Rows]:
        """Return every query's (scores, rows): the exact plans' answers, and for the others an
        exact rerank of their best ``keep`` candidates of the scan (at most what it kept), plus
        an exact scan of the rows written since the partitioning. The scan is not modified."""
        scores_out, rows_out = scan.scores_out.copy(), scan.rows_out.copy()
        approximate = scan.approximate
        if not approximate:
            return scores_out, rows_out
        k_max = scores_out.shape[1]
        stored, covered = len(self.order), self.covered_rows
        # each query keeps its own number of candidates (k times the rerank factor)
        ranked = np.argsort(-scan.best_scores, axis=1, kind="stable")
        width = min(int(keep.max()), ranked.shape[1])
        candidates = np.take_along_axis(scan.best_rows, ranked[:, :width], axis=1)
        candidates[np.arange(width)[None, :] >= keep[:, None]] = -1

        # exact rerank with full-precision vectors (ties broken by row, as exact search does)
        members_all = np.concatenate([members for _, members in approximate])
        candidates = candidates[members_all]
        missing = np.iinfo(np.int64).max
        candidates = np.sort(np.where(candidates >= 0, candidates, missing), axis=1)
        candidates = np.where(candidates == missing, -1, candidates)
        reranked = _candidate_scores(snap, queries[members_all], candidates)
        scores_out[members_all], rows_out[members_all] = _merge(reranked, candidates, k_max)

        if snap.rows > covered:  # rows written since the partitioning: scan them exactly
            for mask_id, members in approximate:
                fresh = covered + np.flatnonzero(masks[mask_id][stored:])
                if len(fresh) == 0:
                    continue
                fresh = fresh.astype(np.int64)
                top_scores, top_rows = _top_k(
                    _exact_scores(snap, queries[members], fresh), fresh, k_max
                )
                scores_out[members], rows_out[members] = _merge(
                    np.concatenate([scores_out[members], top_scores], axis=1),
                    np.concatenate([rows_out[members], top_rows], axis=1),
                    k_max,
                )
        return scores_out, rows_out

    @staticmethod
    def _visits(
        near: Scores, counts: NDArray[np.int64], probe: _Probe, floor: NDArray[np.int64]
    ) -> NDArray[np.bool_]:
        """Return which of a filter's cells each query visits (see :func:`probe_counts`).

        ``near``: the queries' centroid scores of the cells holding allowed rows, ``counts``
        their allowed rows. A query visits the cells within the gap of its nearest, and only
        when they hold fewer than its floor of allowed rows does it need its cells in order.
        """
        visits: NDArray[np.bool_] = near >= near.max(axis=1, keepdims=True) - probe.gap
        short = np.flatnonzero(visits.astype(np.float32) @ counts.astype(np.float32) < floor)
        if len(short):
            # sort about as many cells as the floor needs at the filter's mean rows per cell
            needed = 2.0 * float(floor[short].max()) / max(float(counts.mean()), 1.0)
            width = int(min(needed, near.shape[1])) + 1
            ranked, _, _, probes = _rank_cells(
                near[short], counts, probe.gap, floor[short], width=max(96, width)
            )
            row_i, col_j = np.nonzero(np.arange(ranked.shape[1])[None, :] < probes[:, None])
            visits[short[row_i], ranked[row_i, col_j]] = True
        return visits

    def _cell_layout(
        self,
        present: NDArray[np.int64],
        counts: NDArray[np.int64],
        visits: NDArray[np.bool_],
    ) -> _CellLayout:
        """Return how a filter's visited cells are scanned: in the locality order of their
        centroids, in blocks of whole cells, each block scored for the queries visiting one of
        its cells (neighbouring cells are mostly visited by the same queries). The block size is
        the one of :data:`SCAN_CELL_BLOCKS` whose products and per-block work cost least.

        ``present``: the cells holding allowed rows, ``counts`` how many each; ``visits``
        (queries, cells): who visits which.
        """
        assert self.locality_ordered, "built and loaded partitionings are in locality order"
        # present cells come in storage order, which is their locality order
        cells = np.flatnonzero(visits.any(axis=0))
        sizes = counts[cells]
        ends = np.cumsum(sizes)
        starts = ends - sizes
        cell_visits = visits[:, cells]
        best: tuple[float, NDArray[np.int64], NDArray[np.bool_], int] | None = None
        # each size's blocks are unions of the previous (doubled) size's, so each reduction
        # starts from the previous one's blocks
        previous_bounds = np.arange(len(cells), dtype=np.int64)
        previous_visits = cell_visits
        for size in SCAN_CELL_BLOCKS:
            # sizes are powers of two: a shift finds each cell's block
            bounds = np.flatnonzero(np.diff(starts >> (size.bit_length() - 1), prepend=-1))
            inner = np.searchsorted(previous_bounds, bounds)
            block_visits = np.logical_or.reduceat(previous_visits, inner, axis=1)
            previous_bounds, previous_visits = bounds, block_visits
            block_columns = np.diff(np.append(starts[bounds], ends[-1]))
            work = int(block_columns @ block_visits.sum(axis=0))
            cost = work * self.reduced_dim * SCAN_PER_CODE_DIM + len(bounds) * CELL_BLOCK_FIXED
            if best is None or cost < best[0]:
                best = (cost, bounds, block_visits, work)
        assert best is not None
        _, bounds, block_visits, work = best
        return _CellLayout(
            cells=present[cells],
            sizes=sizes,
            bounds=bounds,
            cell_visits=cell_visits,
            block_visits=block_visits,
            rows=int(ends[-1]),
            work=work,
            visible_rows=np.rint(cell_visits @ sizes.astype(np.float64)).astype(np.int64),
        )

    @staticmethod
    def _cell_positions(layout: _CellLayout, allowed: Rows, runs: Rows) -> Rows:
        """Return the allowed positions of the layout's cells, cell by cell in its order
        (``allowed``: a filter's positions, ascending; ``runs[c]``: where cell ``c``'s
        allowed positions start in it)."""
        starts = runs[layout.cells]
        lengths = runs[layout.cells + 1] - starts
        ends = np.cumsum(lengths)
        every = np.repeat(starts - (ends - lengths), lengths) + np.arange(int(ends[-1]))
        found: Rows = allowed[every]
        return found

    def _scan_cells(
        self,
        reduced: Vectors,
        members: NDArray[np.int64],
        layout: _CellLayout,
        positions: Rows,
        keep: NDArray[np.int64],
        best_scores: Scores,
        best_rows: Rows,
    ) -> None:
        """Write the best candidates of ``members`` among the allowed rows (at storage
        ``positions``, see :meth:`_cell_positions`) of the cells each visits."""
        wanted = min(int(keep[members].max()), layout.rows)
        queries = np.ascontiguousarray(reduced[members])
        heaps = _Heaps(len(members), wanted)
        blocks = layout.blocks
        cell_ends = np.append(layout.bounds[1:], len(layout.sizes))
        column_of_cell = np.concatenate([[0], np.cumsum(layout.sizes)])
        los = column_of_cell[layout.bounds].tolist()
        his = column_of_cell[cell_ends].tolist()
        # each block's visitors, and whether one of them skips a cell of the block
        block_of, visitor = np.nonzero(layout.block_visits.T)
        visitors = np.split(visitor, np.searchsorted(block_of, np.arange(1, blocks)))
        every_cell = np.logical_and.reduceat(layout.cell_visits, layout.bounds, axis=1)
        skips = np.any(layout.block_visits & ~every_cell, axis=0)
        partial: list[bool] = np.asarray(skips, dtype=np.bool_).tolist()
        columns = np.arange(layout.rows, dtype=np.int64)
        bounds = layout.bounds.tolist()
        ends = cell_ends.tolist()
        for block in range(blocks):
            which = visitors[block]
            if len(which) == 0:
                continue
            lo, hi = los[block], his[block]
            scores = self._block_scores(queries[which], positions[lo:hi])
            if partial[block]:  # hide the cells of the block a visitor does not visit itself
                first, last = bounds[block], ends[block]
                hidden = np.repeat(
                    ~layout.cell_visits[which, first:last], layout.sizes[first:last], axis=1
                )
                np.putmask(scores, hidden, -np.inf)
            heaps.add(scores, which, columns[lo:hi])
        found_scores, found = heaps.result()
        best_scores[members, :wanted] = found_scores
        best_rows[members, :wanted] = np.where(
            found >= 0, self.order[positions[np.maximum(found, 0)]], -1
        )

    def _scan_into(
        self,
        reduced: Vectors,
        members: NDArray[np.int64],
        positions: Rows,
        keep: NDArray[np.int64],
        best_scores: Scores,
        best_rows: Rows,
    ) -> None:
        """Write the best candidates of ``members`` among the codes at storage ``positions``
        (gathered and scored a block at a time, one matrix product for all the members)."""
        wanted = min(int(keep[members].max()), len(positions))
        if wanted == 0:
            return
        queries = np.ascontiguousarray(reduced[members])
        found_scores, found = _heap_scan(
            queries,
            len(positions),
            wanted,
            lambda lo, hi: self._block_scores(queries, positions[lo:hi]),
        )
        best_scores[members, :wanted] = found_scores
        best_rows[members, :wanted] = np.where(
            found >= 0, self.order[positions[np.maximum(found, 0)]], -1
        )

    def _scan_queries(self, reduced: Vectors) -> Vectors:
        """Return reduced queries as the scans score them against the stored codes."""
        if self.code_scale is None:
            return reduced
        return np.ascontiguousarray(reduced * self.code_scale[None, :], dtype=np.float32)

    def _block_scores(self, queries: Vectors, positions: Rows) -> Scores:
        """Return reduced scores of scan ``queries`` (see :meth:`_scan_queries`) against the
        codes at storage ``positions``, up to a constant per query."""
        codes = np.take(self.code_rows, positions).view(self.codes.dtype)
        codes = codes.reshape(len(positions), self.codes.shape[1]).astype(np.float32, copy=False)
        # rows on the left: BLAS runs the few queries of a block faster that way round
        block: Scores = np.ascontiguousarray((codes @ queries.T).T)
        if self.metric is Metric.L2:
            block += self.bias[positions]
        return block

    @staticmethod
    def _exact_into(
        snap: _Snapshot,
        queries: Vectors,
        members: NDArray[np.int64],
        rows: Rows,
        k: int,
        scores_out: Scores,
        rows_out: Rows,
    ) -> None:
        """Answer ``members`` by an exact scan of ``rows`` (ascending; one shared product)."""
        scores_out[members], rows_out[members] = _top_k(
            _exact_scores(snap, queries[members], rows), rows, k
        )

    # --- persistence --------------------------------------------------------------------------------

    def save(self, folder: Path | str) -> None:
        """Write the partitioning into ``folder`` (each file replaced atomically)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, NDArray[Any]] = {
            "order": self.order,
            "codes": self.codes,
            "cell_starts": self.cell_starts,
            "cell_leaf": self.cell_leaf,
            "centroids": self.centroids,
        }
        if self.code_scale is not None and self.code_offset is not None:
            arrays["code_scale"] = self.code_scale
            arrays["code_offset"] = self.code_offset
        if self.projection is not None:
            arrays["data_matrix"] = self.projection.data_matrix
            arrays["query_matrix"] = self.projection.query_matrix
            offset = getattr(self.projection, "offset", None)
            if offset is not None:
                arrays["offset"] = offset
        temporary = folder / (ARRAYS_FILE + ".tmp")
        with temporary.open("wb") as out:
            np.savez(out, **arrays)  # type: ignore[arg-type]
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, folder / ARRAYS_FILE)
        meta = {
            "version": FORMAT_VERSION,
            "metric": self.metric.value,
            "dim": self.dim,
            "covered_rows": self.covered_rows,
            "sequence": self.sequence,
            "projection": None
            if self.projection is None
            else {"kind": self.projection.kind, "method": self.projection.method},
            "probe_gap": self.probe_gap,
            "min_probe_rows": self.min_probe_rows,
            "rerank_factor": self.rerank_factor,
            "measured_recall": self.measured_recall,
            "build_seconds": self.build_seconds,
            "locality_ordered": self.locality_ordered,
            "nodes": [
                {"leaf": node.leaf}
                if node.atom is None
                else {"atom": node.atom.to_json(), "match": node.match, "rest": node.rest}
                for node in self.nodes
            ],
            "leaf_paths": [
                [{"atom": atom.to_json(), "match": side} for atom, side in path]
                for path in self.leaf_paths
            ],
        }
        temporary = folder / (PARTITIONING_FILE + ".tmp")
        with temporary.open("w") as text:
            json.dump(meta, text)
            text.flush()
            os.fsync(text.fileno())
        os.replace(temporary, folder / PARTITIONING_FILE)

    @classmethod
    def load(cls, folder: Path | str, collection: Collection | None = None) -> Partitioning:
        """Read a partitioning saved by :meth:`save`; with ``collection``, check it fits it."""
        folder = Path(folder)
        meta: dict[str, Any] = json.loads((folder / PARTITIONING_FILE).read_text())
        if meta.get("version") not in READABLE_VERSIONS:
            raise InvalidArgument(
                f"partitioning in {folder.name!r} has format version {meta.get('version')!r}; "
                f"this vecdb reads versions {', '.join(map(str, READABLE_VERSIONS))}"
            )
        with np.load(folder / ARRAYS_FILE) as arrays:
            loaded = {name: arrays[name] for name in arrays.files}
        metric = Metric.parse(str(meta["metric"]))
        projection = None
        if meta["projection"] is not None:
            projection = Projection(
                loaded["data_matrix"],
                loaded["query_matrix"],
                kind=meta["projection"]["kind"],
                method=str(meta["projection"]["method"]),
            )
            if "offset" in loaded:  # the mean a centred (l2) projection subtracts first
                projection = replace(projection, offset=loaded["offset"])
        nodes = [
            _Node(leaf=int(node["leaf"]))
            if "leaf" in node
            else _Node(
                atom=Atom.from_json(node["atom"]), match=int(node["match"]), rest=int(node["rest"])
            )
            for node in meta["nodes"]
        ]
        codes: NDArray[Any] = loaded["codes"]
        scale = offset = None
        if "code_scale" in loaded:
            codes = np.ascontiguousarray(codes, dtype=np.int8)
            scale = loaded["code_scale"].astype(np.float32)
            offset = loaded["code_offset"].astype(np.float32)
        elif projection is not None:  # version 1 kept reduced vectors unrounded
            codes, scale, offset = quantize_codes(np.asarray(codes, dtype=np.float32))
        else:
            codes = np.ascontiguousarray(codes, dtype=np.float32)
        centroids = np.ascontiguousarray(loaded["centroids"], dtype=np.float32)
        part = cls(
            metric=metric,
            dim=int(meta["dim"]),
            covered_rows=int(meta["covered_rows"]),
            sequence=int(meta["sequence"]),
            projection=projection,
            order=loaded["order"].astype(np.int64),
            codes=codes,
            bias=_code_bias(metric, codes, scale, offset),
            code_scale=scale,
            code_offset=offset,
            cell_starts=loaded["cell_starts"].astype(np.int64),
            cell_leaf=loaded["cell_leaf"].astype(np.int32),
            centroids=centroids,
            centroid_bias=_bias(metric, centroids),
            nodes=nodes,
            leaf_paths=[
                [(Atom.from_json(step["atom"]), bool(step["match"])) for step in path]
                for path in meta["leaf_paths"]
            ],
            probe_gap=float(meta["probe_gap"]),
            min_probe_rows=int(meta["min_probe_rows"]),
            rerank_factor=float(meta["rerank_factor"]),
            measured_recall=meta["measured_recall"],
            build_seconds=float(meta["build_seconds"]),
            locality_ordered=bool(meta.get("locality_ordered", False)),
        ).in_locality_order()  # one saved before cells were stored in scan order: reorder once
        if collection is not None:
            part.check_fits(collection)
        return part

    def check_fits(self, collection: Collection) -> None:
        """Raise InvalidArgument unless this partitioning was built over ``collection``'s rows."""
        if self.dim != collection.dim or self.metric is not collection.metric:
            raise InvalidArgument(
                f"partitioning is for dim {self.dim} / {self.metric.value}, collection "
                f"{collection.name!r} is dim {collection.dim} / {collection.metric.value}"
            )
        if self.covered_rows > collection.row_count:
            raise InvalidArgument(
                f"partitioning covers {self.covered_rows} rows but collection "
                f"{collection.name!r} has only {collection.row_count}: it was built elsewhere"
            )


def _project(
    projection: Projection | None, metric: Metric, vectors: Vectors, rows: Rows
) -> Vectors:
    """Return the reduced vectors of ``rows``, in blocks small enough that each block's
    gathered vectors stay in cache while they are normalized and projected."""
    width = vectors.shape[1] if projection is None else projection.reduced_dim
    out = np.empty((len(rows), width), np.float32)
    for lo in range(0, len(rows), GATHER_BLOCK_ROWS):
        block = _prepare_rows(metric, np.take(vectors, rows[lo : lo + GATHER_BLOCK_ROWS], axis=0))
        out[lo : lo + len(block)] = block if projection is None else projection.project_data(block)
    return out


def _distinct_keys(
    workload: Sequence[BatchQuery],
) -> tuple[list[str | None], list[Filter | None], NDArray[np.float64]]:
    """Return the distinct (tenant, filter) pairs of a workload and how often each occurs."""
    index: dict[str, int] = {}
    tenants: list[str | None] = []
    filters: list[Filter | None] = []
    counts: list[float] = []
    for query in workload:
        key = workload_key(query.tenant, query.filter)
        at = index.get(key)
        if at is None:
            index[key] = len(tenants)
            tenants.append(query.tenant)
            filters.append(query.filter)
            counts.append(1.0)
        else:
            counts[at] += 1.0
    return tenants, filters, np.asarray(counts, dtype=np.float64)


def _candidate_atoms(workload: Sequence[BatchQuery], limit: int = 256) -> list[Atom]:
    """Return the cuts worth trying: the workload's required predicates and tenants, most used first."""
    uses: dict[str, tuple[Atom, int]] = {}
    for query in workload:
        # through JSON and back, so equal predicates compare equal however they were written
        atoms = [Atom(filter=flt.from_json(flt.to_json(a))) for a in atoms_of(query.filter)]
        if query.tenant is not None:
            atoms.append(Atom(tenant=query.tenant))
        for atom in atoms:
            key = json.dumps(atom.to_json(), sort_keys=True, default=str)
            found = uses.get(key)
            uses[key] = (atom, 1 if found is None else found[1] + 1)
    ranked = sorted(uses.values(), key=lambda pair: -pair[1])
    return [atom for atom, _ in ranked[:limit]]


def _grow_tree(
    key_masks: Mask,
    atom_masks: Mask,
    weights: NDArray[np.float64],
    atoms: Sequence[Atom],
    *,
    min_leaf: int,
    max_leaves: int,
) -> list[_Node]:
    """Return qd-tree nodes grown on a row sample, best cut first, until no cut pays.

    A cut's gain is the weighted number of sampled rows that queries no longer touch: a query
    touches a node when its mask allows a row in it.
    """
    keys_f = key_masks.astype(np.float32)
    atoms_f = atom_masks.astype(np.float32)
    nodes: list[_Node] = [_Node()]
    members: dict[int, NDArray[np.int64]] = {0: np.arange(key_masks.shape[1], dtype=np.int64)}

    def best_cut(node_rows: NDArray[np.int64]) -> tuple[float, int]:
        if len(atoms) == 0 or len(node_rows) < 2 * min_leaf or not weights.any():
            return 0.0, -1
        in_keys = keys_f[:, node_rows]
        in_atoms = atoms_f[:, node_rows]
        both = in_keys @ in_atoms.T  # (keys, atoms): rows a query allows on the match side
        total = in_keys.sum(axis=1)
        match_size = in_atoms.sum(axis=1)
        rest_size = len(node_rows) - match_size
        now = float(weights @ ((total > 0) * len(node_rows)))
        after = weights @ (
            (both > 0) * match_size[None, :] + ((total[:, None] - both) > 0) * rest_size[None, :]
        )
        gain = now - after
        gain[(match_size < min_leaf) | (rest_size < min_leaf)] = -np.inf
        best = int(np.argmax(gain))
        return float(gain[best]), best

    heap: list[tuple[float, int, int]] = []
    gain, atom = best_cut(members[0])
    if atom >= 0 and gain > 0:
        heap.append((-gain, 0, atom))
    leaves = 1
    while heap and leaves < max_leaves:
        _, node_id, atom = heapq.heappop(heap)
        rows = members.pop(node_id)
        side = atom_masks[atom, rows]
        for child_rows, attribute in ((rows[side], "match"), (rows[~side], "rest")):
            child = len(nodes)
            nodes.append(_Node())
            setattr(nodes[node_id], attribute, child)
            members[child] = child_rows
            child_gain, child_atom = best_cut(child_rows)
            if child_atom >= 0 and child_gain > 0:
                heapq.heappush(heap, (-child_gain, child, child_atom))
        nodes[node_id].atom = atoms[atom]
        leaves += 1
    leaf = 0
    for node in nodes:
        if node.atom is None:
            node.leaf = leaf
            leaf += 1
    return nodes


def _assign_leaves(
    nodes: Sequence[_Node], rows: Rows, atoms: Sequence[Atom], atom_masks: Sequence[Mask]
) -> tuple[list[Rows], list[list[tuple[Atom, bool]]]]:
    """Return each leaf's rows and its path of cuts, applying the tree to every given row."""
    position = {atom: i for i, atom in enumerate(atoms)}
    leaf_count = sum(1 for node in nodes if node.atom is None)
    leaf_rows: list[Rows] = [np.zeros(0, np.int64)] * leaf_count
    leaf_paths: list[list[tuple[Atom, bool]]] = [[] for _ in range(leaf_count)]
    stack: list[tuple[int, Rows, list[tuple[Atom, bool]]]] = [(0, rows, [])]
    while stack:
        node_id, node_rows, path = stack.pop()
        node = nodes[node_id]
        if node.atom is None:
            leaf_rows[node.leaf] = node_rows
            leaf_paths[node.leaf] = path
            continue
        side = atom_masks[position[node.atom]][node_rows]
        stack.append((node.match, node_rows[side], [*path, (node.atom, True)]))
        stack.append((node.rest, node_rows[~side], [*path, (node.atom, False)]))
    return leaf_rows, leaf_paths


def probe_counts(
    near: Scores, seen: NDArray[np.int64], gap: float, floor: NDArray[np.int64] | int
) -> NDArray[np.int64]:
    """Return how many cells each query visits, its cells sorted nearest first.

    ``near``: each query's centroid scores in that order; ``seen``: allowed rows seen so far.
    A query visits every cell within ``gap`` of its nearest, and enough to see ``floor``
    allowed rows (all cells when there are fewer).
    """
    floor_rows = np.broadcast_to(np.asarray(floor), (len(near),))
    close = np.count_nonzero(near >= near[:, :1] - gap, axis=1)
    enough = np.count_nonzero(seen < floor_rows[:, None], axis=1) + 1
    counts: NDArray[np.int64] = np.minimum(np.maximum(close, enough), near.shape[1])
    return counts


def _recall(found: Rows, truth: Sequence[Rows], *, margin: bool = False) -> float:
    """Return mean recall of ``found`` rows (-1 padded) against each query's true rows.

    ``margin``: less one standard error of that mean (a cautious estimate).
    """
    if len(truth) == 0:
        return 1.0
    each = np.asarray(
        [len(np.intersect1d(found[i], truth[i])) / max(len(truth[i]), 1) for i in range(len(truth))]
    )
    if margin and len(each) > 1:
        return float(each.mean() - each.std(ddof=1) / math.sqrt(len(each)))
    return float(each.mean())


def _exact_truth(
    snap: _Snapshot,
    vectors: Vectors,
    ks: NDArray[np.int64],
    keys: Sequence[str],
    masks: dict[str, Mask],
    covered: int,
) -> list[Rows]:
    """Return each query's exact top-k rows among the covered rows its mask allows."""
    truth: list[Rows] = [np.zeros(0, np.int64)] * len(vectors)
    by_key: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        by_key.setdefault(key, []).append(i)
    for key, members in by_key.items():
        allowed = np.flatnonzero(masks[key][:covered]).astype(np.int64)
        k_max = int(ks[members].max())
        best_scores = np.full((len(members), k_max), -np.inf, np.float32)
        best_rows = np.full((len(members), k_max), -1, np.int64)
        for lo in range(0, len(allowed), GATHER_BLOCK_ROWS):
            block = allowed[lo : lo + GATHER_BLOCK_ROWS]
            scores, rows = _top_k(_exact_scores(snap, vectors[members], block), block, k_max)
            best_scores, best_rows = _merge(
                np.concatenate([best_scores, scores], axis=1),
                np.concatenate([best_rows, rows], axis=1),
                k_max,
            )
        for j, i in enumerate(members):
            row = best_rows[j, : ks[i]]
            truth[i] = row[row >= 0]
    return truth


@dataclass
class _Depths:
    """Per sampled query, along its probe order (nearest cell first, +inf padded): centroid
    gaps to the nearest cell, cumulative allowed and scanned rows; and the probe position of
    each true neighbour's cell (-1: no neighbour)."""

    gaps: NDArray[np.float64]
    cum_matching: NDArray[np.float64]
    cum_scanned: NDArray[np.float64]
    positions: NDArray[np.int64]  # (queries, k), -1 padded

    def subset(self, which: NDArray[np.int64]) -> _Depths:
        """Return the statistics of the queries ``which``."""
        return _Depths(
            self.gaps[which],
            self.cum_matching[which],
            self.cum_scanned[which],
            self.positions[which],
        )

    @functools.cached_property
    def _gap_lines(self) -> _SortedLines:
        return _SortedLines(self.gaps)

    @functools.cached_property
    def _matching_lines(self) -> _SortedLines:
        return _SortedLines(self.cum_matching)

    def evaluate(self, gap: float, floor: int) -> tuple[float, float]:
        """Return (recall of cells reached, mean rows scanned) of a probe rule."""
        cells = self._matching_lines.count(math.inf)
        close = self._gap_lines.count(gap)
        enough = self._matching_lines.count(floor, strictly=True) + 1
        probes = np.minimum(np.maximum(close, enough), cells)
        valid = self.positions >= 0
        reached = np.count_nonzero(valid & (self.positions < probes[:, None]), axis=1)
        recall = reached / np.maximum(np.count_nonzero(valid, axis=1), 1)
        scanned = self.cum_scanned[np.arange(len(probes)), np.maximum(probes - 1, 0)]
        return float(recall.mean()), float(scanned.mean())

    def fit(self, goal: float) -> tuple[float, int]:
        """Return the cheapest (gap, floor) whose cells reach ``goal`` recall."""
        best: tuple[float, float, int] | None = None
        finite = self.gaps[np.isfinite(self.gaps)]
        widest = float(finite.max()) if len(finite) else 0.0
        for floor in (128, 256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096):
            if self.evaluate(widest, floor)[0] < goal:
                continue
            low, high = 0.0, widest
            for _ in range(24):
                middle = (low + high) / 2
                if self.evaluate(middle, floor)[0] >= goal:
                    high = middle
                else:
                    low = middle
            cost = self.evaluate(high, floor)[1]
            if best is None or cost < best[0]:
                best = (cost, high, floor)
        if best is None:
            return math.inf, 1 << 62
        return best[1], best[2]


class _SortedLines:
    """Lines of numbers, each ascending (+inf padded), that answer "how many entries of each
    line lie below a value" by one binary search over the lines laid end to end (each lifted
    above the one before); the calibration asks that of the same lines hundreds of times."""

    def __init__(self, lines: NDArray[np.float64]) -> None:
        finite = np.isfinite(lines)
        values = lines[finite]
        self.low = float(values.min()) if len(values) else 0.0
        # finite entries map into [0, span - 1], +inf to span
        self.span = (float(values.max()) if len(values) else 0.0) - self.low + 1.0
        self.width = lines.shape[1]
        self.lift = np.arange(len(lines), dtype=np.float64) * (2.0 * self.span)
        self.flat = (np.where(finite, lines - self.low, self.span) + self.lift[:, None]).ravel()
        self.first = np.arange(len(lines), dtype=np.int64) * self.width

    def count(self, value: float, *, strictly: bool = False) -> NDArray[np.int64]:
        """Return per line how many entries are at most ``value`` (``strictly``: below it);
        +inf entries never count."""
        if self.width == 0:
            return np.zeros(len(self.lift), np.int64)
        # a threshold past every finite entry stops short of the +inf ones
        shifted = self.span - 0.5 if math.isinf(value) and value > 0 else float(value) - self.low
        shifted = min(max(shifted, -0.5), self.span - 0.5)
        found = np.searchsorted(
            self.flat, self.lift + shifted, side="left" if strictly else "right"
        )
        counts: NDArray[np.int64] = found - self.first
        return counts


def _probe_depths(
    part: Partitioning,
    snap: _Snapshot,
    vectors: Vectors,
    masks: Sequence[Mask],
    truth: Sequence[Rows],
) -> _Depths:
    """Return, per query, its probe order statistics and where its true neighbours lie."""
    covered = part.covered_rows
    sizes = np.diff(part.cell_starts).astype(np.float64)
    centroid_scores = part.project_queries(vectors) @ part.centroids.T + part.centroid_bias
    width = part.cell_count
    gaps = np.full((len(vectors), width), np.inf)
    cum_matching = np.full((len(vectors), width), np.inf)
    cum_scanned = np.full((len(vectors), width), np.inf)
    positions = np.full((len(vectors), max((len(t) for t in truth), default=0)), -1, np.int64)
    for i, mask in enumerate(masks):
        allowed = np.flatnonzero(mask[:covered])
        in_cells = part.cell_of_row[allowed]
        counts = np.bincount(in_cells[in_cells >= 0], minlength=width)
        present = np.flatnonzero(counts)
        ranked = present[np.argsort(-centroid_scores[i, present], kind="stable")]
        if len(ranked):
            gaps[i, : len(ranked)] = centroid_scores[i, ranked[0]] - centroid_scores[i, ranked]
        cum_matching[i, : len(ranked)] = np.cumsum(counts[ranked])
        cum_scanned[i, : len(ranked)] = np.cumsum(sizes[ranked])
        where = np.full(width, -1, np.int64)
        where[ranked] = np.arange(len(ranked))
        positions[i, : len(truth[i])] = where[part.cell_of_row[truth[i]]]
    return _Depths(gaps, cum_matching, cum_scanned, positions)


class _Heaps:
    """Each query's ``k`` best (score, id) so far, in faiss' heaps (no block is ever sorted)."""

    def __init__(self, queries: int, k: int) -> None:
        import faiss

        # heaps of equal neutral entries need no heapify
        self.values = np.full((queries, k), np.finfo(np.float32).min, np.float32)
        self.ids = np.full((queries, k), -1, np.int64)
        self.heaps: Any = faiss.float_minheap_array_t()
        self.heaps.nh, self.heaps.k = queries, k
        self.heaps.val = faiss.swig_ptr(self.values)
        self.heaps.ids = faiss.swig_ptr(self.ids)
        self.ptr = faiss.swig_ptr

    def add(self, scores: Scores, which: NDArray[np.int64], ids: NDArray[np.int64]) -> None:
        """Offer ``scores[i, j]`` (id ``ids[j]``) to the heap of query ``which[i]``."""
        scores = np.ascontiguousarray(scores, dtype=np.float32)
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        which = np.ascontiguousarray(which, dtype=np.int64)
        width = scores.shape[1]
        # few enough entries per call that faiss stays on the calling thread (above its
        # threshold it opens an OpenMP region, whose wake-ups cost more than small blocks)
        step = max(1, HEAP_SERIAL_ENTRIES // max(width, 1))
        for first in range(0, len(which), step):
            last = min(len(which), first + step)
            self.heaps.addn_query_subset_with_ids(
                last - first,
                self.ptr(which[first:last]),
                width,
                self.ptr(scores[first:last]),
                self.ptr(ids),
                0,
            )

    def result(self) -> tuple[Scores, Rows]:
        """Return each query's (scores, ids), best first; missing entries -inf / -1."""
        order = np.argsort(-self.values, axis=1, kind="stable")
        values = np.take_along_axis(self.values, order, axis=1)
        ids = np.take_along_axis(self.ids, order, axis=1)
        values[ids < 0] = -np.inf
        return values, ids


@dataclass
class _Scan:
    """A batch's plans and scans before the exact rerank (see :meth:`Partitioning._scan`)."""

    scores_out: Scores  # the exact plans' answers (-inf elsewhere)
    rows_out: Rows  # their rows (-1 elsewhere)
    scanned: NDArray[np.int64]  # rows scored per query
    plans: NDArray[np.int8]  # each query's plan
    best_scores: Scores  # the other queries' best candidates by reduced score (unordered)
    best_rows: Rows  # their rows (-1: none)
    approximate: list[tuple[int, NDArray[np.int64]]]  # (mask, its queries) scanned approximately


@dataclass
class _CellLayout:
    """How one filter's visited cells are scanned (see :meth:`Partitioning._cell_layout`)."""

    cells: NDArray[np.int64]  # the visited cells, in scan order
    sizes: NDArray[np.int64]  # allowed rows of each visited cell, in scan order
    bounds: NDArray[np.int64]  # first cell of each block
    cell_visits: NDArray[np.bool_]  # (queries, cells): who visits each cell
    block_visits: NDArray[np.bool_]  # (queries, blocks): who visits a cell of each block
    rows: int  # allowed rows in visited cells
    work: int  # (query, row) scores the blocks compute
    visible_rows: NDArray[np.int64]  # rows each query sees

    @property
    def blocks(self) -> int:
        """The number of blocks scored."""
        return len(self.bounds)


def _heap_scan(
    queries: Vectors,
    width: int,
    k: int,
    score: Callable[[int, int], Scores],
    visible: NDArray[np.bool_] | None = None,
    block: int = SCAN_BLOCK,
) -> tuple[Scores, Rows]:
    """Return each query's ``k`` best (scores, columns) of ``width`` columns, best first.

    ``score(lo, hi)`` gives the (queries, hi - lo) scores of columns [lo, hi); ``visible``
    hides entries (-inf). A block costs its product and one comparison per entry in the
    heaps. Missing entries are -inf / -1.
    """
    heaps = _Heaps(len(queries), k)
    everyone = np.arange(len(queries), dtype=np.int64)
    for lo in range(0, width, block):
        hi = min(width, lo + block)
        scores = np.ascontiguousarray(score(lo, hi), dtype=np.float32)
        if visible is not None:
            scores[~visible[:, lo:hi]] = -np.inf
        heaps.add(scores, everyone, np.arange(lo, hi, dtype=np.int64))
    return heaps.result()


def _locality_order(points: Vectors, leaf: int = 8) -> NDArray[np.int64]:
    """Return an order of ``points`` that keeps near points mostly near each other: the leaves
    of a PCA tree (each node halved at the median of its principal direction), left first."""
    out: list[NDArray[np.int64]] = []
    stack = [np.arange(len(points), dtype=np.int64)]
    while stack:
        node = stack.pop()
        if len(node) <= leaf:
            out.append(node)
            continue
        centred = points[node] - points[node].mean(axis=0)
        direction = np.linalg.svd(centred, full_matrices=False)[2][0]
        by_side = node[np.argsort(centred @ direction, kind="stable")]
        half = len(node) // 2
        stack.extend((by_side[half:], by_side[:half]))
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def _rank_cells(
    near: Scores,
    counts: NDArray[np.int64],
    gap: float,
    floor: NDArray[np.int64],
    width: int = 96,
) -> tuple[NDArray[np.int64], Scores, NDArray[np.int64], NDArray[np.int64]]:
    """Return, per query, the cells it visits nearest first: (order, their scores, allowed
    rows seen so far, how many it visits) over the first columns of each line.

    Only the nearest ``width`` cells are sorted unless the probe rule runs past them.
    """
    total = near.shape[1]
    while True:
        if width < total:
            top = np.argpartition(-near, width - 1, axis=1)[:, :width]
        else:
            top = np.broadcast_to(np.arange(total), near.shape)
        picked = np.take_along_axis(near, top, axis=1)
        order = np.argsort(-picked, axis=1, kind="stable")
        ranked: NDArray[np.int64] = np.take_along_axis(top, order, axis=1).astype(np.int64)
        scores = np.take_along_axis(picked, order, axis=1)
        seen = np.cumsum(counts[ranked], axis=1)
        probes = probe_counts(scores, seen, gap, floor)
        if width >= total or not (probes >= width).any():
            return ranked, scores, seen, probes
        width = min(total, width * 4)


def _top_k(scores: Scores, rows: Rows, k: int) -> tuple[Scores, Rows]:
    from vecdb.engine.collection import top_k

    return top_k(scores, rows, k)


def _merge(scores: Scores, rows: Rows, k: int) -> tuple[Scores, Rows]:
    from vecdb.engine.collection import merge_top_k

    return merge_top_k(scores, rows, k)


# --- saved partitionings: a recurring workload reuses its partitioning by name ----------------

PARTITIONINGS_DIR = "partitionings"
ARTEFACT = "partitioning"
# partitionings kept loaded between batches (each holds the reduced vectors of every row)
LOADED_LIMIT = 2


@dataclass(frozen=True)
class SavedPartitioning:
    """What a saved partitioning is, read from its stamp (without loading its arrays)."""

    name: str
    leaves: int
    cells: int
    covered_rows: int
    sequence: int
    reduced_dim: int
    workload_queries: int
    measured_recall: float | None
    build_seconds: float
    memory_bytes: int


_loaded_lock = threading.Lock()
_loaded: OrderedDict[tuple[str, str], tuple[str, Partitioning]] = OrderedDict()


def _partitioning_base(collection: Collection, name: str) -> Path:
    check_name("partitioning", name)
    if collection.artefact_dir is None:
        raise FailedPrecondition(
            f"collection {collection.name!r} has no data directory: partitionings cannot be saved"
        )
    return collection.artefact_dir / PARTITIONINGS_DIR / name


def save_partitioning(
    collection: Collection, name: str, partitioning: Partitioning, *, workload_queries: int
) -> SavedPartitioning:
    """Save ``partitioning`` as ``name`` of ``collection`` (replacing one of that name
    atomically: a reader sees the old or the new one, never a mix); return its description."""
    partitioning.check_fits(collection)
    base = _partitioning_base(collection, name)
    saved = SavedPartitioning(
        name=name,
        leaves=partitioning.leaf_count,
        cells=partitioning.cell_count,
        covered_rows=partitioning.covered_rows,
        sequence=partitioning.sequence,
        reduced_dim=partitioning.reduced_dim,
        workload_queries=workload_queries,
        measured_recall=partitioning.measured_recall,
        build_seconds=partitioning.build_seconds,
        memory_bytes=partitioning.memory_bytes(),
    )
    folder = artefacts.publish(base, ARTEFACT, partitioning.save, vars(saved))
    with _loaded_lock:
        _remember((str(base), name), folder.name, partitioning)
    return saved


def _remember(key: tuple[str, str], version: str, partitioning: Partitioning) -> None:
    _loaded[key] = (version, partitioning)
    _loaded.move_to_end(key)
    while len(_loaded) > LOADED_LIMIT:
        _loaded.popitem(last=False)


def load_partitioning(collection: Collection, name: str) -> Partitioning:
    """Return the partitioning saved as ``name`` of ``collection`` (kept loaded for the next
    batch until a newer version is saved); raise NotFound naming the saved ones."""
    base = _partitioning_base(collection, name)
    found = artefacts.current(base, ARTEFACT)
    if found is None:
        known = ", ".join(p.name for p in saved_partitionings(collection)) or "none"
        raise NotFound(
            f"collection {collection.name!r} has no partitioning {name!r} (saved: {known})"
        )
    folder, _ = found
    key = (str(base), name)
    with _loaded_lock:
        cached = _loaded.get(key)
        if cached is not None and cached[0] == folder.name:
            _loaded.move_to_end(key)
            return cached[1]
        partitioning = Partitioning.load(folder, collection)
        _remember(key, folder.name, partitioning)
        return partitioning


def saved_partitionings(collection: Collection) -> list[SavedPartitioning]:
    """Return the partitionings saved for ``collection``, by name."""
    if collection.artefact_dir is None:
        return []
    root = collection.artefact_dir / PARTITIONINGS_DIR
    if not root.is_dir():
        return []
    out = []
    for base in sorted(root.iterdir()):
        found = artefacts.current(base, ARTEFACT) if base.is_dir() else None
        if found is None:
            continue
        stamp = found[1]
        try:
            out.append(SavedPartitioning(**stamp))  # type: ignore[arg-type]
        except TypeError:
            continue  # written by another version: not listed, not used
    return out


def drop_partitioning(collection: Collection, name: str) -> bool:
    """Forget the partitioning saved as ``name``; return whether there was one."""
    base = _partitioning_base(collection, name)
    existed = artefacts.current(base, ARTEFACT) is not None
    artefacts.remove(base, ARTEFACT)
    with _loaded_lock:
        _loaded.pop((str(base), name), None)
    return existed


# --- running a batch ----------------------------------------------------------------------------


class _MaskCache:
    """Masks of (tenant, filter) pairs kept between chunks while the collection is unchanged."""

    def __init__(self, budget_bytes: int) -> None:
        self.budget = budget_bytes
        self.sequence = -1
        self.rows = -1
        self.masks: OrderedDict[str, tuple[Mask, int]] = OrderedDict()
        self.atoms: dict[str, Mask] = {}

    def get(
        self, reader: _Reader, snap: _Snapshot, key: str, tenant: str | None, filter: Filter | None
    ) -> tuple[Mask, int]:
        if snap.sequence != self.sequence or snap.rows != self.rows:
            self._reset()
            self.sequence, self.rows = snap.sequence, snap.rows
        found = self.masks.get(key)
        if found is not None:
            self.masks.move_to_end(key)
            return found
        if len(self.atoms) * max(snap.rows, 1) > self.budget:
            self.atoms.clear()
        mask = self._evaluate(reader, snap, tenant, filter)
        entry = (mask, int(np.count_nonzero(mask)))
        self.masks[key] = entry
        while len(self.masks) * max(snap.rows, 1) > self.budget and len(self.masks) > 1:
            self.masks.popitem(last=False)
        return entry

    def _reset(self) -> None:
        self.masks.clear()
        self.atoms.clear()

    def _evaluate(
        self, reader: _Reader, snap: _Snapshot, tenant: str | None, filter: Filter | None
    ) -> Mask:
        return reader.shared_mask(snap, tenant, filter, self.atoms)


class _PositionMaskCache(_MaskCache):
    """A :class:`_MaskCache` of masks over a partitioning's positions (see
    :meth:`Partitioning.rows_at`): filters are evaluated on the attributes in storage order (the
    rows written since, in row order), so no mask is reordered."""

    def __init__(self, budget_bytes: int, part: Partitioning) -> None:
        super().__init__(budget_bytes)
        self.part = part
        self.alive: Mask | None = None

    def _reset(self) -> None:
        super()._reset()
        self.alive = None

    def _evaluate(
        self, reader: _Reader, snap: _Snapshot, tenant: str | None, filter: Filter | None
    ) -> Mask:
        part = self.part
        stored, covered = len(part.order), part.covered_rows
        if self.alive is None:
            self.alive = part.position_mask(snap.alive)
        mask = self.alive.copy()
        if tenant is not None:
            key = f"tenant:{tenant}"
            if key not in self.atoms:
                self.atoms[key] = part.position_mask(reader.tenant_mask(snap, tenant))
            mask &= self.atoms[key]
        if filter is not None:
            table = reader.collection.attributes
            in_order = part.attributes_in_order(table)
            mask[:stored] &= _evaluate_shared(filter, in_order, stored, self.atoms, 0)
            if snap.rows > covered:
                fresh = np.arange(covered, snap.rows, dtype=np.int64)
                mask[stored:] &= flt.evaluate(filter, table, fresh)
        return mask


def _validate(collection: Collection, queries: Sequence[BatchQuery]) -> Vectors:
    """Return the queries' vectors as one checked matrix, or raise naming the bad query."""
    for query in queries:
        if isinstance(query.k, bool) or not isinstance(query.k, int) or query.k < 1:
            raise InvalidArgument(
                f"query {query.query_id!r}: k {query.k!r} is not allowed: k must be at least 1"
            )
        if query.tenant is not None:
            check_name("tenant", query.tenant)
        shape = np.shape(query.vector)
        if shape != (collection.dim,) and shape != (1, collection.dim):
            got = shape[-1] if shape else 0
            raise InvalidArgument(
                f"query {query.query_id!r}: vector dimension {got} does not match collection "
                f"{collection.name!r} (dim {collection.dim})"
            )
    if not queries:
        return np.zeros((0, collection.dim), np.float32)
    matrix = np.stack([np.asarray(q.vector, dtype=np.float32).reshape(-1) for q in queries])
    try:
        return collection.check_vectors(matrix, what="query vector")
    except InvalidArgument as error:
        bad = np.flatnonzero(~np.isfinite(matrix).all(axis=1) | ~np.any(matrix != 0, axis=1))
        name = queries[int(bad[0])].query_id if len(bad) else "?"
        raise InvalidArgument(f"query {name!r}: {error}") from None


def run_batch(
    collection: Collection,
    queries: Sequence[BatchQuery],
    *,
    partitioning: Partitioning | None = None,
    settings: BatchSettings | None = None,
) -> Generator[tuple[str, Hits], None, None]:
    """Yield ``(query_id, hits)`` for every query, chunk by chunk.

    Chunks gather the queries that share a tenant and filter (``settings.keep_order``: in the
    order given instead).

    Each result equals what ``collection.search`` returns for that query alone within ties,
    exactly for filters matching at most ``settings.exact_rows`` rows, and at the recall the
    partitioning was calibrated for otherwise. Without a partitioning, the queries of each chunk
    that share a tenant and filter are searched together through the collection's own planner.
    Stop iterating (or ``close()`` the generator) to cancel: no work is done for chunks not asked
    for, and no lock is held between chunks.
    """
    settings = settings or BatchSettings()
    if settings.chunk_size < 1:
        raise InvalidArgument(f"chunk_size {settings.chunk_size} must be at least 1")
    matrix = _validate(collection, queries)
    if partitioning is not None:
        partitioning.check_fits(collection)
    reader = _Reader(collection)
    # with a partitioning, masks over its positions (its plans) and over rows (filters left to
    # the collection's own plan) share the budget
    budget = settings.mask_cache_bytes if partitioning is None else settings.mask_cache_bytes // 2
    cache = _MaskCache(budget)
    positions = None if partitioning is None else _PositionMaskCache(budget, partitioning)
    keys = [workload_key(q.tenant, q.filter) for q in queries]
    for chunk in plan_chunks(keys, settings.chunk_size, keep_order=settings.keep_order):
        members = [queries[i] for i in chunk]
        chunk_keys = [keys[i] for i in chunk]
        if partitioning is None:
            with reader.snapshot() as snap, _blas_threads(settings.blas_threads):
                results = _chunk_through_planner(
                    reader, cache, snap, members, matrix[chunk], chunk_keys
                )
        else:
            assert positions is not None
            results = _chunk_through_partitioning(
                reader, cache, positions, partitioning, settings, members, matrix[chunk], chunk_keys
            )
        yield from results


def plan_chunks(keys: Sequence[str], chunk_size: int, *, keep_order: bool) -> list[list[int]]:
    """Return the query positions of each chunk: whole groups of equal keys where they fit."""
    if keep_order:
        return [
            list(range(lo, min(lo + chunk_size, len(keys))))
            for lo in range(0, len(keys), chunk_size)
        ]
    groups: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(key, []).append(i)
    chunks: list[list[int]] = []
    current: list[int] = []
    for members in groups.values():
        for lo in range(0, len(members), chunk_size):
            piece = members[lo : lo + chunk_size]
            if current and len(current) + len(piece) > chunk_size:
                chunks.append(current)
                current = []
            current.extend(piece)
    if current:
        chunks.append(current)
    return chunks


def _chunk_through_planner(
    reader: _Reader,
    cache: _MaskCache,
    snap: _Snapshot,
    queries: Sequence[BatchQuery],
    matrix: Vectors,
    keys: Sequence[str],
) -> list[tuple[str, Hits]]:
    """Answer queries (in their order) through the collection's own plan, one search per
    distinct (tenant, filter) with that filter's mask evaluated once (call inside snapshot)."""

    out: list[tuple[str, Hits] | None] = [None] * len(queries)
    # grouped by k too: the index's candidate count follows k, so each query gets exactly the
    # answer it would get alone
    groups: dict[tuple[str, int], list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault((key, queries[i].k), []).append(i)
    for (key, k), members in groups.items():
        first = queries[members[0]]
        mask, matching = cache.get(reader, snap, key, first.tenant, first.filter)
        unfiltered = first.tenant is None and first.filter is None
        hits = reader.search_masked(
            snap, matrix[members], k, None if unfiltered else mask, matching
        )
        for i, found in zip(members, hits, strict=True):
            out[i] = (queries[i].query_id, found)
    return [result for result in out if result is not None]


def _chunk_through_partitioning(
    reader: _Reader,
    cache: _MaskCache,
    positions: _PositionMaskCache,
    part: Partitioning,
    settings: BatchSettings,
    queries: Sequence[BatchQuery],
    matrix: Vectors,
    keys: Sequence[str],
) -> list[tuple[str, Hits]]:
    """Answer a chunk: one mask per distinct filter, then per filter the cheapest of an exact
    scan, the partitioning's cells, or (for filters the partitioning does not fit) the
    collection's own planner, all the filter's queries at once."""
    from vecdb.engine.collection import Explain, Hits, report_scores

    ks = np.asarray([q.k for q in queries], dtype=np.int64)
    probe = _Probe(
        gap=part.probe_gap if settings.probe_gap is None else settings.probe_gap,
        min_rows=settings.min_probe_rows or part.min_probe_rows,
        rerank_factor=settings.rerank_factor or part.rerank_factor,
        exact_rows=settings.exact_rows,
        flat_preference=settings.flat_preference,
        index_preference=settings.index_preference,
    )
    out: list[tuple[str, Hits] | None] = [None] * len(queries)
    with reader.snapshot() as snap, _blas_threads(settings.blas_threads):
        slots: dict[str, int] = {}
        masks: list[Mask] = []
        counts: list[int] = []
        for key, query in zip(keys, queries, strict=True):
            if key not in slots:
                mask, matching = positions.get(reader, snap, key, query.tenant, query.filter)
                slots[key] = len(masks)
                masks.append(mask)
                counts.append(matching)
        mask_ids = np.asarray([slots[key] for key in keys], dtype=np.int64)
        scores, rows, scanned, plans = part._search(
            snap,
            matrix,
            ks,
            masks,
            probe=probe,
            mask_ids=mask_ids,
            index_cost=reader.index_cost(snap),
        )
        live = max(snap.live, 1)
        details = {
            EXACT: "few matching rows: exact scan, shared by the chunk's queries with this filter",
            FLAT: f"flat scan of the matching rows' {part.reduced_dim}-dim codes, exact rerank",
            CELLS: f"{part.leaf_count} leaves / {part.cell_count} cells: grouped cell scoring "
            f"in {part.reduced_dim} dims, exact rerank",
        }
        reported = report_scores(snap.metric, scores)
        point_ids = reader.ids(rows.ravel())
        width = rows.shape[1]
        for i, query in enumerate(queries):
            plan = int(plans[i])
            if plan == INDEX:
                continue
            matching = counts[mask_ids[i]]
            valid = rows[i, : query.k] >= 0
            found = rows[i, : query.k][valid]
            found_ids = point_ids[i * width : i * width + query.k]
            if len(found) < query.k:
                found_ids = [found_ids[j] for j in np.flatnonzero(valid).tolist()]
            hits = Hits(
                rows=found,
                ids=found_ids,
                scores=reported[i, : query.k][valid],
                explain=Explain(
                    plan=PLAN_NAMES[plan],
                    estimated_selectivity=matching / live,
                    matching_points=matching,
                    candidates_scored=int(scanned[i]),
                    detail=details[plan],
                ),
            )
            out[i] = (query.query_id, hits)
        # filters the partitioning does not fit: the collection's own plan, same masks
        delegated = [i for i in range(len(queries)) if out[i] is None]
        if delegated:
            answered = _chunk_through_planner(
                reader,
                cache,
                snap,
                [queries[i] for i in delegated],
                matrix[delegated],
                [keys[i] for i in delegated],
            )
            for i, result in zip(delegated, answered, strict=True):
                out[i] = result
    return [result for result in out if result is not None]


@contextmanager
def _blas_threads(count: int | None, user_api: str | None = "blas") -> Iterator[None]:
    """Limit BLAS (``user_api=None``: also OpenMP) threads for the block (count None: no change)."""
    if count is None:
        yield
        return
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    with threadpool_limits(limits=count, user_api=user_api):
        yield


__all__ = [
    "Atom",
    "BatchQuery",
    "BatchSettings",
    "Partitioning",
    "SavedPartitioning",
    "atoms_of",
    "drop_partitioning",
    "load_partitioning",
    "plan_chunks",
    "run_batch",
    "save_partitioning",
    "saved_partitionings",
    "workload_key",
]
