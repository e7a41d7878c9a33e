"""The multi-tenant index (Curator): one shared clustering tree, a sub-tree of shortlists per tenant.

Structure
---------
One tree is shared by every tenant: hierarchical k-means (``faiss.Kmeans``) over all the vectors,
``fanout`` children per node, all leaves at ``depth``. Node centroids live in a PCA-reduced space
of ``reduced_dim`` dimensions, where every row also has a *code*: its reduced coordinates,
scalar-quantized per dimension to one byte (256 levels).

Each tenant owns a sub-tree of that shared tree. Where a tenant has at most ``shortlist_cap`` rows
below a node, the node keeps that tenant's **shortlist** (its row ids and their codes, stored
contiguously) and the tenant's sub-tree stops there; above its shortlists a tenant only keeps, per
node, how many of its rows lie below. That count *is* the node's tenant filter, kept exactly and
inverted (per tenant rather than per node: ``count > 0`` means "this tenant has rows below"), so
checking a node costs one array read, never a hash or a probe. A row visible to several tenants
sits in one shortlist of each. Rows no tenant can see are held by an internal owner that no tenant
name reaches, so a later grant finds their codes.

Search
------
A query for tenant *t* ranks only *t*'s shortlists. Each tenant's shortlists are kept packed end
to end (rows and codes in one array each, remade by the first search after a write; the lists are
views of it, so nothing is stored twice), with the tree node of each list. While the tree is small
(up to 4,096 nodes: fanout 16, depth 2) one matrix product scores every node against the query
and the tenant's lists are ranked by their node's score; deeper trees are walked level by level,
best first, through the nodes that hold *t*'s rows (a beam covering ``beam_widening`` times the
budget). The best lists are taken until ``candidates`` rows are covered and their codes are
gathered (a few slices, or one index array for many lists). A tenant whose rows are at most twice
the budget is instead scanned whole, in place: one contiguous block, cheaper than choosing and
gathering lists. One query's codes are ranked by a faiss scalar quantizer that reads the bytes in
place and keeps the best in a heap (one call; a batch of queries, or a filtered query, scores its
codes with one numpy product instead); the best few (``k * 2`` for a few hundred codes, up to
``k * rerank_factor``) are re-scored exactly with the full-precision vectors (one faiss call that
gathers, scores and keeps the best ``k``), and the best ``k`` come back. Only rows from *t*'s
shortlists can ever be returned, and an ``allowed`` mask is applied before ranking, so a filter is
exact.

Updates
-------
Inserts walk each vector's path (vectorized per level) to its leaf; each tenant's rows land in the
first shortlist on the path, or start a new one where the path leaves the tenant's sub-tree; a
shortlist that grows past the cap splits into its children. Deletes and revokes shrink shortlists;
an internal node whose count falls to ``shortlist_cap // 2`` (the gap avoids split/merge churn)
merges its sub-tree back into one shortlist, and a node a tenant has left has count 0 for it. No
rebuild is ever needed for correctness; a rebuild only re-trains the tree on the current data.

Defaults, chosen by measurement with ``benchmarks/tenants.py`` (the SciFact-like generated set
of ``benchmarks/synthetic.py``, 1M points, 100 and 1,000 Zipf-sized tenants, recall@10 per
tenant-size bucket):

* ``fanout`` 16 and the smallest ``depth`` whose leaves hold at most 4,096 rows (1M rows: 2);
* ``shortlist_cap`` 128: small lists let a query pick the few cells near it, and packed storage
  makes many lists as cheap to scan as few. With a cap of 512 a tenant of 3,000 rows had 16 lists
  and needed 2,048 scanned codes for the recall that 1,024 codes give with a cap of 128;
* ``reduced_dim`` 96, one-byte codes: about 100 bytes a row (110 with 10% of rows shared by several
  tenants). 48 float32 dimensions cost twice that and lost up to 12 points of recall@10 on
  large tenants at the same rerank depth; 96 dimensions matched full precision;
* a scan budget of ``max(1,024, 7% of the tenant's rows)`` codes: the smallest tried whose
  recall@10 stayed at least 0.96 in every bucket (768 codes or 5% fell to 0.95-0.96 in the
  large or medium bucket of 100 tenants; on this data a tenant's top 10 spreads over many
  k-means cells);
* ``rerank_factor`` 6: 60 exact re-scores from ~2,000 scanned codes on, fewer below (20 suffice
  for a few hundred).

These fixed defaults are what a build uses. A build may instead measure them per collection
(``build(tune=True)``, :meth:`TenantIndex.tune`); that is off by default because on the 1M
benchmark the tuned budgets ran slower than these defaults at the same recall target (its cost
model counts codes scanned and underprices choosing the lists to scan). The tuner asks sample tenants of every size third held-out queries (stored
rows, each left out of its own answer), compares the index's answers with exact numpy search over
a small grid (minimum codes 512-1,536, 2-10% of the tenant's rows, rerank 4 or 6) and keeps the
cheapest setting whose recall@10 clears the target by a margin in every third. The choice and
its measured recall are saved with the index and shown by :meth:`TenantIndex.describe`.
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, cast

import faiss
import numpy as np
from numpy.typing import NDArray
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

Vectors = NDArray[np.float32]
Codes = NDArray[np.uint8]  # scalar-quantized reduced coordinates, one row per (row, tenant)
Rows = NDArray[np.int64]
Mask = NDArray[np.bool_]
Progress = Callable[[str, float], None]
_kernels: Any = faiss  # faiss's SWIG functions carry no types
# the same functions without faiss's Python wrappers (one call less per use on the query path)
_swig: Any = getattr(faiss, "_swigfaiss", faiss)

METRICS = ("cosine", "ip", "l2")
UNOWNED = 0  # holder id of the rows no tenant can see; no tenant name maps to it
FORMAT_VERSION = 1
_CHUNK_ROWS = 32_768  # rows per block when projecting or routing many vectors
_QUERY_CHUNK = 16  # queries searched together (they share one scan of their lists' union)
_MAX_BEAM = 64  # internal nodes kept per level and query
# a row this close to length 1 counts as unit length (normalised float32 rows are within 2e-7),
# so cosine = ip / |q| to float32 precision
_UNIT_TOLERANCE = 1e-6
# up to this many rows, re-scoring them all exactly is cheaper than ranking their codes first;
# more when the full-precision matrix is small enough to stay in the processor's cache (SciFact's
# 5k x 384 floats: 400-row tenants answered 5% faster exactly), where a row costs no memory trip
_DIRECT_ROWS = 64
# exact re-scores per result wanted: this many, plus one per 512 codes scanned, up to the
# rerank factor (the more codes compete, the deeper the true top k sits in the reduced ranking)
_RERANK_FLOOR = 2.0
# a budget covering at least this share of a tenant's rows scans them all: choosing and
# gathering lists costs more than ranking the rest of the tenant's codes in place
_WHOLE_SCAN_RATIO = 2.0
_DIRECT_ROWS_CACHED = 384
_CACHED_MATRIX_BYTES = 16 << 20
# up to this many shortlists are gathered slice by slice, more with one index array
_SLICED_LISTS = 12
# trees with up to this many nodes rank a tenant's lists directly, deeper ones walk level by level
_FLAT_NODES = 4_096
# the tuner's grid (min codes, share of the tenant's rows, rerank factor) and its cost model: a
# query costs its scanned codes, plus _RERANK_COST per exact re-score (a full-precision row read
# at random) and _SELECT_COST when it ranks lists rather than scanning its whole sub-tree
_TUNE_MINS = (512, 768, 1_024, 1_536)
_TUNE_FRACTIONS = (0.02, 0.03, 0.05, 0.07, 0.10)
_TUNE_RERANKS = (4.0, 6.0)
_TUNE_TENANTS = 8  # sample tenants per size bucket
_TUNE_QUERIES = 32  # held-out queries per sample tenant
# stored rows are easier queries than real ones (they sit inside the data's clusters): on the 1M
# generated set with 100 tenants their recall@10 ran up to 0.026 above the benchmark's queries'
# in a bucket at small budgets, and close to it elsewhere; the tuner asks for this much more
_TUNE_MARGIN = 0.015
_RERANK_COST = 8.0
_SELECT_COST = 512.0


@dataclass(frozen=True)
class TenancyConfig:
    """The tree's shape and the search defaults, as chosen at build time."""

    fanout: int
    depth: int
    shortlist_cap: int
    reduced_dim: int
    rerank_factor: float = 6.0
    min_candidates: int = 1_024
    candidate_fraction: float = 0.07
    beam_widening: float = 3.0

    @property
    def merge_threshold(self) -> int:
        """An internal node with this many rows or fewer for a tenant becomes one shortlist."""
        return self.shortlist_cap // 2

    def candidates_for(self, tenant_rows: int) -> int:
        """Return the default number of codes a query scans for a tenant of this size."""
        # rounded first: 0.07 * 100_000 is 7000.000000000001 in floating point
        share = round(self.candidate_fraction * tenant_rows, 6)
        return max(self.min_candidates, math.ceil(share))


def default_config(
    rows: int,
    dim: int,
    *,
    fanout: int | None = None,
    depth: int | None = None,
    shortlist_cap: int | None = None,
    reduced_dim: int | None = None,
) -> TenancyConfig:
    """Return the configuration the build uses for ``rows`` vectors of ``dim`` dimensions."""
    fanout = 16 if fanout is None else fanout
    if fanout < 2:
        raise ValueError(f"fanout {fanout} is not allowed: use at least 2")
    if depth is None:
        depth = 0
        while rows / fanout**depth > 4_096 and depth < 4:
            depth += 1
    if depth < 0:
        raise ValueError(f"depth {depth} is not allowed: use 0 or more")
    shortlist_cap = 128 if shortlist_cap is None else shortlist_cap
    if shortlist_cap < 2:
        raise ValueError(f"shortlist_cap {shortlist_cap} is not allowed: use at least 2")
    reduced_dim = min(dim, 96) if reduced_dim is None else min(dim, reduced_dim)
    if reduced_dim < 1:
        raise ValueError(f"reduced_dim {reduced_dim} is not allowed: use at least 1")
    return TenancyConfig(
        fanout=fanout, depth=depth, shortlist_cap=shortlist_cap, reduced_dim=reduced_dim
    )


