"""A collection in memory: vectors, attributes and tenant access lists over dense row numbers.

The store (SQLite) is the source of truth; this object is the searchable copy of it. Every write
commits to the store first and only then changes memory, under the collection's writer mutex, so
memory never holds a point the store could lose. Searches share a read lock and never wait for a
commit's fsync, only for the short in-memory apply that follows it.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from vecdb.engine import artefacts, planner
from vecdb.engine.attributes import AttributeTable, Mask, Rows
from vecdb.engine.errors import (
    DimensionMismatch,
    FailedPrecondition,
    InvalidArgument,
    PermissionDenied,
)
from vecdb.engine.filters import Filter, evaluate, select
from vecdb.engine.locks import ReadWriteLock
from vecdb.engine.schema import CollectionSettings, Metric, check_name
from vecdb.engine.store import PointRow, Store

if TYPE_CHECKING:
    from vecdb.engine.ann import AnnConfig, AnnIndex
    from vecdb.engine.tenancy import TenantIndex

MAX_ID_LENGTH = 512
MIN_INDEX_POINTS = 1_000
Vectors = NDArray[np.float32]


@dataclass(frozen=True)
class StoredPoint:
    """A point as read back: id, vector, attributes and tenant access list."""

    id: str
    vector: Vectors | None
    attributes: dict[str, object]
    tenants: list[str]


@dataclass
class Explain:
    """How a search was answered: the plan and what it estimated and touched."""

    plan: str
    estimated_selectivity: float
    matching_points: int
    candidates_scored: int
    detail: str = ""


@dataclass
class Hits:
    """The results of one query, best first: rows, ids and scores (l2: squared distance)."""

    rows: Rows
    ids: list[str]
    scores: NDArray[np.float32]
    explain: Explain | None = None


@dataclass
class SearchOptions:
    """Per-search knobs; None means "as the index was tuned"."""

    exact: bool = False
    ef_search: int | None = None
    nprobe: int | None = None
    rerank_factor: float | None = None


@dataclass(frozen=True)
class PreparedUpsert:
    """A validated, encoded upsert, ready to commit."""

    ids: list[str]
    vectors: Vectors
    norms: NDArray[np.float32]
    attributes: list[dict[str, object]]
    tenants: list[list[str]]
    encoded: list[tuple[str, str | None, str | None]]
    acting_tenant: str | None


@dataclass
class _Columns:
    """Row-indexed arrays, grown by doubling."""

    vectors: Vectors
    norms: NDArray[np.float32]
    alive: Mask
    ids: list[str | None] = field(default_factory=list)
    tenants: list[tuple[str, ...]] = field(default_factory=list)


class Collection:
    """One collection's searchable state, kept in step with its table in the store."""

    def __init__(
        self,
        cid: int,
        settings: CollectionSettings,
        store: Store,
        next_row: int,
        artefact_dir: Path | None = None,
    ) -> None:
        self.cid = cid
        self.artefact_dir = artefact_dir
        self.index: AnnIndex | None = None
        # the multi-tenant structure, kept in step with every write once built
        self.tenant_index: TenantIndex | None = None
        self.planner = planner.PlannerSettings()
        self._index_recall_target = 0.0
        self._shape: tuple[AnnIndex, planner.IndexShape] | None = None
        self.settings = settings
        self.store = store
        self.sequence = 0
        self._next_row = next_row
        self._rows = 0  # rows [0, _rows) exist (alive or tombstoned)
        self._live = 0
        self._write_mutex = threading.Lock()
        self._lock = ReadWriteLock()
        dim = settings.dim
        self._cols = _Columns(
            vectors=np.zeros((0, dim), np.float32),
            norms=np.zeros(0, np.float32),
            alive=np.zeros(0, np.bool_),
        )
        self._row_of: dict[str, int] = {}
        self._tenant_rows: dict[str, set[int]] = {}
        self._tenant_cache: dict[str, Rows] = {}
        self.attributes = AttributeTable(settings.schema)

    # --- properties --------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The collection's name."""
        return self.settings.name

    @property
    def dim(self) -> int:
        """The dimension of every vector."""
        return self.settings.dim

    @property
    def metric(self) -> Metric:
        """How vectors are compared."""
        return self.settings.metric

    def __len__(self) -> int:
        return self._live

    @property
    def row_count(self) -> int:
        """Rows allocated so far, tombstones included."""
        return self._rows

    def tenant_count(self) -> int:
        """Return the number of tenants with at least one point."""
        return sum(1 for rows in self._tenant_rows.values() if rows)

    # --- loading -----------------------------------------------------------------------------

    def load(self, sequence: int) -> None:
        """Fill memory from the store (on start)."""
        loaded = self.store.load_points(self.cid)
        with self._write_mutex, self._lock.write():
            self.sequence = sequence
            if len(loaded.ids) == 0:
                return
            top = int(loaded.rows[-1]) + 1
            self._grow(top)
            self._rows = top
            # read the vector file straight into the row-addressed matrix (no gather, no copy),
            # then clear the rows no live point owns (replaced or deleted points' old vectors)
            vectors = self._cols.vectors
            self.store.vector_file(self.cid, self.dim).read_into(vectors, top)
            stale = np.ones(top, np.bool_)
            stale[loaded.rows] = False
            vectors[:top][stale] = 0.0
            self._apply_upsert(
                loaded.rows,
                loaded.ids,
                None,
                row_norms(vectors[:top])[loaded.rows],
                loaded.attributes,
                loaded.tenants,
            )

    # --- validation --------------------------------------------------------------------------

    def check_vectors(self, vectors: object, what: str = "vector") -> Vectors:
        """Return ``vectors`` as a float32 (n, dim) array, or raise naming what is wrong."""
        return self._checked_vectors(vectors, what)[0]

    def _checked_vectors(
        self, vectors: object, what: str
    ) -> tuple[Vectors, NDArray[np.float32] | None]:
        """:meth:`check_vectors`, also returning the row norms when the check computed them."""
        norms: NDArray[np.float32] | None = None
        with np.errstate(over="ignore"):  # values beyond float32 become inf, refused below
            array = np.asarray(vectors, dtype=np.float32)
        if array.ndim == 1:
            array = array.reshape(1, -1)
        if array.ndim != 2 or array.shape[1] != self.dim:
            got = array.shape[-1] if array.ndim else 0
            raise DimensionMismatch(
                f"{what} dimension {got} does not match collection {self.name!r} (dim {self.dim})"
            )
        finite = np.isfinite(array).all(axis=1)
        if not finite.all():
            bad = int(np.flatnonzero(~finite)[0])
            raise InvalidArgument(
                f"{what} {bad} contains NaN or infinity: only finite values are allowed"
            )
        if self.metric is Metric.COSINE:
            norms = row_norms(array)
            zero = ~(norms > 0)
            if zero.any():
                bad = int(np.flatnonzero(zero)[0])
                raise InvalidArgument(
                    f"{what} {bad} is all zeros: cosine collections need non-zero vectors"
                )
        return np.ascontiguousarray(array), norms

    @staticmethod
    def check_ids(ids: Sequence[str]) -> list[str]:
        """Return ``ids`` as a list of valid point ids, or raise naming the bad one."""
        out = list(ids)
        # the common case checked in C-level passes; the loop below only names the bad id
        if not out or (
            set(map(type, out)) == {str}
            and min(map(len, out)) > 0
            and max(map(len, out)) <= MAX_ID_LENGTH
        ):
            return out
        for point_id in out:
            if not isinstance(point_id, str) or not 0 < len(point_id) <= MAX_ID_LENGTH:
                raise InvalidArgument(
                    f"invalid point id {point_id!r}: ids are non-empty strings of at most "
                    f"{MAX_ID_LENGTH} characters"
                )
        return out

    # --- writes ------------------------------------------------------------------------------

    def upsert(
        self,
        ids: Sequence[str],
        vectors: object,
        attributes: Sequence[Mapping[str, object]] | None = None,
        tenants: Sequence[Sequence[str]] | None = None,
        *,
        acting_tenant: str | None = None,
    ) -> tuple[int, int]:
        """Insert or replace points durably; return (points written, store sequence).

        ``acting_tenant`` is set for tenant-keyed callers: every point must be visible to that
        tenant alone (an empty access list means just that tenant), and replacing a point that
        anyone else can see is refused.
        """
        prepared = self.prepare_upsert(
            ids, vectors, attributes, tenants, acting_tenant=acting_tenant
        )
        return self.commit_upsert(prepared)

    def prepare_upsert(
        self,
        ids: Sequence[str],
        vectors: object,
        attributes: Sequence[Mapping[str, object]] | None = None,
        tenants: Sequence[Sequence[str]] | None = None,
        *,
        acting_tenant: str | None = None,
    ) -> PreparedUpsert:
        """Validate and encode an upsert without touching any state (raise on bad input).

        Splitting this from :meth:`commit_upsert` lets a bulk stream validate batch i + 1 while
        batch i is being committed.
        """
        id_list = self.check_ids(ids)
        n = len(id_list)
        matrix, norms = self._checked_vectors(vectors, "vector")
        if norms is None:
            norms = row_norms(matrix)
        if matrix.shape[0] != n:
            raise InvalidArgument(f"{n} ids but {matrix.shape[0]} vectors: they must match")
        # an absent list stands for "none for every point": one shared, never-mutated empty value
        attrs = list(attributes) if attributes is not None else [{}] * n
        access = [list(t) for t in tenants] if tenants is not None else [[]] * n
        if len(attrs) != n or len(access) != n:
            raise InvalidArgument(
                f"{n} ids but {len(attrs)} attribute sets and {len(access)} tenant lists"
            )
        # the last occurrence of an id in one request wins, as if sent one by one
        last = dict(zip(id_list, range(n), strict=True))
        if len(last) != n:
            keep = np.fromiter(sorted(last.values()), dtype=np.int64, count=len(last))
            id_list = [id_list[i] for i in keep]
            matrix = matrix[keep]
            norms = norms[keep]
            attrs = [attrs[i] for i in keep]
            access = [access[i] for i in keep]
        if attributes is None or not any(attrs):
            checked_attrs: list[dict[str, object]] = [{}] * len(id_list)
            attrs_json: list[str | None] = [None] * len(id_list)
        else:
            checked_attrs = [
                self.settings.check_attributes(pid, a) if a else {}
                for pid, a in zip(id_list, attrs, strict=True)
            ]
            attrs_json = [json.dumps(a) if a else None for a in checked_attrs]
        if acting_tenant is None and (tenants is None or not any(access)):
            checked_tenants: list[list[str]] = [[]] * len(id_list)
            tenants_json: list[str | None] = [None] * len(id_list)
        else:
            checked_tenants = [self._check_tenants(t, acting_tenant) for t in access]
            tenants_json = [json.dumps(t) if t else None for t in checked_tenants]
        encoded = list(zip(id_list, attrs_json, tenants_json, strict=True))
        return PreparedUpsert(
            id_list, matrix, norms, checked_attrs, checked_tenants, encoded, acting_tenant
        )

    def commit_upsert(self, prepared: PreparedUpsert) -> tuple[int, int]:
        """Write a prepared upsert durably, then apply it in memory; return (count, sequence)."""
        n = len(prepared.ids)
        if n == 0:
            return 0, self.sequence
        with self._write_mutex:
            if prepared.acting_tenant is not None:
                self._check_owned(prepared.ids, prepared.acting_tenant, "replace")
            start = self._next_row
            ids_col, attrs_col, tenants_col = zip(*prepared.encoded, strict=True)
            records: list[PointRow] = list(
                zip(range(start, start + n), ids_col, attrs_col, tenants_col, strict=True)
            )
            # vectors first (fsynced), then the rows that make the points exist
            self.store.vector_file(self.cid, self.dim).write(start, prepared.vectors)
            replaced = [self._row_of[i] for i in prepared.ids if i in self._row_of]
            with self.store.transaction() as db:
                sequence = Store.write_points(db, self.cid, records, start + n, replaced)
            with self._lock.write():
                self._next_row = start + n
                self._grow(start + n)
                self._rows = start + n
                self._apply_upsert(
                    np.arange(start, start + n, dtype=np.int64),
                    prepared.ids,
                    prepared.vectors,
                    prepared.norms,
                    prepared.attributes,
                    prepared.tenants,
                )
                self.sequence = sequence
        return n, sequence

    def _check_tenants(self, tenants: list[str], acting_tenant: str | None) -> list[str]:
        if not tenants and acting_tenant is None:
            return tenants
        unique = list(dict.fromkeys(tenants))
        for tenant in unique:
            check_name("tenant", tenant)
        if acting_tenant is not None:
            if not unique:
                return [acting_tenant]
            if unique != [acting_tenant]:
                raise PermissionDenied(
                    f"a key for tenant {acting_tenant!r} may only write points whose access "
                    f"list is exactly [{acting_tenant!r}], got {unique!r}"
                )
        return unique

    def _check_owned(self, ids: Sequence[str], tenant: str, action: str) -> None:
        """Raise PermissionDenied if any existing point among ``ids`` is not ``tenant``'s alone."""
        cols = self._cols
        for point_id in ids:
            row = self._row_of.get(point_id)
            if row is not None and cols.tenants[row] != (tenant,):
                raise PermissionDenied(
                    f"a key for tenant {tenant!r} may not {action} point {point_id!r}: "
                    "it is not visible to that tenant alone"
                )

    def _grow(self, needed: int) -> None:
        cols = self._cols
        capacity = len(cols.alive)
        if needed <= capacity:
            return
        capacity = max(needed, 2 * capacity, 1024)
        vectors = np.zeros((capacity, self.dim), np.float32)
        vectors[: self._rows] = cols.vectors[: self._rows]
        norms = np.zeros(capacity, np.float32)
        norms[: self._rows] = cols.norms[: self._rows]
        alive = np.zeros(capacity, np.bool_)
        alive[: self._rows] = cols.alive[: self._rows]
        extra = capacity - len(cols.ids)
        cols.ids.extend([None] * extra)
        cols.tenants.extend([()] * extra)
        cols.vectors, cols.norms, cols.alive = vectors, norms, alive
        self.attributes.grow(capacity)

    def _apply_upsert(
        self,
        rows: Rows,
        ids: Sequence[str],
        vectors: Vectors | None,
        norms: NDArray[np.float32],
        attributes: Sequence[Mapping[str, object]],
        tenants: Sequence[Sequence[str]],
    ) -> None:
        """Make points live in memory; ``vectors`` None means they are already in place."""
        cols = self._cols
        replaced = [self._row_of[i] for i in ids if i in self._row_of]
        if replaced:
            self._tombstone(np.asarray(replaced, dtype=np.int64))
        # rows are increasing and unique: a contiguous run (every upsert, most loads) is one slice,
        # a block copy instead of a scatter
        count = len(rows)
        first = int(rows[0]) if count else 0
        run = count > 0 and int(rows[-1]) - first + 1 == count
        where: slice | Rows = slice(first, first + count) if run else rows
        if vectors is not None:
            cols.vectors[where] = vectors
        cols.norms[where] = norms
        cols.alive[where] = True
        row_list = rows.tolist()
        self._row_of.update(zip(ids, row_list, strict=True))
        if run:
            cols.ids[first : first + count] = ids
            cols.tenants[first : first + count] = map(tuple, tenants)
        else:
            for row, point_id, access in zip(row_list, ids, tenants, strict=True):
                cols.ids[row] = point_id
                cols.tenants[row] = tuple(access)
        for row, access in zip(row_list, tenants, strict=True):
            for tenant in access:  # points without an access list cost one empty loop
                self._tenant_rows.setdefault(tenant, set()).add(row)
                self._tenant_cache.pop(tenant, None)
        self.attributes.set_rows(rows, attributes)
        self._live += len(row_list)
        if self.tenant_index is not None:
            self.tenant_index.insert(
                rows,
                cols.vectors[rows] if vectors is None else vectors,
                [tuple(t) for t in tenants],
            )

    def _tombstone(self, rows: Rows) -> None:
        cols = self._cols
        for row in rows.tolist():
            point_id = cols.ids[row]
            if point_id is not None:
                del self._row_of[point_id]
            cols.ids[row] = None
            for tenant in cols.tenants[row]:
                self._tenant_rows[tenant].discard(row)
                self._tenant_cache.pop(tenant, None)
            cols.tenants[row] = ()
        cols.alive[rows] = False
        self.attributes.clear_rows(rows)
        self._live -= len(rows)
        if self.tenant_index is not None:
            self.tenant_index.delete(rows)

    def delete(self, ids: Sequence[str], *, acting_tenant: str | None = None) -> int:
        """Delete points by id (unknown ids are ignored); return how many were deleted."""
        id_list = list(dict.fromkeys(self.check_ids(ids)))
        with self._write_mutex:
            present = [i for i in id_list if i in self._row_of]
            if not present:
                return 0
            if acting_tenant is not None:
                self._check_owned(present, acting_tenant, "delete")
            with self.store.transaction() as db:
                sequence = Store.delete_points(db, self.cid, [self._row_of[i] for i in present])
            with self._lock.write():
                self._tombstone(np.asarray([self._row_of[i] for i in present], dtype=np.int64))
                self.sequence = sequence
        return len(present)

    def set_access(self, tenant: str, ids: Sequence[str], *, grant: bool) -> int:
        """Grant or revoke ``tenant``'s access to points; return how many points changed."""
        check_name("tenant", tenant)
        id_list = list(dict.fromkeys(self.check_ids(ids)))
        with self._write_mutex:
            return self._set_access_locked(tenant, id_list, grant=grant)

    def _set_access_locked(self, tenant: str, id_list: Sequence[str], *, grant: bool) -> int:
        cols = self._cols
        changes: list[tuple[int, tuple[str, ...]]] = []
        for point_id in id_list:
            row = self._row_of.get(point_id)
            if row is None:
                continue
            current = cols.tenants[row]
            if grant and tenant not in current:
                changes.append((row, (*current, tenant)))
            elif not grant and tenant in current:
                changes.append((row, tuple(t for t in current if t != tenant)))
        if not changes:
            return 0
        with self.store.transaction() as db:
            sequence = Store.set_tenants(
                db,
                self.cid,
                [(json.dumps(list(access)) if access else None, row) for row, access in changes],
            )
        with self._lock.write():
            rows = self._tenant_rows.setdefault(tenant, set())
            for row, access in changes:
                cols.tenants[row] = access
                if grant:
                    rows.add(row)
                else:
                    rows.discard(row)
            self._tenant_cache.pop(tenant, None)
            if self.tenant_index is not None:
                changed = np.asarray([row for row, _ in changes], dtype=np.int64)
                if grant:
                    self.tenant_index.grant(tenant, changed)
                else:
                    self.tenant_index.revoke(tenant, changed)
            self.sequence = sequence
        return len(changes)

    def drop_tenant(self, tenant: str, *, delete_orphaned_points: bool) -> tuple[int, int]:
        """Revoke ``tenant`` everywhere; return (points revoked, orphaned points deleted)."""
        check_name("tenant", tenant)
        with self._write_mutex:
            rows = sorted(self._tenant_rows.get(tenant, set()))
            ids = [self._cols.ids[r] for r in rows]
            revoked = self._set_access_locked(tenant, [i for i in ids if i], grant=False)
            self._tenant_rows.pop(tenant, None)
            self._tenant_cache.pop(tenant, None)
            orphans = [self._cols.ids[r] for r in rows if not self._cols.tenants[r]]
            orphan_ids = [i for i in orphans if i]
        deleted = self.delete(orphan_ids) if delete_orphaned_points and orphan_ids else 0
        return revoked, deleted

    # --- reads -------------------------------------------------------------------------------

    def get(
        self,
        ids: Sequence[str],
        *,
        with_vectors: bool = False,
        tenant: str | None = None,
    ) -> tuple[list[StoredPoint], list[str]]:
        """Return (points found, ids missing); with ``tenant``, others' points count as missing."""
        id_list = self.check_ids(ids)
        found: list[StoredPoint] = []
        missing: list[str] = []
        with self._lock.read():
            cols = self._cols
            for point_id in id_list:
                row = self._row_of.get(point_id)
                if row is None or (tenant is not None and tenant not in cols.tenants[row]):
                    missing.append(point_id)
                    continue
                found.append(
                    StoredPoint(
                        id=point_id,
                        vector=cols.vectors[row].copy() if with_vectors else None,
                        attributes=self.attributes.row_values(row),
                        tenants=list(cols.tenants[row]),
                    )
                )
        return found, missing

    def tenants(self) -> dict[str, int]:
        """Return each tenant's point count (tenants with no points left out)."""
        with self._lock.read():
            return {t: len(rows) for t, rows in sorted(self._tenant_rows.items()) if rows}

    def tenant_rows(self, tenant: str) -> Rows:
        """Return the sorted rows ``tenant`` may see (call under the read lock)."""
        cached = self._tenant_cache.get(tenant)
        if cached is None:
            rows = self._tenant_rows.get(tenant, set())
            cached = np.fromiter(sorted(rows), dtype=np.int64, count=len(rows))
            self._tenant_cache[tenant] = cached
        return cached

    def attributes_of(self, rows: Rows) -> list[dict[str, object]]:
        """Return the attribute dicts of ``rows``."""
        with self._lock.read():
            return [self.attributes.row_values(r) for r in rows.tolist()]

    def vectors_of(self, rows: Rows) -> Vectors:
        """Return a copy of the vectors at ``rows``."""
        with self._lock.read():
            return self._cols.vectors[rows].copy()

    # --- search ------------------------------------------------------------------------------

    def candidate_mask(self, tenant: str | None, filter: Filter | None) -> Mask | None:
        """Return the mask of live rows a search may return, or None for "every live row".

        Call under the read lock.
        """
        n = self._rows
        if tenant is None and filter is None:
            return None
        alive = self._cols.alive[:n]
        if filter is not None:
            mask = evaluate(filter, self.attributes, n)  # a fresh array: safe to narrow in place
            if self._live < n:  # tombstones among the rows (else every row is alive)
                mask &= alive
        else:
            mask = alive.copy()
        if tenant is not None:
            rows = self.tenant_rows(tenant)
            tenant_mask = np.zeros(n, np.bool_)
            tenant_mask[rows[rows < n]] = True
            mask &= tenant_mask
        return mask

    def candidate_rows(
        self, tenant: str | None, filter: Filter | None, *, ordered: bool = True
    ) -> Rows | None:
        """Return the live rows a search may return when an index of the attributes (or the
        tenant's row list) yields them without a pass over every row, else None.

        The rows are ascending when ``ordered``, else in the order the index yields them.
        Call under the read lock.
        """
        n = self._rows
        if tenant is None and filter is None:
            return None
        limit = max(1, n // 16)  # past this a mask pass is cheaper than gathering rows
        alive = self._cols.alive
        if tenant is not None:
            rows = self.tenant_rows(tenant)
            rows = rows[: np.searchsorted(rows, n)]
            if len(rows) > limit:
                return None
            if filter is not None:
                rows = rows[evaluate(filter, self.attributes, rows)]
        else:
            assert filter is not None
            selected = select(filter, self.attributes, n, limit, ordered=ordered)
            if selected is None:
                return None
            rows = selected
        if self._live < n:  # tombstones among the rows (else every row is alive)
            rows = rows[alive[rows]]
        return rows

    def index_shape(self) -> planner.IndexShape | None:
        """Return what the planner's cost model needs to know about the index (None: none)."""
        index = self.index
        if index is None:
            return None
        cached = self._shape
        if cached is not None and cached[0] is index:
            return cached[1]
        config = index.config
        shape = planner.IndexShape(
            structure=config.structure or "ivf",
            rows=index.covered_rows,
            dim=self.dim,
            reduced_dim=config.reduced_dim or self.dim,
            code_bits=config.code_bits or 8,
            lists=config.list_count or 1,
            nprobe=config.nprobe or 1,
            ef_search=config.ef_search or 64,
            rerank_factor=config.rerank_factor or 1,
            filter_exponents=index.filter_exponents,
            widen_min_share=index.widen_min_share,
        )
        self._shape = (index, shape)
        if self.planner.index != shape:
            # the planner settings carry it too, for callers planning with them alone
            self.planner = replace(self.planner, index=shape)
        return shape

    def search(
        self,
        queries: object,
        k: int,
        *,
        tenant: str | None = None,
        filter: Filter | None = None,
        options: SearchOptions | None = None,
    ) -> list[Hits]:
        """Return the ``k`` best live points for each query, among those the tenant and filter allow."""
        matrix = self.check_vectors(queries, what="query vector")
        if tenant is not None:
            check_name("tenant", tenant)
        options = options or SearchOptions()
        if k < 1:
            raise InvalidArgument(f"k {k} is not allowed: k must be at least 1")
        with self._lock.read():
            n = self._rows
            # unsorted from an attribute index (the index path only gathers and counts them; the
            # exact plan sorts them); a tenant's rows, filtered or not, come ascending anyway
            selected = self.candidate_rows(tenant, filter, ordered=False)
            mask = None if selected is not None else self.candidate_mask(tenant, filter)
            if selected is not None:
                matching = len(selected)
            else:
                matching = self._live if mask is None else int(np.count_nonzero(mask))
            filtered = selected is not None or mask is not None
            index = None if options.exact else self.index
            plan = planner.choose(
                matching,
                max(self._live, 1),
                k,
                filtered=filtered,
                has_index=index is not None,
                settings=self.planner,
                shape=self.index_shape() if index is not None else None,
            )
            tenant_index = None if options.exact else self.tenant_index
            if index is None or plan.name == planner.EXACT:
                if selected is not None:
                    if tenant is None:
                        selected = np.sort(selected)  # ascending: ties keep row order
                    scores, rows = top_k(self._row_scores(matrix, selected), selected, k)
                else:
                    scores, rows = self._exact(matrix, k, mask, n)
                scored = matching
            elif tenant is not None and tenant_index is not None:
                plan = planner.Plan(
                    planner.TENANT_TREE,
                    plan.selectivity,
                    f"tenant {tenant!r}: best-first walk of its sub-tree of the shared tree",
                )
                allowed = None
                if filter is not None:
                    allowed = evaluate(filter, self.attributes, n) & self._cols.alive[:n]
                external, rows = tenant_index.search(
                    matrix, k, tenant, vectors=self._cols.vectors, allowed=allowed
                )
                scores = self._internal(external)
                scored = matching
            else:
                if selected is not None:
                    mask = np.zeros(n, np.bool_)
                    mask[selected] = True
                stats: dict[str, float] = {}
                scores, rows, scored = self._indexed(
                    matrix,
                    k,
                    mask,
                    n,
                    index,
                    plan,
                    options,
                    allowed_rows=selected,
                    stats=stats,
                    matching=matching,
                )
                if "lists_probed" in stats:
                    plan = planner.Plan(
                        plan.name,
                        plan.selectivity,
                        f"{plan.reason}; {_probe_detail(stats)}",
                        plan.estimates,
                    )
            explain = Explain(
                plan=plan.name,
                estimated_selectivity=plan.selectivity,
                matching_points=matching,
                candidates_scored=scored,
                detail=plan.reason,
            )
            return self._hits(scores, rows, explain)

    # --- the approximate index -----------------------------------------------------------------

    def build_index(
        self,
        *,
        recall_target: float = 0.95,
        train_queries: object | None = None,
        config: AnnConfig | None = None,
        progress: Callable[[str, float], None] | None = None,
    ) -> dict[str, Any]:
        """Train the reduced, quantized index on the current points; return its description.

        Points written while it trains are covered by the exact scan of fresh rows.
        """
        from vecdb.engine.ann import AnnIndex

        if not 0.0 < recall_target <= 1.0:
            raise InvalidArgument(f"recall_target {recall_target} is not allowed: use (0, 1]")
        queries = None
        if train_queries is not None:
            queries = self.check_vectors(train_queries, what="training query")
        with self._lock.read():
            n = self._rows
            live = self._live
            vectors = self._cols.vectors[:n].copy()
            sequence = self.sequence
        if live < MIN_INDEX_POINTS:
            raise FailedPrecondition(
                f"collection {self.name!r} has {live} points: an index needs at least "
                f"{MIN_INDEX_POINTS} (smaller collections are searched exactly)"
            )
        index = AnnIndex.build(
            vectors,
            metric=self.metric.value,
            recall_target=recall_target,
            train_queries=queries,
            config=config,
            progress=progress,
        )
        if self.artefact_dir is not None:
            artefacts.publish(
                self.artefact_dir,
                "index",
                index.save,
                {"covered_rows": n, "sequence": sequence, "recall_target": recall_target},
            )
        with self._lock.write():
            self.index = index
            self._index_recall_target = recall_target
            self.index_shape()
        if self._tenant_rows:
            self.build_tenant_index(progress=progress)
        return self.index_info()

    def build_tenant_index(self, progress: Callable[[str, float], None] | None = None) -> None:
        """Build the multi-tenant structure (shared tree, per-tenant shortlists) and save it.

        Writes are held off while it trains so that it starts exactly in step with the
        collection; from then on every write updates it incrementally.
        """
        from vecdb.engine.tenancy import TenantIndex

        with self._write_mutex:
            with self._lock.read():
                n = self._rows
                vectors = self._cols.vectors[:n].copy()
                alive = self._cols.alive[:n].copy()
                row_tenants = list(self._cols.tenants[:n])
            tenant_index = TenantIndex.build(
                vectors, row_tenants, alive, metric=self.metric.value, progress=progress
            )
            with self._lock.write():
                self.tenant_index = tenant_index
        self.save_tenant_index()

    def save_tenant_index(self) -> None:
        """Publish the tenant structure as it is now (a restart reconciles later writes)."""
        tenant_index = self.tenant_index
        if self.artefact_dir is None or tenant_index is None:
            return
        with self._write_mutex, self._lock.read():
            artefacts.publish(
                self.artefact_dir,
                "tenancy",
                tenant_index.save,
                {"rows": self._rows, "sequence": self.sequence},
            )

    def _load_tenant_index(self) -> None:
        """Load the saved tenant structure and bring it in step with the store."""
        if self.artefact_dir is None:
            return
        found = artefacts.current(self.artefact_dir, "tenancy")
        if found is None:
            return
        from vecdb.engine.tenancy import TenantIndex

        folder, stamp = found
        tenant_index = TenantIndex.load(folder)
        saved_rows = stamp.get("rows", 0)
        assert isinstance(saved_rows, int)
        cols = self._cols
        n = self._rows
        # rows retired since the save, then rows written since, then access changes
        known = np.arange(min(saved_rows, n), dtype=np.int64)
        gone = known[~cols.alive[: len(known)]]
        gone = gone[np.fromiter((int(r) in tenant_index for r in gone), np.bool_, len(gone))]
        if len(gone):
            tenant_index.delete(gone)
        fresh = np.flatnonzero(cols.alive[saved_rows:n]).astype(np.int64) + saved_rows
        if len(fresh):
            tenant_index.insert(fresh, cols.vectors[fresh], [cols.tenants[r] for r in fresh])
        for tenant in set(tenant_index.tenants()) | set(self._tenant_rows):
            have = tenant_index.tenant_rows(tenant)
            want = self.tenant_rows(tenant)
            extra = np.setdiff1d(have, want, assume_unique=True)
            missing = np.setdiff1d(want, have, assume_unique=True)
            if len(extra):
                tenant_index.revoke(tenant, extra)
            if len(missing):
                tenant_index.grant(tenant, missing)
        self.tenant_index = tenant_index

    def load_index(self) -> bool:
        """Load the saved index, if any (on start); return True if one was loaded."""
        if self.artefact_dir is None:
            return False
        found = artefacts.current(self.artefact_dir, "index")
        if found is None:
            return False
        from vecdb.engine.ann import AnnIndex

        folder, stamp = found
        index = AnnIndex.load(folder)
        if index.covered_rows > self._next_row:
            return False  # not from this store: ignore rather than serve wrong rows
        target = stamp.get("recall_target", 0.0)
        if index.config.structure == "ivf" and index.filter_calibration is None:
            # saved before indexes calibrated their filtered search, or calibrated by an older
            # rule (see vecdb.engine.ann.FILTER_CALIBRATION_VERSION): measure once, keep it
            self._calibrate_filters(
                index, float(target) if isinstance(target, int | float) else 0.95
            )
            index.save_filter_calibration(folder)
        with self._lock.write():
            self.index = index
            self.index_shape()
            self._index_recall_target = float(target) if isinstance(target, int | float) else 0.0
            self._load_tenant_index()
        return True

    def _calibrate_filters(self, index: AnnIndex, recall_target: float) -> None:
        """Calibrate ``index``'s filtered search on rows it covers, sampled as queries."""
        from vecdb.engine.ann import FILTER_CALIBRATION_QUERIES

        with self._lock.read():
            covered = min(index.covered_rows, self._rows)
            alive = self._cols.alive[:covered].copy()
            live = np.flatnonzero(alive)
            rng = np.random.default_rng(0)
            count = min(FILTER_CALIBRATION_QUERIES, len(live) // 10)
            picked = np.sort(rng.choice(live, size=count, replace=False)).astype(np.int64)
            queries = np.asarray(self._cols.vectors[picked], dtype=np.float32)
            vectors = self._cols.vectors
        if count == 0:
            return
        if self.metric.value == "cosine":
            norms = np.sqrt(np.einsum("ij,ij->i", queries, queries))
            queries = queries / np.maximum(norms, np.float32(1e-30))[:, None]
        index.calibrate_filters(
            vectors,
            queries,
            recall_target or 0.95,
            exclude=picked,
            alive=alive,
            source=f"{count} sampled rows (each kept out of the filters)",
        )

    def index_info(self) -> dict[str, Any]:
        """Return what the index is and what its build chose and measured."""
        index = self.index
        if index is None:
            return {"kind": "exact"}
        config = index.config
        return {
            "kind": "leanvec",
            "reduced_dim": config.reduced_dim,
            "code_bits": config.code_bits,
            "structure": config.structure,
            "graph_degree": config.graph_degree or 0,
            "list_count": config.list_count or 0,
            "ef_search": config.ef_search or 0,
            "nprobe": config.nprobe or 0,
            "rerank_factor": config.rerank_factor,
            "projection": config.projection,
            "projection_method": index.projection.method,
            "recall_target": self._index_recall_target,
            "measured_recall": index.measured_recall,
            "indexed_points": index.covered_rows,
            "build_seconds": index.build_seconds,
            "memory_bytes": index.memory_bytes(),
            "filter_coverage_exponents": {
                f"{share:g}": power for share, power in index.filter_exponents
            },
            "filter_calibration": index.filter_calibration,
        }

    def _indexed(
        self,
        queries: Vectors,
        k: int,
        mask: Mask | None,
        n: int,
        index: AnnIndex,
        plan: planner.Plan,
        options: SearchOptions,
        *,
        allowed_rows: Rows | None = None,
        stats: dict[str, float] | None = None,
        matching: int | None = None,
    ) -> tuple[NDArray[np.float32], Rows, int]:
        """Answer through the index (plus an exact scan of rows written since it was built).

        ``allowed_rows`` may give the rows of ``mask`` (any order) when the caller has them, and
        ``matching`` how many rows ``mask`` (None: every live row) allows, else it is counted.
        """
        covered = min(index.covered_rows, n)
        alive = self._cols.alive
        allowed_all = alive[:n] if mask is None else mask
        allowed = allowed_all[:covered]
        # a filter every live row passes searches like no filter at all
        everything = (mask is None or plan.name == planner.INDEX) and (
            self._live == n if covered == n else bool(alive[:covered].all())
        )
        if allowed_rows is not None and covered < n:
            allowed_rows = allowed_rows[allowed_rows < covered]
        rerank = None if options.rerank_factor is None else max(1, math.ceil(options.rerank_factor))
        knobs: dict[str, Any] = {
            "ef_search": options.ef_search,
            "nprobe": options.nprobe,
            "rerank_factor": rerank,
        }
        if plan.name == planner.INDEX_POSTFILTER:
            scores, rows = self._postfilter(queries, k, allowed, index, plan, knobs)
        else:
            scores, rows = index.search(
                queries,
                k,
                vectors=self._cols.vectors,
                norms=self._cols.norms,
                allowed=None if everything else allowed,
                allowed_rows=None if everything else allowed_rows,
                stats=stats,
                allowed_count=matching if covered == n and mask is not None else None,
                **knobs,
            )
        scores = self._internal(scores)
        if allowed_rows is not None:
            expected = min(k, len(allowed_rows))
        elif matching is not None and covered == n:
            expected = min(k, matching)
        else:
            expected = min(k, int(np.count_nonzero(allowed)))
        short = np.count_nonzero(rows >= 0, axis=1) < expected
        widening = 2
        while short.any() and widening <= self.planner.max_widening:
            # too few matches came back: widen the search for those queries only
            wider = {
                "ef_search": (options.ef_search or index.config.ef_search or 64) * widening,
                "nprobe": (options.nprobe or index.config.nprobe or 8) * widening,
                "rerank_factor": rerank,
            }
            again_scores, again_rows = index.search(
                queries[short],
                k,
                vectors=self._cols.vectors,
                norms=self._cols.norms,
                allowed=allowed,
                allowed_rows=allowed_rows,
                ef_search=wider["ef_search"],
                nprobe=wider["nprobe"],
                rerank_factor=wider["rerank_factor"],
            )
            scores[short] = self._internal(again_scores)
            rows[short] = again_rows
            short = np.count_nonzero(rows >= 0, axis=1) < expected
            widening *= 2
        if short.any():  # still short: exact over the matching rows guarantees k results
            exact_scores, exact_rows = self._exact(
                queries[short], k, np.concatenate([allowed, np.zeros(n - covered, np.bool_)]), n
            )
            scores[short] = exact_scores
            rows[short] = exact_rows
        if covered < n:
            fresh = np.zeros(n, np.bool_)
            fresh[covered:] = allowed_all[covered:n]
            if fresh.any():
                fresh_scores, fresh_rows = self._exact(queries, k, fresh, n)
                scores, rows = merge_top_k(
                    np.concatenate([scores, fresh_scores], axis=1),
                    np.concatenate([rows, fresh_rows], axis=1),
                    k,
                )
        # a filtered IVF search reports the rerank its calibration chose for the selectivity
        rerank_factor = (stats or {}).get("rerank_factor") or (
            options.rerank_factor or index.config.rerank_factor or 1
        )
        return scores, rows, math.ceil(k * rerank_factor) * queries.shape[0]

    def _postfilter(
        self,
        queries: Vectors,
        k: int,
        allowed: Mask,
        index: AnnIndex,
        plan: planner.Plan,
        knobs: dict[str, Any],
    ) -> tuple[NDArray[np.float32], Rows]:
        """Search unfiltered with over-fetch, then keep the best ``k`` allowed results."""
        fetch = min(len(allowed), math.ceil(k / max(plan.selectivity, 1e-6) * 1.5) + k)
        ef = max(knobs["ef_search"] or index.config.ef_search or 0, fetch)
        scores, rows = index.search(
            queries,
            fetch,
            vectors=self._cols.vectors,
            norms=self._cols.norms,
            allowed=None,
            ef_search=ef,
            nprobe=knobs["nprobe"],
            rerank_factor=knobs["rerank_factor"],
        )
        keep = rows >= 0
        keep[keep] = allowed[rows[keep]]
        bad = -np.inf if self.metric.higher_is_better else np.inf
        scores = np.where(keep, scores, bad).astype(np.float32)
        rows = np.where(keep, rows, -1)
        internal, rows = merge_top_k(self._internal(scores), rows, k)
        return self._external(internal), rows

    def _internal(self, scores: NDArray[np.float32]) -> NDArray[np.float32]:
        """Index scores (l2: distances) as higher-is-better scores."""
        if self.metric is Metric.L2:
            return np.negative(scores).astype(np.float32)
        return scores.astype(np.float32, copy=True)

    def _external(self, internal: NDArray[np.float32]) -> NDArray[np.float32]:
        return self._internal(internal)  # negation is its own inverse

    def _internal_scores(self, queries: Vectors, rows: Rows | None, n: int) -> NDArray[np.float32]:
        """Return (m, len(rows) or n) scores where higher is better, for every metric."""
        cols = self._cols
        block = cols.vectors[:n] if rows is None else cols.vectors[rows]
        # (n, d) @ (d, m) runs as a matrix-vector product for one query, far faster than q @ X.T
        dots: NDArray[np.float32] = np.ascontiguousarray((block @ queries.T).T)
        if self.metric is Metric.IP:
            return dots.astype(np.float32, copy=False)
        norms = cols.norms[:n] if rows is None else cols.norms[rows]
        if self.metric is Metric.COSINE:
            query_norms = row_norms(queries)[:, None]
            # retired rows keep norm 0: their scores are masked out, so silence the warning
            with np.errstate(divide="ignore", invalid="ignore"):
                cosine: NDArray[np.float32] = (dots / query_norms / norms[None, :]).astype(
                    np.float32
                )
            return cosine
        # negated squared distance, computed from norms to stay one matrix product
        query_sq = np.einsum("ij,ij->i", queries, queries)[:, None]
        negated: NDArray[np.float32] = (2.0 * dots - query_sq - (norms * norms)[None, :]).astype(
            np.float32
        )
        return negated

    def _row_scores(self, queries: Vectors, rows: Rows) -> NDArray[np.float32]:
        """Return (m, len(rows)) higher-is-better scores of a few gathered live rows."""
        cols = self._cols
        block = cols.vectors[rows]
        dots: NDArray[np.float32]
        if queries.shape[0] == 1:  # a matrix-vector product
            dots = (block @ queries[0])[None, :]
        else:
            dots = np.ascontiguousarray((block @ queries.T).T)
        if self.metric is Metric.IP:
            return dots
        norms = cols.norms[rows]
        if self.metric is Metric.COSINE:
            query_norms = np.sqrt(np.einsum("ij,ij->i", queries, queries, dtype=np.float64))
            scale = (1.0 / query_norms).astype(np.float32)[:, None]
            cosine: NDArray[np.float32] = (dots / norms[None, :] * scale).astype(
                np.float32, copy=False
            )
            return cosine
        query_sq = np.einsum("ij,ij->i", queries, queries)[:, None]
        negated: NDArray[np.float32] = (2.0 * dots - query_sq - (norms * norms)[None, :]).astype(
            np.float32
        )
        return negated

    def _hits(self, scores: NDArray[np.float32], rows: Rows, explain: Explain | None) -> list[Hits]:
        """Per query row, the found rows (-1 padding dropped), their ids and reported scores.

        Call under the read lock (ids are read from the columns).
        """
        ids = self._cols.ids
        hits = []
        for q in range(len(rows)):
            valid = rows[q] >= 0
            found = rows[q][valid]
            hits.append(
                Hits(
                    rows=found,
                    ids=[ids[r] or "" for r in found.tolist()],
                    scores=report_scores(self.metric, scores[q][valid]),
                    explain=explain,
                )
            )
        return hits

    def _exact(
        self, queries: Vectors, k: int, mask: Mask | None, n: int
    ) -> tuple[NDArray[np.float32], Rows]:
        """Return (m, k) internal scores and rows (-1 padded) by brute force."""
        if mask is None:
            alive = self._cols.alive[:n]
            dead = n - self._live
            if dead * 4 > n:  # mostly tombstones: gather the live rows instead
                return self._exact(queries, k, alive.copy(), n)
            scores = self._internal_scores(queries, None, n)
            if dead:
                scores[:, ~alive] = -np.inf
            return top_k(scores, np.arange(n, dtype=np.int64), k)
        rows = np.flatnonzero(mask).astype(np.int64)
        scores = self._internal_scores(queries, rows, n)
        return top_k(scores, rows, k)


def _probe_detail(stats: dict[str, float]) -> str:
    """Return what an IVF search's ``stats`` say it did, per query, for ``explain``."""
    detail = (
        f"per query: probed {stats['lists_probed']:.0f} lists, "
        f"scanned {stats['codes_scanned']:.0f} codes"
    )
    if stats.get("widened"):
        detail += " (the nearest lists, the filter as a selector)"
        short = stats.get("queries_probing_by_count", 0.0)
        if short:
            detail += (
                f"; {short:.0f} queries whose nearest lists held too few matches probed the "
                "lists holding them instead"
            )
        return detail
    return (
        f"{detail}, scored {stats.get('rows_scored_exactly', 0.0):.0f} rows of sparse lists exactly"
    )


def report_scores(metric: Metric, internal: NDArray[np.float32]) -> NDArray[np.float32]:
    """Internal (higher-is-better) scores as a search reports them (l2: squared distance)."""
    if metric is Metric.L2:
        return np.maximum(-internal, 0.0).astype(np.float32)
    return internal.astype(np.float32)


def top_k(scores: NDArray[np.float32], rows: Rows, k: int) -> tuple[NDArray[np.float32], Rows]:
    """Return the ``k`` highest scores per query row and their rows, -inf / -1 padded."""
    m, count = scores.shape
    width = min(k, count)
    out_scores = np.full((m, k), -np.inf, dtype=np.float32)
    out_rows = np.full((m, k), -1, dtype=np.int64)
    if width == 0:
        return out_scores, out_rows
    line = np.arange(m)[:, None]
    if width < count:
        part = np.argpartition(-scores, width - 1, axis=1)[:, :width]
        picked = scores[line, part]
        # argpartition picks arbitrarily among scores tied with the k-th: redo those queries so
        # ties always go to the lowest row (top-k is then a prefix of top-(k+1))
        kth = picked.min(axis=1)
        tied = np.count_nonzero(scores >= kth[:, None], axis=1) > width
        for q in np.flatnonzero(tied & np.isfinite(kth)):
            candidates = np.flatnonzero(scores[q] >= kth[q])
            order = np.lexsort((rows[candidates], -scores[q, candidates]))
            part[q] = candidates[order[:width]]
            picked[q] = scores[q, part[q]]
    else:
        part = np.broadcast_to(np.arange(count), (m, count))
        picked = scores
    # order by score, then by row for deterministic ties
    order = np.lexsort((rows[part], -picked), axis=1)
    best = part[line, order]
    best_scores = picked[line, order]
    finite = np.isfinite(best_scores)
    out_scores[:, :width] = np.where(finite, best_scores, -np.inf)
    out_rows[:, :width] = np.where(finite, rows[best], -1)
    return out_scores, out_rows


_NORM_BLOCK_ROWS = 8192


def row_norms(vectors: NDArray[np.float32]) -> NDArray[np.float32]:
    """Return each row's L2 norm, computed in float64 so tiny or huge values do not under/overflow.

    Blocks of rows bound the float64 temporary (a full copy of a large matrix costs more in page
    faults than the arithmetic).
    """
    norms = np.empty(len(vectors), np.float32)
    for start in range(0, len(vectors), _NORM_BLOCK_ROWS):
        block = vectors[start : start + _NORM_BLOCK_ROWS].astype(np.float64)
        norms[start : start + _NORM_BLOCK_ROWS] = np.linalg.norm(block, axis=1)
    return norms


def merge_top_k(
    scores: NDArray[np.float32], rows: Rows, k: int
) -> tuple[NDArray[np.float32], Rows]:
    """Return the ``k`` best (higher-is-better) per query among per-query candidate rows.

    Rows may repeat across the candidate lists being merged; each is kept once.
    """
    m, count = scores.shape
    scores = np.where(rows >= 0, scores, -np.inf).astype(np.float32)
    # drop duplicates of a row within a query (keep its first, best-scored copy)
    order = np.lexsort((-scores, rows), axis=1)
    sorted_rows = np.take_along_axis(rows, order, axis=1)
    duplicate = np.zeros_like(sorted_rows, dtype=np.bool_)
    duplicate[:, 1:] = (sorted_rows[:, 1:] == sorted_rows[:, :-1]) & (sorted_rows[:, 1:] >= 0)
    drop = np.zeros_like(duplicate)
    np.put_along_axis(drop, order, duplicate, axis=1)
    scores[drop] = -np.inf
    width = min(k, count)
    best = np.argsort(-scores, axis=1, kind="stable")[:, :width]
    out_scores = np.full((m, k), -np.inf, dtype=np.float32)
    out_rows = np.full((m, k), -1, dtype=np.int64)
    picked = np.take_along_axis(scores, best, axis=1)
    finite = np.isfinite(picked)
    out_scores[:, :width] = np.where(finite, picked, -np.inf)
    out_rows[:, :width] = np.where(finite, np.take_along_axis(rows, best, axis=1), -1)
    return out_scores, out_rows