class _Shortlist:
    """One tenant's rows below one node: row ids and codes, contiguous, grown geometrically."""

    __slots__ = ("codes", "rows", "size")

    def __init__(self, rows: Rows, codes: Codes) -> None:
        self.rows = rows
        self.codes = codes
        self.size = len(rows)

    def live_rows(self) -> Rows:
        return self.rows[: self.size]

    def live_codes(self) -> Codes:
        return self.codes[: self.size]

    def append(self, rows: Rows, codes: Codes) -> None:
        need = self.size + len(rows)
        if need > len(self.rows):
            capacity = max(need, len(self.rows) + len(self.rows) // 2 + 4)
            grown_rows = np.empty(capacity, np.int64)
            grown_rows[: self.size] = self.rows[: self.size]
            grown_codes = np.empty((capacity, self.codes.shape[1]), np.uint8)
            grown_codes[: self.size] = self.codes[: self.size]
            self.rows, self.codes = grown_rows, grown_codes
        self.rows[self.size : need] = rows
        self.codes[self.size : need] = codes
        self.size = need

    def remove(self, rows: Rows) -> tuple[Rows, Codes]:
        """Drop ``rows`` (those present); return the dropped rows and their codes."""
        live = self.rows[: self.size]
        gone = np.isin(live, rows)
        dropped = (live[gone], self.codes[: self.size][gone])
        keep = ~gone
        kept = int(np.count_nonzero(keep))
        if kept * 4 < len(self.rows):  # mostly empty: give the memory back
            self.rows = live[keep]
            self.codes = self.codes[: self.size][keep]
        else:
            self.rows[:kept] = live[keep]
            self.codes[:kept] = self.codes[: self.size][keep]
        self.size = kept
        return dropped

    def codes_of(self, rows: Rows) -> Codes:
        """Return the codes of ``rows`` (all present in this list), in the order given."""
        live = self.rows[: self.size]
        order = np.argsort(live, kind="stable")
        where = order[np.searchsorted(live, rows, sorter=order)]
        return self.codes[where]

    def nbytes(self) -> int:
        return int(self.rows.nbytes + self.codes.nbytes) + 72  # + the object and its slots


class _Level:
    """One tenant's view of one tree level: rows below each node, and its shortlist if any."""

    __slots__ = ("count", "slot")

    def __init__(self, width: int) -> None:
        self.count = np.zeros(width, np.int64)  # > 0: the tenant has rows below (its filter)
        self.slot = np.full(width, -1, np.int32)  # >= 0: the node holds the tenant's shortlist

    def nbytes(self) -> int:
        return int(self.count.nbytes + self.slot.nbytes)


class _Packed:
    """A holder's shortlists laid end to end: one rows array, one codes array, a range per list.

    Built by the first search after a write; the shortlists then become views of these arrays
    (so the codes are held once). A small tenant's whole sub-tree is one contiguous scan, and any
    choice of shortlists is gathered with a few slices or one index array. Per list it also keeps
    the tree node holding it, so one query ranks all of a tenant's lists with one gather.
    """

    __slots__ = ("_ranker", "by_slot", "codes", "nodes", "rows", "sizes", "slots", "starts")

    def __init__(
        self,
        rows: Rows,
        codes: Codes,
        starts: Rows,
        sizes: Rows,
        nodes: Rows,
        slots: NDArray[np.int32],
    ) -> None:
        self.rows = rows
        self.codes = codes
        self.starts = starts  # per list: where its rows begin
        self.sizes = sizes
        self.nodes = nodes  # per list: its node, numbered level by level from the root (0)
        self.slots = slots  # per list: its slot in the holder
        self.by_slot = np.full(int(slots.max()) + 1 if len(slots) else 0, -1, np.int64)
        self.by_slot[slots] = np.arange(len(slots))  # per slot: its list (-1: a free slot)
        self._ranker: _CodeRanker | None = None

    def ranker(self) -> _CodeRanker:
        """Return the ranker of all the holder's codes (made by the first scan that needs it)."""
        ranker = self._ranker
        if ranker is None:
            ranker = _CodeRanker(self.codes.shape[1], self.codes)
            self._ranker = ranker
        return ranker

    def gather(self, lists: Rows, ranker: _CodeRanker | None = None) -> tuple[Rows, Codes]:
        """Return the rows and the codes of the given lists, one after the other.

        With ``ranker`` the codes are written into its scratch block, ready for it to rank.
        """
        sizes = self.sizes[lists]
        if len(lists) > _SLICED_LISTS:  # many lists: one index array beats a slice per list
            ends = np.cumsum(sizes)
            count = int(ends[-1])
            positions = np.repeat(self.starts[lists] - ends + sizes, sizes)
            positions += np.arange(count)
            if ranker is None:
                return self.rows[positions], self.codes[positions]
            block = ranker.block(count)
            return self.rows[positions], np.take(self.codes, positions, 0, block, "clip")
        starts = self.starts[lists].tolist()
        ends = (self.starts[lists] + sizes).tolist()
        spans = [slice(start, end) for start, end in zip(starts, ends, strict=True)]
        if len(spans) == 1:
            rows = self.rows[spans[0]]
            if ranker is None:
                return rows, self.codes[spans[0]]
            block = ranker.block(len(rows))
            block[:] = self.codes[spans[0]]
            return rows, block
        rows = np.concatenate([self.rows[span] for span in spans])
        out = None if ranker is None else ranker.block(len(rows))
        return rows, np.concatenate([self.codes[span] for span in spans], out=out)

    def nbytes(self) -> int:
        arrays = (self.starts, self.sizes, self.nodes, self.slots, self.by_slot)
        ranker = 0 if self._ranker is None else self._ranker.nbytes()
        return sum(int(array.nbytes) for array in arrays) + 88 + ranker


class _CodeRanker:
    """Ranks a block of codes against one query in one faiss call, reading the codes in place.

    faiss's scalar quantizer scores each byte code as a vector of byte values (SIMD, no float
    copy) and keeps the best in a heap: one call where numpy needs a float copy of the codes, a
    product and a partial sort, each with a fixed cost that dominates for the few hundred codes
    of a small tenant. A probe scaled by the per-dimension step ranks codes as their decoded
    values would. The ranker's code storage is a view: of one holder's packed codes (read-only,
    shared by every search), or of a thread's scratch block that a partial scan gathers into.
    """

    __slots__ = ("_index", "_scratch", "_view")

    def __init__(self, width: int, codes: Codes | None = None) -> None:
        index: Any = faiss.IndexScalarQuantizer(
            width, faiss.ScalarQuantizer.QT_8bit_uniform, faiss.METRIC_INNER_PRODUCT
        )
        # faiss decodes code c as vmin + (c + 0.5) / 255 * vdiff: with these, as c itself
        # (QT_8bit_direct would say so directly, but its inner-product scan is wrong in faiss 1.15)
        _kernels.copy_array_to_vector(np.asarray([-0.5, 255.0], np.float32), index.sq.trained)
        index.is_trained = True
        self._index = index
        self._view: Any = index.codes
        self._view.is_owned = False
        self._scratch = np.zeros((0, width), np.uint8)
        if codes is not None:
            self._point(codes)

    def _point(self, codes: Codes) -> None:
        _swig.MaybeOwnedVectorUInt8_c_ptr_set(self._view, _swig.swig_ptr(codes))
        _swig.MaybeOwnedVectorUInt8_c_size_set(self._view, codes.size)
        _swig.Index_ntotal_set(self._index, len(codes))

    def block(self, count: int) -> Codes:
        """Return this thread's scratch block of ``count`` codes, which :meth:`best` then ranks."""
        if count > len(self._scratch):
            self._scratch = np.empty(
                (max(count, 2 * len(self._scratch)), self._scratch.shape[1]), np.uint8
            )
            self._point(self._scratch)
        _swig.Index_ntotal_set(self._index, count)
        return self._scratch[:count]

    def best(self, probe: Vectors, depth: int) -> Rows:
        """Return the positions of the ``depth`` best codes (``depth`` <= their number)."""
        ptr = _swig.swig_ptr
        scores = np.empty(depth, np.float32)
        positions = np.empty(depth, np.int64)
        _swig.IndexScalarQuantizer_search(
            self._index, 1, ptr(probe), depth, ptr(scores), ptr(positions), None
        )
        return positions

    def nbytes(self) -> int:
        return int(self._scratch.nbytes) + 400  # the faiss index and its Python proxies


class _Holder:
    """A tenant's sub-tree: per-level counts and shortlist slots, and the shortlists themselves."""

    __slots__ = ("_slots", "free", "levels", "lists", "packed", "size")

    def __init__(self) -> None:
        self.levels: list[_Level] = [_Level(1)]
        self.lists: list[_Shortlist | None] = []
        self.free: list[int] = []
        self.size = 0
        self._slots: NDArray[np.int32] | None = None
        self.packed: _Packed | None = None  # None: a write happened since the last pack

    def pack(self, width: int, fanout: int) -> _Packed:
        """Return the shortlists laid end to end (made again only after a write).

        The shortlists become views of the packed arrays. A search may call this while other
        searches run: each gets a complete, self-consistent layout of the same contents.
        """
        packed = self.packed
        if packed is not None:
            return packed
        level_slots: list[NDArray[np.int32]] = []
        level_nodes: list[Rows] = []
        first_node = 0  # the number of the level's first node
        for depth, level in enumerate(self.levels):
            nodes = np.flatnonzero(level.slot >= 0)
            level_slots.append(level.slot[nodes])
            level_nodes.append(nodes + first_node)
            first_node += fanout**depth
        slots = np.concatenate(level_slots)
        live = [self.get(slot) for slot in slots.tolist()]
        sizes = np.fromiter((s.size for s in live), np.int64, len(live))
        starts = np.cumsum(sizes) - sizes
        if live:
            rows = np.concatenate([s.live_rows() for s in live])
            codes = np.concatenate([s.live_codes() for s in live])
        else:
            rows, codes = np.zeros(0, np.int64), np.zeros((0, width), np.uint8)
        for shortlist, start in zip(live, starts.tolist(), strict=True):
            end = start + shortlist.size
            shortlist.rows, shortlist.codes = rows[start:end], codes[start:end]
        packed = _Packed(rows, codes, starts, sizes, np.concatenate(level_nodes), slots)
        self.packed = packed
        return packed

    def level(self, depth: int, fanout: int) -> _Level:
        while len(self.levels) <= depth:
            self.levels.append(_Level(fanout ** len(self.levels)))
        return self.levels[depth]

    def add_list(self, shortlist: _Shortlist) -> int:
        self._slots = None
        self.packed = None
        if self.free:
            slot = self.free.pop()
            self.lists[slot] = shortlist
            return slot
        self.lists.append(shortlist)
        return len(self.lists) - 1

    def drop_list(self, slot: int) -> _Shortlist:
        shortlist = self.lists[slot]
        assert shortlist is not None
        self.lists[slot] = None
        self.free.append(slot)
        self._slots = None
        self.packed = None
        return shortlist

    def get(self, slot: int) -> _Shortlist:
        shortlist = self.lists[slot]
        assert shortlist is not None, "a slot in use lost its shortlist"
        return shortlist

    def slots(self) -> NDArray[np.int32]:
        """Return the slots in use (computed again only after a list came or went)."""
        cached = self._slots
        if cached is None:
            cached = np.fromiter(
                (i for i, s in enumerate(self.lists) if s is not None), dtype=np.int32
            )
            self._slots = cached
        return cached

    def nbytes(self) -> int:
        lists = sum(s.nbytes() for s in self.lists if s is not None)
        packed = 0 if self.packed is None else self.packed.nbytes()
        return lists + packed + sum(lv.nbytes() for lv in self.levels) + 8 * len(self.lists) + 120


class TenantIndex:
    """A multi-tenant vector index: one shared clustering tree, a sub-tree of shortlists per tenant.

    Build with :meth:`build`; search with :meth:`search`; keep in step with the collection through
    :meth:`insert`, :meth:`delete`, :meth:`grant` and :meth:`revoke`. The full-precision vectors
    are not kept here: searches read them from the collection's matrix for the exact rerank.
    Not thread-safe for writes; concurrent searches are safe (they never change the index).
    """

    def __init__(
        self,
        config: TenancyConfig,
        metric: str,
        dim: int,
        projection: Vectors,
        mean: Vectors,
        centroids: list[Vectors],
        code_low: Vectors,
        code_step: Vectors,
    ) -> None:
        if metric not in METRICS:
            raise ValueError(f"metric {metric!r} is not allowed: use one of {', '.join(METRICS)}")
        self.config = config
        self.metric = metric
        self.dim = dim
        self._projection = np.ascontiguousarray(projection, dtype=np.float32)
        self._mean = np.ascontiguousarray(mean, dtype=np.float32)
        self._mean_code = (self._mean @ self._projection).astype(np.float32)
        self._centroids = centroids  # per level: (fanout**level, reduced_dim + 1), last = bias
        self._code_width = config.reduced_dim + (1 if metric == "l2" else 0)
        # codes: reduced coordinates (and, for l2, the bias) quantized per dimension to a byte,
        # value = low + code * step; ranking needs only step (the rest is a constant)
        self._code_low = np.asarray(code_low, np.float32)
        self._code_step = np.asarray(code_step, np.float32)
        reduced = config.reduced_dim
        # every node of the tree, level by level: a query scores them all with one product
        # (centroid . (z - mean) + bias = centroid . z + offset) when the tree is small enough
        nodes = np.vstack(centroids).astype(np.float32)
        self._node_matrix = np.ascontiguousarray(nodes[:, :reduced])
        self._node_offset = (
            np.zeros(len(nodes), np.float32)
            if metric == "ip"
            else (nodes[:, reduced] - self._node_matrix @ self._mean_code).astype(np.float32)
        )
        self._nodes = nodes
        self._flat_select = len(nodes) <= _FLAT_NODES
        # what one query's node scores are taken against: its probe (P^T q * step) for cosine
        # and ip, so the scan's probe serves both; P^T q for l2
        self._node_rows = np.ascontiguousarray(
            self._node_matrix if metric == "l2" else self._node_matrix / code_step[:reduced],
            dtype=np.float32,
        )
        # cosine and ip: codes rank like (query @ projection * step) . code; one row per reduced
        # dimension, so one faiss call (no BLAS dispatch) gives a query's probe
        self._scan_rows = np.ascontiguousarray((self._projection * self._code_step[:reduced]).T)
        self._reduced_step = np.ascontiguousarray(self._code_step[:reduced])
        # gather, score and keep the best k of a row subset, in one faiss call
        self._kernel = (
            _kernels.knn_L2sqr_by_idx if metric == "l2" else _kernels.knn_inner_products_by_idx
        )
        self._fan = np.arange(config.fanout, dtype=np.int64)
        self._local = threading.local()  # per thread: its code ranker
        self._leaf = np.full(0, -1, np.int64)  # per row: its leaf (index within the last level)
        self._first = np.full(0, -1, np.int32)  # per row: a holder (-1: the row is not here)
        self._shared = np.zeros(0, np.bool_)  # per row: held by more than one holder
        self._more: dict[int, list[int]] = {}  # the other holders of shared rows
        self._holders: list[_Holder] = [_Holder()]  # holder 0 holds the unowned rows
        self._tenant_ids: dict[str, int] = {}
        self._tenant_names: list[str] = [""]
        self._row_end = 0  # one past the highest row ever inserted
        self._off_unit = np.zeros(0, np.bool_)  # per row: its length is not 1
        self._non_unit = 0  # live rows whose length is not 1 (cosine: faiss's rerank needs 1)
        self.tuning: dict[str, Any] | None = None  # how tune() chose the search budget

    # --- building ------------------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        vectors: object,
        row_tenants: Sequence[Sequence[str]],
        alive: object | None = None,
        metric: str = "cosine",
        fanout: int | None = None,
        depth: int | None = None,
        shortlist_cap: int | None = None,
        seed: int = 0,
        *,
        reduced_dim: int | None = None,
        progress: Progress | None = None,
        tune: bool = False,
        recall_target: float = 0.95,
    ) -> TenantIndex:
        """Return an index over the live rows of ``vectors`` with the given tenant access lists.

        With ``tune`` the search budget is then chosen by measurement (:meth:`tune`) so that
        recall@10 meets ``recall_target`` in every tenant-size bucket of a held-out sample; off by
        default (see the module notes).
        """
        matrix = _as_matrix(vectors, None)
        n, dim = matrix.shape
        if len(row_tenants) != n:
            raise ValueError(f"{n} vectors but {len(row_tenants)} tenant lists: they must match")
        live_mask = np.ones(n, np.bool_) if alive is None else np.asarray(alive, dtype=np.bool_)
        if live_mask.shape != (n,):
            raise ValueError(f"alive has shape {live_mask.shape}, expected ({n},)")
        live = np.flatnonzero(live_mask).astype(np.int64)
        config = default_config(
            len(live),
            dim,
            fanout=fanout,
            depth=depth,
            shortlist_cap=shortlist_cap,
            reduced_dim=reduced_dim,
        )
        report = progress or (lambda stage, fraction: None)
        rng = np.random.default_rng(seed)
        sample_size = min(len(live), max(20_000, 64 * config.fanout**config.depth))
        sample_rows = np.sort(rng.choice(live, size=sample_size, replace=False))
        sample = _prepared(matrix[sample_rows], metric)
        projection, mean = _fit_projection(sample, config.reduced_dim, metric)
        report("projection", 1.0)
        sample_codes = np.ascontiguousarray((sample - mean) @ projection, dtype=np.float32)
        code_low, code_step = _fit_quantizer(_with_bias(sample_codes, sample - mean, metric))
        # many small clusterings: one thread each is several times faster than a contended pool
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        try:
            centroids = _train_tree(sample_codes, config, metric, seed, faiss, report)
        finally:
            faiss.omp_set_num_threads(threads)
        index = cls(config, metric, dim, projection, mean, centroids, code_low, code_step)
        everyone = len(live) == n
        tenants = list(row_tenants) if everyone else [row_tenants[r] for r in live.tolist()]
        index.insert(live, matrix if everyone else matrix[live], tenants, _progress=report)
        if tune:
            index.tune(matrix, target=recall_target, seed=seed)
            report("tuning", 1.0)
        report("done", 1.0)
        return index

    # --- what is indexed -----------------------------------------------------------------------

    def tenants(self) -> dict[str, int]:
        """Return each tenant's row count (tenants with no rows left out)."""
        return {
            name: self._holders[hid].size
            for name, hid in sorted(self._tenant_ids.items())
            if self._holders[hid].size
        }

    def tenant_rows(self, tenant: str) -> Rows:
        """Return the sorted rows ``tenant`` can see."""
        hid = self._tenant_ids.get(tenant)
        if hid is None:
            return np.zeros(0, np.int64)
        lists = [s.live_rows() for s in self._holders[hid].lists if s is not None]
        return np.sort(np.concatenate(lists)) if lists else np.zeros(0, np.int64)

    def __contains__(self, row: int) -> bool:
        return 0 <= row < len(self._first) and bool(self._first[row] >= 0)

    def describe(self) -> dict[str, Any]:
        """Return the configuration and the size of the structure (for ``explain`` and stats)."""
        lists = [sum(s is not None for s in h.lists) for h in self._holders[1:]]
        return {
            "kind": "curator",
            "metric": self.metric,
            **asdict(self.config),
            "tenants": sum(1 for h in self._holders[1:] if h.size),
            "rows": int(np.count_nonzero(self._first >= 0)),
            "shortlists": int(sum(lists)),
            "memory_bytes": self.memory_bytes(),
            "tuning": self.tuning,
        }

    def check_consistency(self) -> None:
        """Raise AssertionError if the structure contradicts itself (for tests and debugging).

        Checks, per holder: every shortlist sits on the path of each of its rows, internal counts
        add up, nothing of the holder lies below its shortlists, no row is held twice; and that
        the per-row record of holders agrees with the shortlists.
        """
        fanout = self.config.fanout
        seen: dict[int, set[int]] = {}
        for hid, holder in enumerate(self._holders):
            total = 0
            rows_here: list[Rows] = []
            for depth, level in enumerate(holder.levels):
                for node in np.flatnonzero(level.slot >= 0).tolist():
                    shortlist = holder.get(int(level.slot[node]))
                    assert shortlist.size == level.count[node] > 0, (hid, depth, node)
                    rows = shortlist.live_rows()
                    assert (self._ancestors(rows, depth) == node).all(), (hid, depth, node)
                    rows_here.append(rows)
                    total += shortlist.size
                    for below in range(depth + 1, len(holder.levels)):
                        span = fanout ** (below - depth)
                        window = holder.levels[below].count[node * span : (node + 1) * span]
                        assert not window.any(), (hid, depth, node, below)
                if depth + 1 < len(holder.levels):
                    children = holder.levels[depth + 1].count.reshape(-1, fanout).sum(axis=1)
                    inner = level.slot < 0
                    assert (level.count[inner] == children[inner]).all(), (hid, depth)
            in_use = sum(s is not None for s in holder.lists)
            assert in_use == sum(int((lv.slot >= 0).sum()) for lv in holder.levels), hid
            assert total == holder.size == int(holder.levels[0].count[0]), hid
            held = np.concatenate(rows_here) if rows_here else np.zeros(0, np.int64)
            assert len(np.unique(held)) == len(held), f"holder {hid} holds a row twice"
            for row in held.tolist():
                seen.setdefault(row, set()).add(hid)
        for row in np.flatnonzero(self._first >= 0).tolist():
            recorded = {int(self._first[row]), *self._more.get(row, [])}
            assert seen.get(row) == recorded, (row, seen.get(row), recorded)
            assert bool(self._shared[row]) == (row in self._more), row
        assert len(seen) == int(np.count_nonzero(self._first >= 0)), "a held row is not recorded"

    def memory_bytes(self) -> int:
        """Return the bytes this index holds (the collection's vectors are not counted)."""
        fixed = self._projection.nbytes + self._mean.nbytes + sum(c.nbytes for c in self._centroids)
        rows = self._leaf.nbytes + self._first.nbytes + self._shared.nbytes + self._off_unit.nbytes
        # a dict entry, its key and a small list: about 120 bytes, plus 8 per extra holder
        shared = sum(120 + 8 * len(extra) for extra in self._more.values())
        names = sum(60 + len(name) for name in self._tenant_names)
        return int(fixed + rows + shared + names + sum(h.nbytes() for h in self._holders))

    # --- writes --------------------------------------------------------------------------------

    def insert(
        self,
        rows: object,
        vectors: object,
        row_tenants: Sequence[Sequence[str]],
        *,
        _progress: Progress | None = None,
    ) -> None:
        """Add new rows with their vectors and tenant access lists (a row already here is replaced)."""
        row_ids = np.asarray(rows, dtype=np.int64).reshape(-1)
        matrix = _as_matrix(vectors, self.dim)
        if len(matrix) != len(row_ids) or len(row_tenants) != len(row_ids):
            raise ValueError(
                f"{len(row_ids)} rows but {len(matrix)} vectors and {len(row_tenants)} tenant "
                "lists: they must match"
            )
        if len(row_ids) == 0:
            return
        if row_ids.min() < 0:
            raise ValueError("row numbers must be non-negative")
        if len(np.unique(row_ids)) != len(row_ids):
            raise ValueError("a row appears twice in one insert")
        present = row_ids[row_ids < len(self._first)]
        present = present[self._first[present] >= 0]
        if len(present):
            self.delete(present)
        self._grow(int(row_ids.max()) + 1)
        self._row_end = max(self._row_end, int(row_ids.max()) + 1)
        codes = np.empty((len(row_ids), self._code_width), np.uint8)
        leaves = np.empty(len(row_ids), np.int64)
        for start in range(0, len(row_ids), _CHUNK_ROWS):
            block = slice(start, start + _CHUNK_ROWS)
            codes[block], leaves[block] = self._encode(matrix[block])
            if _progress is not None:
                _progress("routing", min(1.0, (start + _CHUNK_ROWS) / len(row_ids)))
        self._leaf[row_ids] = leaves
        off_unit = np.abs(np.linalg.norm(matrix, axis=1) - 1) > _UNIT_TOLERANCE
        self._off_unit[row_ids] = off_unit
        self._non_unit += int(np.count_nonzero(off_unit))
        pair_index, pair_holders = self._pairs(row_tenants)
        for hid, positions in _groups(pair_holders, pair_index):
            self._add(hid, row_ids[positions], codes[positions])
        self._register(row_ids[pair_index], pair_holders)

    def delete(self, rows: object) -> None:
        """Forget rows (those not here are ignored): they leave every tenant's sub-tree."""
        row_ids = self._known(rows)
        if len(row_ids) == 0:
            return
        pair_rows, pair_holders = self._holders_of(row_ids)
        for hid, positions in _groups(pair_holders, np.arange(len(pair_rows))):
            self._remove(hid, pair_rows[positions])
        self._first[row_ids] = -1
        self._leaf[row_ids] = -1
        self._non_unit -= int(np.count_nonzero(self._off_unit[row_ids]))
        self._off_unit[row_ids] = False
        for row in row_ids[self._shared[row_ids]].tolist():
            del self._more[row]
        self._shared[row_ids] = False

    def grant(self, tenant: str, rows: object) -> None:
        """Let ``tenant`` see ``rows`` (rows not in the index, or already visible, are ignored)."""
        row_ids = self._known(rows)
        hid = self._tenant_id(tenant, create=True)
        row_ids = row_ids[~self._held_by(row_ids, hid)]
        if len(row_ids) == 0:
            return
        donors = self._first[row_ids].astype(np.int64)
        codes = np.empty((len(row_ids), self._code_width), np.uint8)
        for donor, positions in _groups(donors, np.arange(len(row_ids))):
            codes[positions] = self._codes_from(donor, row_ids[positions])
        unowned = row_ids[donors == UNOWNED]
        if len(unowned):
            self._remove(UNOWNED, unowned)
            self._unregister(unowned, UNOWNED)
        self._add(hid, row_ids, codes)
        self._register(row_ids, np.full(len(row_ids), hid, np.int64))

    def revoke(self, tenant: str, rows: object) -> None:
        """Stop ``tenant`` seeing ``rows`` (rows it cannot see are ignored)."""
        hid = self._tenant_ids.get(tenant)
        if hid is None:
            return
        row_ids = self._known(rows)
        row_ids = row_ids[self._held_by(row_ids, hid)]
        if len(row_ids) == 0:
            return
        removed_rows, removed_codes = self._remove(hid, row_ids)
        orphans = self._unregister(removed_rows, hid)
        if orphans.any():
            self._add(UNOWNED, removed_rows[orphans], removed_codes[orphans])
            self._register(removed_rows[orphans], np.full(int(orphans.sum()), UNOWNED, np.int64))

    def drop_tenant(self, tenant: str) -> int:
        """Revoke ``tenant`` everywhere; return how many rows it could see."""
        rows = self.tenant_rows(tenant)
        self.revoke(tenant, rows)
        return len(rows)

    # --- search --------------------------------------------------------------------------------

    def search(
        self,
        queries: object,
        k: int,
        tenant: str,
        *,
        vectors: object,
        allowed: object | None = None,
        candidates: int | None = None,
    ) -> tuple[Vectors, Rows]:
        """Return (scores, rows) of the ``k`` best rows ``tenant`` can see, per query, best first.

        Scores are similarities for cosine and ip (higher is better) and squared distances for
        l2 (lower is better). Missing results are row -1 with score -inf (l2: +inf). ``vectors``
        is the row-indexed full-precision matrix used for the exact rerank; ``allowed`` is an
        optional boolean mask over rows, applied exactly (rows past its end are not allowed);
        ``candidates`` is how many codes a query scans (default:
        :meth:`TenancyConfig.candidates_for` the tenant's size; a budget of at least half the
        tenant's rows scans them all). A query that finds fewer than
        ``k`` rows widens its scan until it has covered the tenant's whole sub-tree.
        """
        matrix = _as_matrix(queries, self.dim)
        if k < 1:
            raise ValueError(f"k {k} is not allowed: k must be at least 1")
        full = vectors if isinstance(vectors, np.ndarray) else np.asarray(vectors)
        if full.ndim != 2 or full.shape[1] != self.dim:
            raise ValueError(f"vectors must be a (rows, {self.dim}) matrix, got {full.shape}")
        m = len(matrix)
        hid = self._tenant_ids.get(tenant)
        holder = self._holders[hid] if hid is not None else None
        if holder is None or holder.size == 0 or m == 0:
            return self._external(np.full((m, k), -np.inf, np.float32), np.full((m, k), -1))
        mask = None
        if allowed is not None:
            mask = np.asarray(allowed, dtype=np.bool_).reshape(-1)
            if len(mask) < self._row_end:  # rows past the mask's end are not allowed
                mask = np.concatenate([mask, np.zeros(self._row_end - len(mask), np.bool_)])
        if candidates is not None:
            budget = candidates
        elif holder.size <= self.config.min_candidates:  # the whole sub-tree
            budget = holder.size
        else:
            budget = self.config.candidates_for(holder.size)
        if budget < 1:
            raise ValueError(f"candidates {budget} is not allowed: use at least 1")
        if budget * _WHOLE_SCAN_RATIO >= holder.size:
            budget = holder.size
        # the rerank runs in faiss (gather, score and select in one call) when it can read the
        # matrix in place and, for cosine, when every row has unit length (then ip ranks alike)
        fast = full.dtype == np.float32 and full.flags.c_contiguous and len(full) >= self._row_end
        fast = fast and (self.metric != "cosine" or self._non_unit == 0)
        if m == 1:  # the online case, without batch bookkeeping
            wider = budget
            scores, rows = self._search_one(matrix, k, holder, full, mask, wider, fast)
            while wider < holder.size and rows[0, -1] < 0:
                wider = holder.size if wider * 8 >= holder.size else wider * 8
                scores, rows = self._search_one(matrix, k, holder, full, mask, wider, fast)
            return scores, rows
        out_scores = np.empty((m, k), np.float32)
        out_rows = np.empty((m, k), np.int64)
        for start in range(0, m, _QUERY_CHUNK):
            chunk = slice(start, start + _QUERY_CHUNK)
            scores, rows = self._search_chunk(matrix[chunk], k, holder, full, mask, budget, fast)
            wider = budget
            short = np.count_nonzero(rows >= 0, axis=1) < k
            while short.any() and wider < holder.size:
                wider = holder.size if wider * 8 >= holder.size else wider * 8
                again = matrix[chunk][short]
                scores[short], rows[short] = self._search_chunk(
                    again, k, holder, full, mask, wider, fast
                )
                short[short] = np.count_nonzero(rows[short] >= 0, axis=1) < k
            out_scores[chunk], out_rows[chunk] = scores, rows
        return self._external(out_scores, out_rows)

    def _external(self, scores: Vectors, rows: Rows) -> tuple[Vectors, Rows]:
        """Return internal (higher is better) scores as the caller sees them, padding included."""
        found = rows >= 0
        if self.metric == "l2":
            external = np.where(found, np.maximum(-scores, 0), np.inf).astype(np.float32)
        else:
            external = np.where(found, scores, -np.inf).astype(np.float32)
        return external, np.where(found, rows, -1)

    def _search_one(
        self,
        query: Vectors,
        k: int,
        holder: _Holder,
        vectors: NDArray[Any],
        allowed: Mask | None,
        budget: int,
        fast: bool,
    ) -> tuple[Vectors, Rows]:
        """Return (1, k) final scores and rows for one (1, d) query, padded as :meth:`search` says.

        The same steps as :meth:`_search_chunk`, with as few array operations as possible: for
        small tenants their fixed cost is most of the query's time.
        """
        packed = holder.packed or holder.pack(self._code_width, self.config.fanout)
        vector = query[0]
        ptr = _swig.swig_ptr
        if self.metric == "cosine":  # unit length: ranks nodes and codes, and faiss's exact
            vector = vector.copy()  # scores of unit rows are then cosines
            _swig.fvec_renorm_L2(self.dim, 1, ptr(vector))
        # codes are ranked by faiss unless a filter applies (then numpy masks them first)
        ranker: _CodeRanker | None = None
        probe: Vectors | None = None
        projected: Vectors | None = None
        if budget >= holder.size:  # the whole sub-tree: one contiguous block
            rows, codes = packed.rows, packed.codes
        else:
            if self.metric == "l2":
                projected = vector @ self._projection
                lists = self._choose_lists(holder, packed, vector, projected, budget)
            else:
                probe = self._scan_probe(vector)
                lists = self._choose_lists(holder, packed, vector, probe, budget)
            if allowed is None:
                ranker = self._ranker()
            rows, codes = packed.gather(lists, ranker)
        count = len(rows)
        # the more codes compete, the deeper the true top k can sit in the reduced ranking
        rerank = max(k, math.ceil(k * min(self.config.rerank_factor, _RERANK_FLOOR + count / 512)))
        direct = _DIRECT_ROWS if vectors.nbytes > _CACHED_MATRIX_BYTES else _DIRECT_ROWS_CACHED
        if allowed is not None or count > max(rerank, direct):
            if self.metric == "l2":
                if projected is None:
                    projected = vector @ self._projection
                probe = np.append(projected - self._mean_code, np.float32(1)) * self._code_step
            elif probe is None:
                probe = self._scan_probe(vector)
            if allowed is None:
                best = (ranker or packed.ranker()).best(probe, rerank)
                rows = rows[best]
            else:
                approx = codes.astype(np.float32) @ probe
                approx[~allowed[rows]] = -np.inf
                if count > rerank:
                    best = approx.argpartition(count - rerank)[count - rerank :]
                    rows, approx = rows[best], approx[best]
                rows = rows[approx > -np.inf]
            count = len(rows)
        if not fast:
            scores, found = _top_k(self._exact(query, rows[None, :], vectors), rows[None, :], k)
            return self._external(scores, found)
        values = np.empty((1, k), np.float32)
        found = np.empty((1, k), np.int64)
        if not rows.flags.c_contiguous:
            rows = np.ascontiguousarray(rows)
        kernel = _swig.knn_L2sqr_by_idx if self.metric == "l2" else _swig.knn_inner_products_by_idx
        kernel(
            ptr(vector), ptr(vectors), ptr(rows), self.dim, 1, len(vectors), count, k,
            ptr(values), ptr(found), count,
        )  # fmt: skip
        if count < k:  # faiss pads with -+FLT_MAX: make it the documented -+inf
            values[0, count:] = np.inf if self.metric == "l2" else -np.inf
        return values, found

    def _scan_probe(self, vector: Vectors) -> Vectors:
        """Return the vector that ranks codes for one cosine or ip query (``P^T q * step``)."""
        probe = np.empty(len(self._scan_rows), np.float32)
        ptr = _swig.swig_ptr
        _swig.fvec_inner_products_ny(
            ptr(probe), ptr(vector), ptr(self._scan_rows), self.dim, len(probe)
        )
        return probe

    def _ranker(self) -> _CodeRanker:
        """Return this thread's ranker of gathered codes."""
        ranker: _CodeRanker | None = getattr(self._local, "ranker", None)
        if ranker is None:
            ranker = _CodeRanker(self._code_width)
            self._local.ranker = ranker
        return ranker

    def _choose_lists(
        self, holder: _Holder, packed: _Packed, query: Vectors, reduced: Vectors, budget: int
    ) -> Rows:
        """Return the packed lists one query scans: the best ranked until they cover the budget.

        ``reduced`` is the query's probe (``P^T q * step``) for cosine and ip, ``P^T q`` for l2;
        for cosine the query has unit length, as the tree's nodes were trained.
        """
        if not self._flat_select:
            projected = reduced if self.metric == "l2" else reduced / self._reduced_step
            slots = self._select_one(holder, self._node_probe(query, projected), budget)
            chosen: Rows = packed.by_slot[slots]
            return chosen
        ptr = _swig.swig_ptr
        scores = np.empty(len(self._node_rows), np.float32)
        _swig.fvec_inner_products_ny(
            ptr(scores), ptr(reduced), ptr(self._node_rows), len(reduced), len(scores)
        )
        scores += self._node_offset
        order = scores[packed.nodes].argsort()[::-1]
        width = int(packed.sizes[order].cumsum().searchsorted(budget)) + 1
        best: Rows = order[:width]
        return best

    def _search_chunk(
        self,
        queries: Vectors,
        k: int,
        holder: _Holder,
        vectors: NDArray[Any],
        allowed: Mask | None,
        budget: int,
        fast: bool,
    ) -> tuple[Vectors, Rows]:
        """Return (m, k) internal scores and rows for a few queries of one tenant.

        The queries share one scan of the union of their shortlists (one matrix product); each
        query only ranks the rows of the shortlists it chose.
        """
        m = len(queries)
        if budget >= holder.size:
            slots = holder.slots()
            chosen: Mask | None = None
        else:
            pool, picked, pool_sizes = self._select(holder, self._node_probes(queries), budget)
            slots = np.unique(pool[picked]).astype(np.int32)
            chosen = _chosen_by_slot(pool, picked, slots)
        lists = [holder.get(slot) for slot in slots.tolist()]
        rows = _rows_of(lists)
        if chosen is None:
            scanned = np.full(m, len(rows), np.int64)
        else:
            scanned = np.where(picked, pool_sizes, 0).sum(axis=1)
        # per query, as in _search_one: the rerank depth, or all its rows when they are few
        rerank = np.maximum(k, np.ceil(k * self._rerank_factors(scanned))).astype(np.int64)
        depth = rerank
        if allowed is None:
            direct = _DIRECT_ROWS if vectors.nbytes > _CACHED_MATRIX_BYTES else _DIRECT_ROWS_CACHED
            depth = np.where(scanned <= np.maximum(rerank, direct), scanned, rerank)
        if chosen is None and allowed is None and len(rows) <= depth[0]:
            candidates = np.ascontiguousarray(np.broadcast_to(rows, (m, len(rows))))
        else:
            codes = _codes_as_floats(lists)
            approx = np.ascontiguousarray((codes @ self._scan_probes(queries).T).T)
            if chosen is not None:
                sizes = np.fromiter((s.size for s in lists), np.int64, len(lists))
                approx[~np.repeat(chosen, sizes, axis=1)] = -np.inf
            if allowed is not None:
                approx[:, ~allowed[rows]] = -np.inf
            candidates = _best_columns(approx, rows, depth)
        return self._exact_top_k(queries, candidates, k, vectors, fast)

    def _rerank_factors(self, scanned: Rows) -> NDArray[np.float64]:
        factors: NDArray[np.float64] = np.minimum(
            self.config.rerank_factor, _RERANK_FLOOR + scanned / 512
        )
        return factors

    def _rerank_depth(self, k: int, scanned: int) -> int:
        """Return how many rows to re-score exactly after scanning ``scanned`` codes.

        The more codes compete, the deeper the true top k can sit in the reduced ranking: about
        2k suffices for a few hundred codes, ``rerank_factor`` times k from ~2,000 codes on.
        """
        factor = min(self.config.rerank_factor, _RERANK_FLOOR + scanned / 512)
        return max(k, math.ceil(k * factor))

    def _select_one(self, holder: _Holder, node_probe: Vectors, budget: int) -> NDArray[np.int32]:
        """Return the shortlist slots one query scans: its sub-tree walked best first.

        Level by level, the children of the beam that hold the tenant's rows are scored; those
        that are shortlists join the pool, the best internal ones (covering ``beam_widening``
        times the budget) form the next beam. The best shortlists of the pool are then taken
        until they cover the budget.
        """
        root = holder.levels[0]
        if root.slot[0] >= 0:
            return root.slot[:1]
        reach = self.config.beam_widening * budget
        pool_scores: list[Vectors] = []
        pool_slots: list[NDArray[np.int32]] = []
        pool_sizes: list[Rows] = []
        beam: Rows | None = None  # None: the root
        for depth in range(1, len(holder.levels)):
            level = holder.levels[depth]
            if beam is None:
                kids = np.flatnonzero(level.count)
            else:
                kids = (beam[:, None] * self.config.fanout + self._fan).reshape(-1)
                kids = kids[level.count[kids] > 0]  # the tenant's filter: nodes it has rows below
            counts = level.count[kids]
            slots = level.slot[kids]
            scores = self._centroids[depth][kids] @ node_probe
            front = slots >= 0
            if front.all():
                pool_scores.append(scores)
                pool_slots.append(slots)
                pool_sizes.append(counts)
                break
            if front.any():
                pool_scores.append(scores[front])
                pool_slots.append(slots[front])
                pool_sizes.append(counts[front])
            inner = ~front
            inner_kids, inner_counts = kids[inner], counts[inner]
            if len(inner_kids) > _MAX_BEAM or int(inner_counts.sum()) > reach:
                order = np.argsort(scores[inner])[::-1]
                width = int(np.searchsorted(np.cumsum(inner_counts[order]), reach)) + 1
                inner_kids = inner_kids[order[: min(width, _MAX_BEAM)]]
            beam = inner_kids
        if len(pool_scores) == 1:
            scores, slots, sizes = pool_scores[0], pool_slots[0], pool_sizes[0]
        else:
            scores = np.concatenate(pool_scores)
            slots = np.concatenate(pool_slots)
            sizes = np.concatenate(pool_sizes)
        order = np.argsort(scores)[::-1]
        width = int(np.searchsorted(np.cumsum(sizes[order]), budget)) + 1
        return slots[order[:width]]

    def _node_probe(self, query: Vectors, projected: Vectors) -> Vectors:
        """Return the vector that scores one query against tree nodes, from ``query @ P``."""
        if self.metric == "ip":
            return np.append(projected, np.float32(0))
        if self.metric == "cosine":
            projected = projected / np.float32(max(math.sqrt(float(query @ query)), 1e-30))
        return np.append(projected - self._mean_code, np.float32(1))

    def _select(
        self, holder: _Holder, node_probe: Vectors, budget: int
    ) -> tuple[NDArray[np.int32], Mask, Rows]:
        """Return (m, p) shortlist slots, which of them each query scans, and their sizes."""
        m = len(node_probe)
        root = holder.levels[0]
        if root.slot[0] >= 0:
            size = np.full((m, 1), holder.size, np.int64)
            return np.full((m, 1), root.slot[0], np.int32), np.ones((m, 1), np.bool_), size
        if self._flat_select:  # as _choose_lists: rank all the tenant's lists at once
            packed = holder.packed or holder.pack(self._code_width, self.config.fanout)
            scores = (node_probe @ self._nodes.T)[:, packed.nodes]
            order = np.argsort(-scores, axis=1, kind="stable")
            slots_all = packed.slots[order]
            sizes_all = packed.sizes[order]
            before = np.cumsum(sizes_all, axis=1) - sizes_all
            return slots_all, before < budget, sizes_all
        fanout = self.config.fanout
        reach = self.config.beam_widening * budget
        pool_slots: list[NDArray[np.int32]] = []
        pool_scores: list[Vectors] = []
        pool_sizes: list[Rows] = []
        beam = np.zeros((m, 1), np.int64)
        beam_ok = np.ones((m, 1), np.bool_)
        for depth in range(1, len(holder.levels)):
            level = holder.levels[depth]
            kids = (beam[:, :, None] * fanout + self._fan).reshape(m, -1)
            counts = level.count[kids]
            ok = np.repeat(beam_ok, fanout, axis=1) & (counts > 0)
            centroids = self._centroids[depth][kids]
            scores = np.matmul(centroids, node_probe[:, :, None])[:, :, 0]
            slots = level.slot[kids]
            front = ok & (slots >= 0)
            if front.any():
                pool_slots.append(np.where(front, slots, -1).astype(np.int32))
                pool_scores.append(np.where(front, scores, -np.inf).astype(np.float32))
                pool_sizes.append(np.where(front, counts, 0))
            inner = ok & (slots < 0)
            if not inner.any():
                break
            ranked = np.where(inner, scores, -np.inf)
            order = np.argsort(-ranked, axis=1, kind="stable")[:, :_MAX_BEAM]
            inner_sorted = np.take_along_axis(inner, order, axis=1)
            covered = np.where(inner_sorted, np.take_along_axis(counts, order, axis=1), 0)
            before = np.cumsum(covered, axis=1) - covered
            beam_ok = inner_sorted & (before < reach)
            width = int(beam_ok.sum(axis=1).max())
            beam = np.take_along_axis(kids, order[:, :width], axis=1)
            beam_ok = beam_ok[:, :width]
        slots_all = np.concatenate(pool_slots, axis=1)
        scores_all = np.concatenate(pool_scores, axis=1)
        sizes_all = np.concatenate(pool_sizes, axis=1)
        order = np.argsort(-scores_all, axis=1, kind="stable")
        slots_all = np.take_along_axis(slots_all, order, axis=1)
        sizes_all = np.take_along_axis(sizes_all, order, axis=1)
        before = np.cumsum(sizes_all, axis=1) - sizes_all
        picked = (slots_all >= 0) & (before < budget)
        return slots_all, picked, sizes_all

    def _scan_probes(self, queries: Vectors) -> Vectors:
        """Return the vectors that score queries against codes (same ranking as the metric)."""
        # cosine: P^T q ranks codes like P^T q/|q| would, so the query needs no normalising
        projected: Vectors = queries @ self._projection
        if self.metric == "l2":
            ones = np.ones((len(queries), 1), np.float32)
            projected = np.hstack([projected - self._mean_code, ones])
        probes: Vectors = projected * self._code_step
        return probes

    def _node_probes(self, queries: Vectors) -> Vectors:
        """Return the vectors that score queries against tree nodes (centroid + bias column)."""
        if self.metric == "cosine":
            norms = np.linalg.norm(queries, axis=1, keepdims=True)
            queries = queries / np.maximum(norms, np.float32(1e-30))
        projected = queries @ self._projection
        if self.metric == "ip":
            return np.hstack([projected, np.zeros((len(queries), 1), np.float32)])
        ones = np.ones((len(queries), 1), np.float32)
        return np.hstack([projected - self._mean_code, ones]).astype(np.float32)

    def _exact_top_k(
        self, queries: Vectors, candidates: Rows, k: int, vectors: NDArray[Any], fast: bool
    ) -> tuple[Vectors, Rows]:
        """Return the exact (m, k) best internal scores and rows among per-query candidates.

        ``candidates`` lists valid rows first, -1 after (the faiss kernels stop at the first -1).
        """
        m, count = candidates.shape
        if not fast:
            return _top_k(self._exact(queries, candidates, vectors), candidates, k)
        values = np.empty((m, k), np.float32)
        rows = np.empty((m, k), np.int64)
        ptr = _kernels.swig_ptr
        subset = np.ascontiguousarray(candidates)
        self._kernel(
            ptr(queries), ptr(vectors), ptr(subset), self.dim, m, len(vectors), count, k,
            ptr(values), ptr(rows), count,
        )  # fmt: skip
        values[rows < 0] = np.inf if self.metric == "l2" else -np.inf
        if self.metric == "l2":
            return -values, rows
        if self.metric == "cosine":  # fast: every row has unit length
            values /= np.maximum(np.sqrt(np.einsum("md,md->m", queries, queries)), 1e-30)[:, None]
        return values, rows

    def _exact(self, queries: Vectors, candidates: Rows, vectors: NDArray[Any]) -> Vectors:
        """Return exact internal scores (higher is better) of candidate rows; -inf where row -1."""
        valid = candidates >= 0
        block = vectors[np.where(valid, candidates, 0)].astype(np.float32, copy=False)
        dots = np.matmul(block, queries[:, :, None])[:, :, 0]
        if self.metric == "ip":
            scores = dots
        else:
            squares = np.einsum("mcd,mcd->mc", block, block)
            if self.metric == "cosine":
                query_norms = np.linalg.norm(queries, axis=1, keepdims=True)
                scores = dots / np.maximum(query_norms * np.sqrt(squares), np.float32(1e-30))
            else:
                query_squares = np.einsum("md,md->m", queries, queries)[:, None]
                scores = 2 * dots - squares - query_squares
        return np.where(valid, scores, -np.inf).astype(np.float32)

    # --- tuning --------------------------------------------------------------------------------

    def tune(
        self,
        vectors: object,
        *,
        target: float = 0.95,
        margin: float = _TUNE_MARGIN,
        k: int = 10,
        seed: int = 0,
        tenants_per_bucket: int = _TUNE_TENANTS,
        queries_per_tenant: int = _TUNE_QUERIES,
    ) -> dict[str, Any]:
        """Choose the scan budget and rerank factor by measured recall; return the record.

        Tenants are split by size into thirds (small / medium / large); up to
        ``tenants_per_bucket`` of each, spread over its sizes, are asked ``queries_per_tenant``
        held-out queries: stored rows drawn at random from the whole index, each left out of its
        own answer. Their exact tenant-scoped top ``k`` (numpy) is compared with the index's
        answers at every setting of a small grid (minimum codes, share of the tenant's rows,
        rerank factor). The cheapest setting, by expected cost of a query of a tenant drawn
        uniformly, whose recall@k in every bucket is at least ``target`` plus ``margin`` plus two
        standard errors is kept in :attr:`config`; if none is, the one with the best such lower bound. The record
        (setting, per-bucket recall, sample sizes) is :attr:`tuning`, saved with the index.
        """
        full = vectors if isinstance(vectors, np.ndarray) else np.asarray(vectors)
        names = [n for n, h in self._tenant_ids.items() if self._holders[h].size]
        live = np.flatnonzero(self._first >= 0)
        if not names or len(live) <= k + 1:
            return {}
        sizes = np.asarray([self._holders[self._tenant_ids[n]].size for n in names], np.int64)
        order = np.lexsort((np.asarray(names), sizes))
        grid = [
            (low, share, factor)
            for low in _TUNE_MINS
            for share in _TUNE_FRACTIONS
            for factor in _TUNE_RERANKS
        ]
        budgets = np.asarray(
            [[_budget(int(size), low, share) for size in sizes.tolist()] for low, share, _ in grid]
        )  # (settings, tenants)
        depths = np.asarray(
            [_rerank_cost_depth(budgets[i], k, f) for i, (_, _, f) in enumerate(grid)]
        )
        partial = budgets < sizes[None, :]
        costs = (budgets + _RERANK_COST * depths + _SELECT_COST * partial).mean(axis=1)
        rng = np.random.default_rng(seed)
        original = self.config
        bucket_names = ("small", "medium", "large")
        # many small searches: one thread each is several times faster than a contended pool
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        limits = threadpool_limits(limits=1, user_api="blas")
        # per bucket, per setting: the per-query recalls of its sample tenants
        recalls: list[list[list[NDArray[np.float64]]]] = []
        sampled: list[int] = []
        try:
            for part in np.array_split(order, 3):
                per_setting: list[list[NDArray[np.float64]]] = [[] for _ in grid]
                picks = (
                    np.unique(
                        part[
                            np.linspace(0, len(part) - 1, min(len(part), tenants_per_bucket))
                            .round()
                            .astype(np.int64)
                        ]
                    )
                    if len(part)
                    else np.zeros(0, np.int64)
                )
                sampled.append(len(picks))
                for t in picks.tolist():
                    name = names[t]
                    query_rows = np.sort(rng.choice(live, size=min(queries_per_tenant, len(live))))
                    queries = np.ascontiguousarray(full[query_rows], dtype=np.float32)
                    truth = self._tune_truth(queries, query_rows, self.tenant_rows(name), full, k)
                    results: dict[tuple[int, float], NDArray[np.float64]] = {}
                    for i, (_, _, factor) in enumerate(grid):
                        key = (int(budgets[i, t]), factor)
                        if key not in results:
                            self.config = replace(original, rerank_factor=factor)
                            _, rows = self.search(
                                queries, k + 1, name, vectors=full, candidates=key[0]
                            )
                            results[key] = _recall_without(rows, query_rows, truth, k)
                        per_setting[i].append(results[key])
                recalls.append(per_setting)
        finally:
            self.config = original
            limits.restore_original_limits()
            faiss.omp_set_num_threads(threads)
        bounds = np.full((len(grid), len(recalls)), np.inf)
        means = np.full((len(grid), len(recalls)), np.nan)
        for b, per_setting in enumerate(recalls):
            for i, parts in enumerate(per_setting):
                if parts:
                    values = np.concatenate(parts)
                    means[i, b] = values.mean()
                    error = values.std(ddof=1) / math.sqrt(len(values)) if len(values) > 1 else 0.0
                    bounds[i, b] = means[i, b] - 2.0 * error
        worst = bounds.min(axis=1)
        # every setting's (min codes, share, rerank, relative cost, lower bound): for diagnostics
        self._tune_grid = [
            (*setting, float(costs[i] / costs.max()), float(worst[i]))
            for i, setting in enumerate(grid)
        ]
        passing = np.flatnonzero(worst >= target + margin)
        if len(passing):
            best = int(passing[np.lexsort((-worst[passing], costs[passing]))[0]])
        else:
            best = int(np.argmax(worst))
        low, share, factor = grid[best]
        self.config = replace(
            original, min_candidates=low, candidate_fraction=share, rerank_factor=factor
        )
        self.tuning = {
            "min_candidates": low,
            "candidate_fraction": share,
            "rerank_factor": factor,
            "target": target,
            "margin": f"{margin:g} + two standard errors",
            "meets_target": bool(len(passing)),
            "recall_at_10": {
                bucket_names[b]: round(float(means[best, b]), 4)
                for b in range(len(recalls))
                if not np.isnan(means[best, b])
            },
            "recall_lower_bound": round(float(worst[best]), 4),
            "relative_cost": round(float(costs[best] / costs.max()), 4),
            "sample_tenants": dict(zip(bucket_names, sampled, strict=False)),
            "queries_per_tenant": queries_per_tenant,
            "settings_tried": len(grid),
        }
        return self.tuning

    def _tune_truth(
        self, queries: Vectors, query_rows: Rows, rows: Rows, full: NDArray[Any], k: int
    ) -> Rows:
        """Return the exact top ``k`` of ``rows`` per query, the query's own row left out."""
        best_scores = np.full((len(queries), 0), -np.inf, np.float32)
        best_rows = np.zeros((len(queries), 0), np.int64)
        prepared = _prepared(queries, self.metric) if self.metric == "cosine" else queries
        for start in range(0, len(rows), _CHUNK_ROWS):
            block_rows = rows[start : start + _CHUNK_ROWS]
            block = np.asarray(full[block_rows], dtype=np.float32)
            if self.metric == "cosine":
                block = _prepared(block, "cosine")
            scores = prepared @ block.T
            if self.metric == "l2":
                scores = 2 * scores - np.einsum("nd,nd->n", block, block)[None, :]
            scores[block_rows[None, :] == query_rows[:, None]] = -np.inf
            best_scores = np.hstack([best_scores, scores])
            best_rows = np.hstack([best_rows, np.broadcast_to(block_rows, scores.shape)])
            if best_scores.shape[1] > k:
                keep = np.argpartition(-best_scores, k - 1, axis=1)[:, :k]
                best_scores = np.take_along_axis(best_scores, keep, axis=1)
                best_rows = np.take_along_axis(best_rows, keep, axis=1)
        return np.where(np.isfinite(best_scores), best_rows, -1)

    # --- persistence ---------------------------------------------------------------------------

    def save(self, directory: Path) -> None:
        """Write the index into ``directory`` (existing and empty), every file fsynced."""
        directory = Path(directory)
        if not directory.is_dir():
            raise FileNotFoundError(f"{directory} is not a directory")
        if any(directory.iterdir()):
            raise FileExistsError(f"{directory} is not empty: save needs an empty directory")
        arrays: dict[str, NDArray[Any]] = {
            "projection": self._projection,
            "mean": self._mean,
            "code_low": self._code_low,
            "code_step": self._code_step,
            "leaf": self._leaf,
            "first": self._first,
            "row_end": np.asarray(self._row_end),
            "off_unit": self._off_unit,
        }
        for depth, centroids in enumerate(self._centroids):
            arrays[f"centroids_{depth}"] = centroids
        shared_rows = np.fromiter(self._more.keys(), np.int64, len(self._more))
        extra_counts = np.fromiter((len(v) for v in self._more.values()), np.int64, len(self._more))
        arrays["shared_rows"] = shared_rows
        arrays["shared_counts"] = extra_counts
        arrays["shared_holders"] = np.fromiter(
            (h for extra in self._more.values() for h in extra), np.int64, int(extra_counts.sum())
        )
        # every shortlist: (holder, slot, level, node, size), rows and codes concatenated
        table: list[tuple[int, int, int, int, int]] = []
        row_blocks: list[Rows] = []
        code_blocks: list[Codes] = []
        for hid, holder in enumerate(self._holders):
            for depth, level in enumerate(holder.levels):
                for node in np.flatnonzero(level.slot >= 0).tolist():
                    slot = int(level.slot[node])
                    shortlist = holder.get(slot)
                    table.append((hid, slot, depth, node, shortlist.size))
                    row_blocks.append(shortlist.live_rows())
                    code_blocks.append(shortlist.live_codes())
        arrays["lists"] = np.asarray(table, np.int64).reshape(-1, 5)
        arrays["list_rows"] = np.concatenate(row_blocks) if row_blocks else np.zeros(0, np.int64)
        arrays["list_codes"] = (
            np.concatenate(code_blocks)
            if code_blocks
            else np.zeros((0, self._code_width), np.uint8)
        )
        arrays["slot_counts"] = np.asarray([len(h.lists) for h in self._holders], np.int64)
        meta = {
            "format": FORMAT_VERSION,
            "metric": self.metric,
            "dim": self.dim,
            "config": asdict(self.config),
            "tenants": self._tenant_names,
            "tuning": self.tuning,
        }
        _write_synced(
            directory / "arrays.npz", lambda out: np.savez(out, **cast(dict[str, Any], arrays))
        )
        _write_synced(directory / "meta.json", lambda out: out.write(json.dumps(meta).encode()))
        _fsync(directory)

    @classmethod
    def load(cls, directory: Path) -> TenantIndex:
        """Return the index saved in ``directory``."""
        directory = Path(directory)
        meta = json.loads((directory / "meta.json").read_text())
        if meta.get("format") != FORMAT_VERSION:
            raise ValueError(f"unknown tenant index format {meta.get('format')!r} in {directory}")
        config = TenancyConfig(**meta["config"])
        with np.load(directory / "arrays.npz") as data:
            arrays = {name: data[name] for name in data.files}
        centroids = [arrays[f"centroids_{depth}"] for depth in range(config.depth + 1)]
        index = cls(
            config,
            meta["metric"],
            int(meta["dim"]),
            arrays["projection"],
            arrays["mean"],
            centroids,
            arrays["code_low"],
            arrays["code_step"],
        )
        index._leaf = arrays["leaf"].astype(np.int64)
        index._row_end = int(arrays["row_end"])
        index._off_unit = arrays["off_unit"].astype(np.bool_)
        index._first = arrays["first"].astype(np.int32)
        index._non_unit = int(np.count_nonzero(index._off_unit))
        index._shared = np.zeros(len(index._first), np.bool_)
        names: list[str] = meta["tenants"]
        index._tenant_names = names
        index._tenant_ids = {name: hid for hid, name in enumerate(names) if hid != UNOWNED}
        index._holders = [_Holder() for _ in names]
        for holder, slots in zip(index._holders, arrays["slot_counts"].tolist(), strict=True):
            holder.lists = [None] * slots
        offsets = np.concatenate([[0], np.cumsum(arrays["lists"][:, 4])])
        list_rows, list_codes = arrays["list_rows"], arrays["list_codes"]
        if list_codes.dtype == np.int8:  # saved as int8 levels -128..127: shift to 0..255
            list_codes = list_codes.view(np.uint8) ^ np.uint8(0x80)
        for i, (hid, slot, depth, node, size) in enumerate(arrays["lists"].tolist()):
            holder = index._holders[hid]
            span = slice(int(offsets[i]), int(offsets[i]) + size)
            holder.lists[slot] = _Shortlist(list_rows[span].copy(), list_codes[span].copy())
            holder.level(depth, config.fanout).slot[node] = slot
            index._count_up(holder, depth, np.asarray([node], np.int64), size, inclusive=True)
            holder.size += size
        for holder in index._holders:
            holder.free = [i for i, s in enumerate(holder.lists) if s is None][::-1]
        starts = np.concatenate([[0], np.cumsum(arrays["shared_counts"])])
        extra = arrays["shared_holders"].tolist()
        for i, row in enumerate(arrays["shared_rows"].tolist()):
            index._more[row] = extra[int(starts[i]) : int(starts[i + 1])]
        index._shared[arrays["shared_rows"]] = True
        index.tuning = meta.get("tuning")
        return index

    # --- internals: the tree -------------------------------------------------------------------

    def _encode(self, vectors: Vectors) -> tuple[Codes, Rows]:
        """Return the codes and the leaves of a block of vectors."""
        prepared = _prepared(vectors, self.metric)
        centred = prepared - self._mean
        reduced = (centred @ self._projection).astype(np.float32)
        codes = _quantize(
            _with_bias(reduced, centred, self.metric), self._code_low, self._code_step
        )
        bias = np.zeros if self.metric == "ip" else np.ones
        probe = np.hstack([reduced, bias((len(reduced), 1), np.float32)])
        return codes, _route(probe, self._centroids, self.config.fanout)

    def _ancestors(self, rows: Rows, depth: int) -> Rows:
        """Return each row's ancestor at ``depth`` (an index within that level)."""
        span = self.config.fanout ** (self.config.depth - depth)
        ancestors: Rows = self._leaf[rows] // span
        return ancestors

    def _add(self, hid: int, rows: Rows, codes: Codes) -> None:
        """Put rows the holder does not hold yet into its sub-tree, splitting full shortlists."""
        holder = self._holders[hid]
        holder.packed = None  # shortlists grow in place
        fanout, depth_max = self.config.fanout, self.config.depth
        pending = np.arange(len(rows))
        overfull: list[tuple[int, int]] = []
        for depth in range(depth_max + 1):
            if len(pending) == 0:
                break
            level = holder.level(depth, fanout)
            nodes = self._ancestors(rows[pending], depth)
            slots = level.slot[nodes]
            counts = level.count[nodes]
            lands = (slots >= 0) | (counts == 0)
            for node, positions in _groups(nodes[lands], pending[lands]):
                slot = int(level.slot[node])
                if slot < 0:
                    fresh = _Shortlist(rows[positions].copy(), codes[positions].copy())
                    slot = holder.add_list(fresh)
                    level.slot[node] = slot
                else:
                    holder.get(slot).append(rows[positions], codes[positions])
                level.count[node] += len(positions)
                if level.count[node] > self.config.shortlist_cap and depth < depth_max:
                    overfull.append((depth, node))
            through = nodes[~lands]
            if len(through):
                np.add.at(level.count, through, 1)
            pending = pending[~lands]
        holder.size += len(rows)
        for depth, node in overfull:
            self._split(holder, depth, node)

    def _split(self, holder: _Holder, depth: int, node: int) -> None:
        """Turn an over-full shortlist into shortlists at its children (recursively)."""
        level = holder.levels[depth]
        shortlist = holder.drop_list(int(level.slot[node]))
        level.slot[node] = -1
        rows, codes = shortlist.live_rows(), shortlist.live_codes()
        child_level = holder.level(depth + 1, self.config.fanout)
        children = self._ancestors(rows, depth + 1)
        for child, positions in _groups(children, np.arange(len(rows))):
            slot = holder.add_list(_Shortlist(rows[positions].copy(), codes[positions].copy()))
            child_level.slot[child] = slot
            child_level.count[child] = len(positions)
            if len(positions) > self.config.shortlist_cap and depth + 1 < self.config.depth:
                self._split(holder, depth + 1, child)

    def _frontier(self, holder: _Holder, rows: Rows) -> tuple[Rows, Rows]:
        """Return, per row the holder holds, the level and node of the shortlist holding it."""
        found_depth = np.full(len(rows), -1, np.int64)
        found_node = np.full(len(rows), -1, np.int64)
        open_ = np.ones(len(rows), np.bool_)
        for depth, level in enumerate(holder.levels):
            nodes = self._ancestors(rows, depth)
            here = open_ & (level.slot[nodes] >= 0)
            found_depth[here] = depth
            found_node[here] = nodes[here]
            open_ &= ~here
            if not open_.any():
                break
        if open_.any():
            raise AssertionError("a row was not found in its holder's sub-tree")
        return found_depth, found_node

    def _remove(self, hid: int, rows: Rows) -> tuple[Rows, Codes]:
        """Take rows the holder holds out of its sub-tree; return them and their codes."""
        holder = self._holders[hid]
        holder.packed = None  # shortlists shrink in place
        depths, nodes = self._frontier(holder, rows)
        removed_rows: list[Rows] = []
        removed_codes: list[Codes] = []
        key = depths * (self.config.fanout**self.config.depth + 1) + nodes
        for _, positions in _groups(key, np.arange(len(rows))):
            depth, node = int(depths[positions[0]]), int(nodes[positions[0]])
            level = holder.levels[depth]
            slot = int(level.slot[node])
            shortlist = holder.get(slot)
            gone_rows, gone_codes = shortlist.remove(rows[positions])
            removed_rows.append(gone_rows)
            removed_codes.append(gone_codes)
            level.count[node] -= len(gone_rows)
            self._count_up(holder, depth, np.asarray([node]), -len(gone_rows), inclusive=False)
            if shortlist.size == 0:
                holder.drop_list(slot)
                level.slot[node] = -1
        holder.size -= len(rows)
        self._merge_small(holder, rows, depths)
        self._trim(holder)
        return np.concatenate(removed_rows), np.concatenate(removed_codes)

    def _count_up(
        self, holder: _Holder, depth: int, nodes: Rows, amount: int, *, inclusive: bool
    ) -> None:
        """Add ``amount`` to the counts of the nodes' ancestors (and the nodes if inclusive)."""
        fanout = self.config.fanout
        top = depth if inclusive else depth - 1
        for above in range(top, -1, -1):
            level = holder.level(above, fanout)
            np.add.at(level.count, nodes // fanout ** (depth - above), amount)

    def _merge_small(self, holder: _Holder, rows: Rows, depths: Rows) -> None:
        """Collapse internal nodes on the rows' paths that now hold few of the holder's rows."""
        threshold = self.config.merge_threshold
        for depth in range(int(depths.max()) if len(depths) else 0):
            level = holder.levels[depth]
            nodes = np.unique(self._ancestors(rows[depths > depth], depth))
            count = level.count[nodes]
            small = nodes[(level.slot[nodes] < 0) & (count > 0) & (count <= threshold)]
            for node in small.tolist():
                self._merge(holder, depth, node)

    def _merge(self, holder: _Holder, depth: int, node: int) -> None:
        """Replace the holder's sub-tree below ``node`` by one shortlist at ``node``."""
        fanout = self.config.fanout
        rows: list[Rows] = []
        codes: list[Codes] = []
        for below in range(depth + 1, len(holder.levels)):
            level = holder.levels[below]
            span = fanout ** (below - depth)
            window = slice(node * span, (node + 1) * span)
            for slot in level.slot[window][level.slot[window] >= 0].tolist():
                shortlist = holder.drop_list(slot)
                rows.append(shortlist.live_rows())
                codes.append(shortlist.live_codes())
            level.slot[window] = -1
            level.count[window] = 0
        level = holder.levels[depth]
        if level.count[node] == 0 or not rows:
            level.count[node] = 0
            return
        merged = _Shortlist(np.concatenate(rows), np.concatenate(codes))
        level.slot[node] = holder.add_list(merged)

    def _trim(self, holder: _Holder) -> None:
        """Drop per-level arrays below the holder's deepest node (keeps small tenants small)."""
        while len(holder.levels) > 1 and not holder.levels[-1].count.any():
            holder.levels.pop()

    def _codes_from(self, hid: int, rows: Rows) -> Codes:
        """Return the codes of rows the holder holds."""
        holder = self._holders[hid]
        depths, nodes = self._frontier(holder, rows)
        codes = np.empty((len(rows), self._code_width), np.uint8)
        key = depths * (self.config.fanout**self.config.depth + 1) + nodes
        for _, positions in _groups(key, np.arange(len(rows))):
            level = holder.levels[int(depths[positions[0]])]
            shortlist = holder.get(int(level.slot[int(nodes[positions[0]])]))
            codes[positions] = shortlist.codes_of(rows[positions])
        return codes

    # --- internals: who holds which row --------------------------------------------------------

    def _tenant_id(self, tenant: str, *, create: bool) -> int:
        hid = self._tenant_ids.get(tenant)
        if hid is None:
            if not isinstance(tenant, str) or not tenant:
                raise ValueError(f"tenant {tenant!r} is not allowed: use a non-empty string")
            if not create:
                return -1
            hid = len(self._holders)
            self._tenant_ids[tenant] = hid
            self._tenant_names.append(tenant)
            self._holders.append(_Holder())
        return hid

    def _pairs(self, row_tenants: Sequence[Sequence[str]]) -> tuple[Rows, Rows]:
        """Return (position, holder) for every (row, tenant) of an insert; no tenant: unowned."""
        ids = self._tenant_ids
        for name in {name for access in row_tenants for name in access}:
            if name not in ids:
                self._tenant_id(name, create=True)
        counts = np.fromiter((max(len(set(a)), 1) for a in row_tenants), np.int64, len(row_tenants))
        holders = np.fromiter(
            (
                ids[name] if name else UNOWNED
                for access in row_tenants
                for name in _unique_or_unowned(access)
            ),
            np.int64,
            int(counts.sum()),
        )
        return np.repeat(np.arange(len(row_tenants)), counts), holders

    def _grow(self, rows: int) -> None:
        if rows <= len(self._first):
            return
        capacity = max(rows, 2 * len(self._first))
        extra = capacity - len(self._first)
        self._leaf = np.concatenate([self._leaf, np.full(extra, -1, np.int64)])
        self._first = np.concatenate([self._first, np.full(extra, -1, np.int32)])
        self._shared = np.concatenate([self._shared, np.zeros(extra, np.bool_)])
        self._off_unit = np.concatenate([self._off_unit, np.zeros(extra, np.bool_)])

    def _known(self, rows: object) -> Rows:
        """Return the distinct rows given that are in the index."""
        row_ids = np.unique(np.asarray(rows, dtype=np.int64).reshape(-1))
        row_ids = row_ids[(row_ids >= 0) & (row_ids < len(self._first))]
        return row_ids[self._first[row_ids] >= 0]

    def _held_by(self, rows: Rows, hid: int) -> Mask:
        held: Mask = self._first[rows] == hid
        for i in np.flatnonzero(self._shared[rows] & ~held).tolist():
            held[i] = hid in self._more[int(rows[i])]
        return held

    def _holders_of(self, rows: Rows) -> tuple[Rows, Rows]:
        """Return (row, holder) pairs for every holder of the given rows."""
        shared = rows[self._shared[rows]].tolist()
        extra_rows = [row for row in shared for _ in self._more[row]]
        extra_holders = [h for row in shared for h in self._more[row]]
        pair_rows = np.concatenate([rows, np.asarray(extra_rows, np.int64)])
        pair_holders = np.concatenate(
            [self._first[rows].astype(np.int64), np.asarray(extra_holders, np.int64)]
        )
        return pair_rows, pair_holders

    def _register(self, rows: Rows, holders: Rows) -> None:
        """Record that ``holders[i]`` now holds ``rows[i]`` (rows may repeat)."""
        first = self._first[rows]
        open_ = first < 0
        # the first pair of each row fills an open slot; any other pair is an extra holder
        _, first_pair = np.unique(rows, return_index=True)
        takes = np.zeros(len(rows), np.bool_)
        takes[first_pair] = open_[first_pair]
        self._first[rows[takes]] = holders[takes].astype(np.int32)
        for row, hid in zip(rows[~takes].tolist(), holders[~takes].tolist(), strict=True):
            self._more.setdefault(row, []).append(hid)
        self._shared[rows[~takes]] = True

    def _unregister(self, rows: Rows, hid: int) -> Mask:
        """Record that ``hid`` no longer holds ``rows``; return which rows no one holds now."""
        shared = self._shared[rows]
        orphans = ~shared
        self._first[rows[orphans]] = -1
        for row in rows[shared].tolist():
            extra = self._more[row]
            if self._first[row] == hid:
                self._first[row] = extra.pop()
            else:
                extra.remove(hid)
            if not extra:
                del self._more[row]
                self._shared[row] = False
        return orphans


# --- helpers -----------------------------------------------------------------------------------


def _budget(size: int, low: int, share: float) -> int:
    """Return the codes a query scans for a tenant of ``size`` rows (as :meth:`search` does)."""
    if size <= low:
        return size
    budget = max(low, math.ceil(round(share * size, 6)))
    return size if budget * _WHOLE_SCAN_RATIO >= size else budget


def _rerank_cost_depth(scanned: Rows, k: int, factor: float) -> NDArray[np.float64]:
    """Return the exact re-scores of queries scanning ``scanned`` codes (as the search does)."""
    depth = np.ceil(k * np.minimum(factor, _RERANK_FLOOR + scanned / 512))
    capped: NDArray[np.float64] = np.minimum(np.maximum(k, depth), scanned).astype(np.float64)
    return capped


def _recall_without(found: Rows, query_rows: Rows, truth: Rows, k: int) -> NDArray[np.float64]:
    """Return per-query recall@k of ``found`` (k + 1 columns) with each query's own row left out."""
    other = found != query_rows[:, None]
    first = np.argsort(~other, axis=1, kind="stable")[:, :k]
    kept = np.where(
        np.take_along_axis(other, first, axis=1), np.take_along_axis(found, first, 1), -1
    )
    valid = truth >= 0
    hits = (kept[:, :, None] == truth[:, None, :]) & valid[:, None, :] & (kept[:, :, None] >= 0)
    wanted = np.maximum(valid.sum(axis=1), 1)
    recall: NDArray[np.float64] = (hits.any(axis=1).sum(axis=1) / wanted).astype(np.float64)
    return recall


def _as_matrix(values: object, dim: int | None) -> Vectors:
    if (
        isinstance(values, np.ndarray)
        and values.dtype == np.float32
        and values.ndim == 2
        and values.flags.c_contiguous
        and (dim is None or values.shape[1] == dim)
    ):
        return values
    matrix = np.asarray(values, dtype=np.float32)
    if matrix.ndim == 1:
        matrix = matrix.reshape(1, -1)
    if matrix.ndim != 2 or (dim is not None and matrix.shape[1] != dim):
        wanted = f"(n, {dim})" if dim is not None else "(n, d)"
        raise ValueError(f"expected a {wanted} float matrix, got shape {matrix.shape}")
    return np.ascontiguousarray(matrix)


def _prepared(vectors: Vectors, metric: str) -> Vectors:
    """Return the vectors as the tree sees them (unit length for cosine)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if metric != "cosine":
        return vectors
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit: Vectors = (vectors / np.maximum(norms, np.float32(1e-30))).astype(np.float32)
    return unit


def _fit_projection(sample: Vectors, reduced_dim: int, metric: str) -> tuple[Vectors, Vectors]:
    """Return a (d, reduced_dim) PCA projection of the sample and its mean."""
    dim = sample.shape[1]
    mean = sample.mean(axis=0) if len(sample) else np.zeros(dim)
    if reduced_dim >= dim or len(sample) < 2:
        projection = np.eye(dim, reduced_dim)
    else:
        centred = (sample - mean).astype(np.float64)
        covariance = centred.T @ centred / len(sample)
        _, eigenvectors = np.linalg.eigh(covariance)
        projection = eigenvectors[:, ::-1][:, :reduced_dim]
    return projection.astype(np.float32), np.asarray(mean, np.float32)


def _with_bias(reduced: Vectors, centred: Vectors, metric: str) -> Vectors:
    """Return the reduced coordinates, with l2's bias column -|x - mean|^2 / 2 appended."""
    if metric != "l2":
        return reduced
    bias = -0.5 * np.einsum("nd,nd->n", centred, centred)[:, None]
    return np.hstack([reduced, bias]).astype(np.float32)


def _fit_quantizer(sample: Vectors) -> tuple[Vectors, Vectors]:
    """Return per-dimension (low, step) mapping the sample's range onto 256 one-byte levels."""
    if len(sample) == 0:
        return np.zeros(sample.shape[1], np.float32), np.ones(sample.shape[1], np.float32)
    # the extreme 0.05% on each side are clipped rather than allowed to stretch the scale
    low, high = np.quantile(sample, [0.0005, 0.9995], axis=0)
    span = np.maximum(high - low, 1e-12)
    return low.astype(np.float32), (span / 255).astype(np.float32)


def _quantize(values: Vectors, low: Vectors, step: Vectors) -> Codes:
    levels = np.rint((values - low) / step)
    codes: Codes = np.clip(levels, 0, 255).astype(np.uint8)
    return codes


def _augment(centres: NDArray[Any], metric: str) -> Vectors:
    """Return centroids with the bias column that turns a dot product into their ranking."""
    if metric == "ip":
        bias = np.zeros((len(centres), 1))
    else:  # nearest centroid: z.c - |c|^2 / 2 ranks as -|z - c|^2
        bias = -0.5 * np.einsum("nd,nd->n", centres, centres)[:, None]
    return np.hstack([centres, bias]).astype(np.float32)


def _train_tree(
    codes: Vectors, config: TenancyConfig, metric: str, seed: int, faiss: Any, report: Progress
) -> list[Vectors]:
    """Return the per-level centroids of a hierarchical k-means over the sample codes."""
    width = codes.shape[1]
    fanout = config.fanout
    mean = codes.mean(axis=0, keepdims=True) if len(codes) else np.zeros((1, width))
    centroids = [_augment(mean, metric)]
    assignment = np.zeros(len(codes), np.int64)  # each sample point's node at the current level
    probe_bias = np.zeros if metric == "ip" else np.ones
    probe = np.hstack([codes, probe_bias((len(codes), 1), np.float32)]).astype(np.float32)
    for depth in range(config.depth):
        parents = fanout**depth
        level = np.empty((parents * fanout, width), np.float32)
        for parent, members in _groups_full(assignment, parents):
            level[parent * fanout : (parent + 1) * fanout] = _kmeans(
                codes[members], fanout, centroids[depth][parent, :width], seed + parent, faiss
            )
        centroids.append(_augment(level, metric))
        assignment = _route_level(probe, assignment, centroids[depth + 1], fanout)
        report("tree", (depth + 1) / config.depth)
    return centroids


def _kmeans(points: Vectors, count: int, fallback: Vectors, seed: int, faiss: Any) -> Vectors:
    """Return ``count`` centroids of the points (fewer points: repeat them, then the fallback)."""
    distinct = np.unique(points, axis=0) if len(points) <= 4 * count else points
    if len(distinct) <= count:
        fill = np.repeat(fallback[None, :], count - len(distinct), axis=0)
        return np.vstack([distinct, fill]).astype(np.float32)
    kmeans = faiss.Kmeans(
        points.shape[1],
        count,
        niter=20,
        seed=seed,
        max_points_per_centroid=256,
        min_points_per_centroid=1,
        verbose=False,
    )
    kmeans.train(np.ascontiguousarray(points, dtype=np.float32))
    result: Vectors = kmeans.centroids.astype(np.float32)
    return result


def _route_level(probe: Vectors, nodes: Rows, children: Vectors, fanout: int) -> Rows:
    """Return each point's best child of its current node (argmax: first best on ties)."""
    chosen = np.empty(len(nodes), np.int64)
    for parent, members in _groups_full(nodes, int(nodes.max()) + 1 if len(nodes) else 0):
        block = children[parent * fanout : (parent + 1) * fanout]
        chosen[members] = parent * fanout + np.argmax(probe[members] @ block.T, axis=1)
    return chosen


def _route(probe: Vectors, centroids: list[Vectors], fanout: int) -> Rows:
    """Return each point's leaf, walking from the root to the best child at every level."""
    nodes = np.zeros(len(probe), np.int64)
    for depth in range(1, len(centroids)):
        nodes = _route_level(probe, nodes, centroids[depth], fanout)
    return nodes


def _groups(keys: Rows, positions: NDArray[np.int64]) -> Iterable[tuple[int, Rows]]:
    """Yield (key, positions with that key) for each distinct key, in key order."""
    if len(keys) == 0:
        return
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    cuts = np.flatnonzero(sorted_keys[1:] != sorted_keys[:-1]) + 1
    starts = np.concatenate([[0], cuts])
    ends = np.concatenate([cuts, [len(keys)]])
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        yield int(sorted_keys[start]), positions[order[start:end]]


def _groups_full(keys: Rows, count: int) -> Iterable[tuple[int, Rows]]:
    """Yield (key, positions) for every key in range(count), empty groups included."""
    order = np.argsort(keys, kind="stable")
    bounds = np.searchsorted(keys[order], np.arange(count + 1))
    for key in range(count):
        yield key, order[bounds[key] : bounds[key + 1]]


def _unique_or_unowned(access: Sequence[str]) -> Iterable[str]:
    return dict.fromkeys(access) if access else ("",)


def _rows_of(lists: Sequence[_Shortlist]) -> Rows:
    return np.concatenate([s.live_rows() for s in lists])


def _codes_as_floats(lists: Sequence[_Shortlist]) -> Vectors:
    """Return the lists' codes, one after the other, as float32 (one pass: copy and convert)."""
    if len(lists) == 1:
        return lists[0].live_codes().astype(np.float32)
    return np.concatenate([s.live_codes() for s in lists], dtype=np.float32)


def _chosen_by_slot(pool: NDArray[np.int32], picked: Mask, slots: NDArray[np.int32]) -> Mask:
    """Return (m, len(slots)): whether each query scans each of the (sorted) slots."""
    chosen = np.zeros((len(pool), len(slots)), np.bool_)
    query, column = np.nonzero(picked)
    chosen[query, np.searchsorted(slots, pool[query, column])] = True
    return chosen


def _best_columns(approx: Vectors, rows: Rows, depth: Rows) -> Rows:
    """Return per query the rows of its ``depth`` best approximate scores, best first.

    Missing entries (score -inf, or past the query's depth) are -1 and come last, as the faiss
    kernels want.
    """
    count = min(int(depth.max()), approx.shape[1])
    if approx.shape[1] > count:
        best = np.argpartition(-approx, count - 1, axis=1)[:, :count]
    else:
        best = np.broadcast_to(np.arange(approx.shape[1]), approx.shape)
    picked = np.take_along_axis(approx, best, axis=1)
    order = np.argsort(-picked, axis=1, kind="stable")
    best = np.take_along_axis(best, order, axis=1)
    keep = np.isfinite(np.take_along_axis(picked, order, axis=1))
    keep &= np.arange(count) < depth[:, None]
    return np.where(keep, rows[best], -1)


def _top_k(scores: Vectors, rows: Rows, k: int) -> tuple[Vectors, Rows]:
    """Return the ``k`` best (higher is better) per query, ties by row, -inf / -1 padded."""
    m = len(scores)
    out_scores = np.full((m, k), -np.inf, np.float32)
    out_rows = np.full((m, k), -1, np.int64)
    order = np.lexsort((rows, -scores), axis=1)[:, :k]
    width = order.shape[1]
    picked = np.take_along_axis(scores, order, axis=1)
    found = np.isfinite(picked)
    out_scores[:, :width] = np.where(found, picked, -np.inf)
    out_rows[:, :width] = np.where(found, np.take_along_axis(rows, order, axis=1), -1)
    return out_scores, out_rows


def _write_synced(path: Path, write: Callable[[Any], object]) -> None:
    with path.open("wb") as out:
        write(out)
        out.flush()
        os.fsync(out.fileno())


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


__all__ = ["TenancyConfig", "TenantIndex", "default_config"]
