"""Properties of the engine that must hold for any data: filters, deletes, upserts, tenants, exact
search against numpy brute force, and save -> reload.

Apart from the pure filter-mask check, every test runs the real engine on a real SQLite store in
a fresh temporary directory, and compares it with a plain-Python model or a numpy oracle.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
)
from numpy.typing import NDArray
from strategies import (
    POINT_IDS,
    TENANTS,
    Delete,
    ModelPoint,
    Operation,
    Upsert,
    apply_to_model,
    attributes_for,
    brute_force_scores,
    conditions_for,
    filters_for,
    grid_vectors,
    matches,
    operations,
    schemas,
    upserts,
    vectors,
)

from vecdb import convert
from vecdb.engine import Collection, Database, Hits, Metric
from vecdb.engine import filters as flt
from vecdb.engine.attributes import AttributeTable
from vecdb.engine.errors import PermissionDenied
from vecdb.engine.schema import AttributeType, CollectionSettings

DIM = 4
# one failure shrunk (not every distinct one) and no explain phase keep a failing run short
FAST = settings(
    max_examples=40,
    deadline=None,
    report_multiple_bugs=False,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    suppress_health_check=[HealthCheck.too_slow],
)
# two databases per example: fewer examples keep the suite quick
HEAVY = settings(FAST, max_examples=30)
EPS32 = float(np.finfo(np.float32).eps)


def scratch_dir(prefix: str) -> Path:
    """Return a new empty directory, in memory (/dev/shm) where the machine has one.

    These tests are about what the engine returns, not about surviving power loss, and an fsync
    on tmpfs is free: the same SQLite code runs eight times faster than on disk.
    """
    shm = Path("/dev/shm")
    base = str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None
    return Path(tempfile.mkdtemp(prefix=prefix, dir=base))


@contextmanager
def fresh_database() -> Iterator[Database]:
    """Yield a Database in a new temporary directory, closed and removed afterwards."""
    directory = scratch_dir("vecdb-prop-")
    database = Database(directory)
    try:
        yield database
    finally:
        database.close()
        shutil.rmtree(directory, ignore_errors=True)


def run(collection: Collection, ops: Sequence[Operation]) -> dict[str, ModelPoint]:
    """Apply ``ops`` to the collection and to a dict model; return the model."""
    model: dict[str, ModelPoint] = {}
    for op in ops:
        apply(collection, op)
        apply_to_model(model, op)
    return model


def apply(collection: Collection, op: Operation) -> None:
    """Apply one operation to the engine."""
    if isinstance(op, Delete):
        collection.delete(list(op.ids))
    else:
        collection.upsert(
            list(op.ids),
            op.vectors,
            [dict(a) for a in op.attributes],
            [list(t) for t in op.tenants],
        )


@dataclass(frozen=True)
class Snapshot:
    """Everything a reader can observe of a collection, for exact comparison."""

    rankings: tuple[tuple[tuple[str, ...], tuple[float, ...]], ...]
    points: tuple[
        tuple[str, tuple[float, ...], tuple[tuple[str, object], ...], tuple[str, ...]], ...
    ]
    missing: tuple[str, ...]
    size: int
    tenant_counts: tuple[tuple[str, int], ...]


def ranking(hits: Hits) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """Return a hashable (ids, scores) pair."""
    return tuple(hits.ids), tuple(float(s) for s in hits.scores)


def snapshot(
    collection: Collection, queries: NDArray[np.float32], filter: flt.Filter | None = None
) -> Snapshot:
    """Return the full rankings (every tenant, optionally filtered) and every point by get."""
    k = len(POINT_IDS)  # every candidate: the complete ranking, no truncation among ties
    rankings = []
    for tenant in (None, *TENANTS):
        for hits in collection.search(queries, k, tenant=tenant):
            rankings.append(ranking(hits))
        if filter is not None:
            for hits in collection.search(queries, k, tenant=tenant, filter=filter):
                rankings.append(ranking(hits))
    found, missing = collection.get(list(POINT_IDS), with_vectors=True)
    points = tuple(
        (
            p.id,
            tuple(float(x) for x in (p.vector if p.vector is not None else [])),
            tuple(sorted((name, _hashable(v)) for name, v in p.attributes.items())),
            tuple(p.tenants),
        )
        for p in found
    )
    return Snapshot(
        tuple(rankings),
        points,
        tuple(missing),
        len(collection),
        tuple(collection.tenants().items()),
    )


def _hashable(value: object) -> object:
    return tuple(value) if isinstance(value, list) else value


def assert_valid_top_k(
    hits: Hits,
    k: int,
    score_of: Mapping[str, float],
    *,
    higher_is_better: bool,
    tol: float,
) -> None:
    """Assert ``hits`` is a correct top-k of the candidates in ``score_of`` (ties may swap)."""
    sign = 1.0 if higher_is_better else -1.0
    assert len(hits.ids) == len(hits.scores) == min(k, len(score_of))
    assert len(set(hits.ids)) == len(hits.ids), f"repeated id in {hits.ids}"
    assert set(hits.ids) <= set(score_of), (
        f"returned non-candidates {set(hits.ids) - set(score_of)}"
    )
    for point_id, score in zip(hits.ids, hits.scores, strict=True):
        assert abs(float(score) - score_of[point_id]) <= tol, (point_id, score, score_of[point_id])
    goodness = sign * hits.scores.astype(np.float64)
    assert np.all(np.diff(goodness) <= tol), f"not best first: {hits.scores}"
    if not hits.ids:
        return
    worst = min(sign * score_of[i] for i in hits.ids)
    returned = set(hits.ids)
    better_left_out = [
        i for i, s in score_of.items() if sign * s > worst + tol and i not in returned
    ]
    assert not better_left_out, f"better candidates left out: {better_left_out}"


# --- a filter never returns a non-matching point ---------------------------------------------


@settings(FAST, max_examples=100)
@given(data=st.data())
def test_filter_mask_equals_python_evaluation(data: st.DataObject) -> None:
    # no store here, so many examples are cheap: this is the fine-grained check of every
    # predicate; the search test below checks the same through tombstones and tenants
    schema = data.draw(schemas(), label="schema")
    rows = data.draw(st.lists(attributes_for(schema), min_size=4, max_size=20), label="rows")
    nodes = data.draw(
        st.lists(st.one_of(conditions_for(schema), filters_for(schema)), min_size=2, max_size=8),
        label="filters",
    )
    table = AttributeTable(schema)
    table.grow(len(rows) + 3)
    checked = CollectionSettings("docs", 2, Metric.L2, schema)
    table.set_rows(
        np.arange(len(rows), dtype=np.int64),
        [checked.check_attributes(f"p{i}", a) for i, a in enumerate(rows)],
    )
    for node in nodes:
        mask = flt.evaluate(node, table, len(rows))
        expected = [matches(node, attributes) for attributes in rows]
        wrong = [rows[i] for i in range(len(rows)) if mask[i] and not expected[i]]
        assert not wrong, f"{flt.to_json(node)} matched {wrong}"
        assert mask.tolist() == expected, flt.to_json(node)


@FAST
@given(data=st.data(), metric=st.sampled_from(list(Metric)))
def test_filtered_search_returns_exactly_the_matching_points(
    data: st.DataObject, metric: Metric
) -> None:
    schema = data.draw(schemas(), label="schema")
    ops = data.draw(operations(DIM, schema, max_size=8), label="operations")
    filters = data.draw(st.lists(filters_for(schema), min_size=2, max_size=6), label="filters")
    tenant = data.draw(st.sampled_from((None, *TENANTS)), label="tenant")
    query = data.draw(grid_vectors(1, DIM), label="query")
    with fresh_database() as database:
        collection = database.create_collection("docs", DIM, metric, schema)
        model = run(collection, ops)
        for node in filters:
            expected = {
                point_id
                for point_id, point in model.items()
                if matches(node, point.attributes) and (tenant is None or tenant in point.tenants)
            }
            (hits,) = collection.search(query, len(POINT_IDS), tenant=tenant, filter=node)
            returned = set(hits.ids)
            wrong = {i: model[i].attributes for i in returned - expected}
            assert not wrong, f"{flt.to_json(node)} returned non-matching points {wrong}"
            assert returned == expected, f"{flt.to_json(node)} missed {expected - returned}"
            assert hits.explain is not None
            assert hits.explain.matching_points == len(expected)


@FAST
@given(data=st.data())
def test_filter_round_trips_through_json_and_protobuf(data: st.DataObject) -> None:
    schema = data.draw(schemas())
    node = data.draw(filters_for(schema))
    assert flt.from_json(flt.to_json(node)) == node
    assert convert.filter_from_proto(convert.filter_to_proto(node)) == node
    assert convert.filter_from_proto(convert.filter_to_proto(flt.to_json(node))) == node


# --- a deleted id never returns --------------------------------------------------------------


@FAST
@given(
    ops=operations(DIM, {"kind": AttributeType.KEYWORD}, max_size=14),
    metric=st.sampled_from(list(Metric)),
    query=grid_vectors(2, DIM),
)
def test_deleted_ids_never_return(ops: list[Operation], metric: Metric, query: np.ndarray) -> None:
    with fresh_database() as database:
        collection = database.create_collection("docs", DIM, metric, {"kind": "keyword"})
        model: dict[str, ModelPoint] = {}
        for op in ops:
            apply(collection, op)
            apply_to_model(model, op)
            gone = set(POINT_IDS) - set(model)
            for tenant in (None, *TENANTS):
                for hits in collection.search(query, len(POINT_IDS), tenant=tenant):
                    assert not gone & set(hits.ids), f"deleted ids returned: {gone & set(hits.ids)}"
                    visible = {i for i, p in model.items() if tenant is None or tenant in p.tenants}
                    assert set(hits.ids) == visible
                # a small k must not pick a deleted point either
                for hits in collection.search(query, 2, tenant=tenant):
                    assert not gone & set(hits.ids)
            found, missing = collection.get(list(POINT_IDS))
            assert {p.id for p in found} == set(model)
            assert set(missing) == gone
            assert len(collection) == len(model)


# --- upsert is idempotent --------------------------------------------------------------------


@HEAVY
@given(data=st.data(), metric=st.sampled_from(list(Metric)))
def test_upserting_the_same_batch_twice_equals_once(data: st.DataObject, metric: Metric) -> None:
    schema = data.draw(schemas(), label="schema")
    before = data.draw(operations(DIM, schema, max_size=5), label="before")
    batch = data.draw(upserts(DIM, schema), label="batch")
    node = data.draw(filters_for(schema), label="filter")
    queries = data.draw(grid_vectors(2, DIM), label="queries")
    with fresh_database() as once_db, fresh_database() as twice_db:
        once = once_db.create_collection("docs", DIM, metric, schema)
        twice = twice_db.create_collection("docs", DIM, metric, schema)
        run(once, [*before, batch])
        run(twice, [*before, batch])
        first = snapshot(twice, queries, node)
        apply(twice, batch)
        assert snapshot(twice, queries, node) == first
        assert snapshot(once, queries, node) == first


# --- a tenant never sees a point outside its access list -------------------------------------

point_ids = st.lists(st.sampled_from(POINT_IDS[:8]), min_size=1, max_size=4)
tenant_names = st.sampled_from(TENANTS)
access_lists = st.lists(st.sampled_from(TENANTS), max_size=3)


class TenantIsolation(RuleBasedStateMachine):
    """Random upserts (admin and tenant-keyed), grants, revokes, deletes, tenant drops and
    restarts; after every step each tenant sees exactly the points its access list allows."""

    def __init__(self) -> None:
        super().__init__()
        self.directory = scratch_dir("vecdb-tenants-")
        self.database = Database(self.directory)
        self.collection = self.database.create_collection("docs", DIM, "l2")
        self.model: dict[str, tuple[str, ...]] = {}
        self.query = np.ones(DIM, dtype=np.float32)

    def teardown(self) -> None:
        self.database.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    @staticmethod
    def _vectors(ids: Sequence[str], seed: int) -> NDArray[np.float32]:
        return np.random.default_rng(seed).integers(-4, 5, (len(ids), DIM)).astype(np.float32)

    @rule(
        ids=point_ids,
        access=st.lists(access_lists, min_size=4, max_size=4),
        seed=st.integers(0, 99),
    )
    def upsert_as_admin(self, ids: list[str], access: list[list[str]], seed: int) -> None:
        tenants = [access[i % len(access)] for i in range(len(ids))]
        self.collection.upsert(ids, self._vectors(ids, seed), tenants=tenants)
        for point_id, allowed in zip(ids, tenants, strict=True):
            self.model[point_id] = tuple(dict.fromkeys(allowed))

    @rule(tenant=tenant_names, ids=point_ids, explicit=st.booleans(), seed=st.integers(0, 99))
    def upsert_as_tenant(self, tenant: str, ids: list[str], explicit: bool, seed: int) -> None:
        tenants = [[tenant] if explicit else [] for _ in ids]
        owned = all(self.model.get(i, (tenant,)) == (tenant,) for i in ids)
        if owned:
            self.collection.upsert(
                ids, self._vectors(ids, seed), tenants=tenants, acting_tenant=tenant
            )
            for point_id in ids:
                self.model[point_id] = (tenant,)
        else:
            with pytest.raises(PermissionDenied, match=tenant):
                self.collection.upsert(
                    ids, self._vectors(ids, seed), tenants=tenants, acting_tenant=tenant
                )

    @rule(tenant=tenant_names, other=tenant_names, point_id=st.sampled_from(POINT_IDS[:8]))
    def tenant_may_not_write_for_others(self, tenant: str, other: str, point_id: str) -> None:
        access = [other] if other != tenant else [tenant, TENANTS[TENANTS.index(tenant) - 1]]
        with pytest.raises(PermissionDenied, match="may only write points"):
            self.collection.upsert(
                [point_id], self._vectors([point_id], 0), tenants=[access], acting_tenant=tenant
            )

    @rule(tenant=tenant_names, ids=point_ids)
    def grant(self, tenant: str, ids: list[str]) -> None:
        changed = self.collection.set_access(tenant, ids, grant=True)
        expected = 0
        for point_id in dict.fromkeys(ids):
            if point_id in self.model and tenant not in self.model[point_id]:
                self.model[point_id] = (*self.model[point_id], tenant)
                expected += 1
        assert changed == expected

    @rule(tenant=tenant_names, ids=point_ids)
    def revoke(self, tenant: str, ids: list[str]) -> None:
        changed = self.collection.set_access(tenant, ids, grant=False)
        expected = 0
        for point_id in dict.fromkeys(ids):
            if point_id in self.model and tenant in self.model[point_id]:
                self.model[point_id] = tuple(t for t in self.model[point_id] if t != tenant)
                expected += 1
        assert changed == expected

    @rule(ids=point_ids)
    def delete_as_admin(self, ids: list[str]) -> None:
        deleted = self.collection.delete(ids)
        assert deleted == len({i for i in ids if i in self.model})
        for point_id in ids:
            self.model.pop(point_id, None)

    @rule(tenant=tenant_names, ids=point_ids)
    def delete_as_tenant(self, tenant: str, ids: list[str]) -> None:
        present = [i for i in dict.fromkeys(ids) if i in self.model]
        if all(self.model[i] == (tenant,) for i in present):
            assert self.collection.delete(ids, acting_tenant=tenant) == len(present)
            for point_id in present:
                del self.model[point_id]
        else:
            with pytest.raises(PermissionDenied):
                self.collection.delete(ids, acting_tenant=tenant)

    @rule(tenant=tenant_names, delete_orphaned_points=st.booleans())
    def drop_tenant(self, tenant: str, delete_orphaned_points: bool) -> None:
        revoked, deleted = self.collection.drop_tenant(
            tenant, delete_orphaned_points=delete_orphaned_points
        )
        holders = [i for i, allowed in self.model.items() if tenant in allowed]
        orphans = [i for i in holders if self.model[i] == (tenant,)]
        assert revoked == len(holders)
        assert deleted == (len(orphans) if delete_orphaned_points else 0)
        for point_id in holders:
            self.model[point_id] = tuple(t for t in self.model[point_id] if t != tenant)
        if delete_orphaned_points:
            for point_id in orphans:
                del self.model[point_id]

    @precondition(lambda self: bool(self.model))
    @rule()
    def restart(self) -> None:
        self.database.close()
        self.database = Database(self.directory)
        self.collection = self.database.collection("docs")

    @invariant()
    def each_tenant_sees_exactly_its_points(self) -> None:
        for tenant in TENANTS:
            allowed = {i for i, access in self.model.items() if tenant in access}
            (hits,) = self.collection.search(self.query, len(POINT_IDS), tenant=tenant)
            outside = set(hits.ids) - allowed
            assert not outside, f"tenant {tenant!r} saw {outside} (model {self.model})"
            assert set(hits.ids) == allowed
            for small_k in (1, 3):
                (hits,) = self.collection.search(self.query, small_k, tenant=tenant)
                assert set(hits.ids) <= allowed
            found, _ = self.collection.get(list(POINT_IDS), tenant=tenant)
            assert {p.id for p in found} == allowed
            assert all(tenant in p.tenants for p in found)

    @invariant()
    def admin_sees_every_point_with_its_access_list(self) -> None:
        found, _ = self.collection.get(list(POINT_IDS))
        assert {p.id: tuple(p.tenants) for p in found} == self.model
        counts = {t: sum(t in a for a in self.model.values()) for t in TENANTS}
        assert self.collection.tenants() == {t: c for t, c in counts.items() if c}


TenantIsolation.TestCase.settings = settings(
    max_examples=30,
    stateful_step_count=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_tenant_never_sees_points_outside_its_access_list = TenantIsolation.TestCase


# --- exact search equals numpy brute force ---------------------------------------------------


@FAST
@pytest.mark.parametrize("metric", list(Metric))
@given(data=st.data())
def test_exact_search_equals_numpy_brute_force(metric: Metric, data: st.DataObject) -> None:
    dim = data.draw(st.sampled_from([3, 16, 97]), label="dim")
    count = data.draw(st.integers(1, 40), label="count")
    points = data.draw(vectors(count, dim), label="points")
    if metric is Metric.COSINE:
        points[~points.any(axis=1), 0] = 1.0
    queries = data.draw(vectors(data.draw(st.integers(1, 3), label="m"), dim), label="queries")
    if metric is Metric.COSINE:
        queries[~queries.any(axis=1), 0] = 1.0
    ids = [f"doc-{i}" for i in range(count)]
    access = data.draw(
        st.lists(st.lists(st.sampled_from(TENANTS), max_size=2), min_size=count, max_size=count),
        label="access",
    )
    deleted = data.draw(st.sets(st.sampled_from(ids), max_size=count), label="deleted")
    tenant = data.draw(st.sampled_from((None, *TENANTS)), label="tenant")
    k = data.draw(st.integers(1, count + 3), label="k")

    with fresh_database() as database:
        collection = database.create_collection("docs", dim, metric)
        collection.upsert(ids, points, tenants=access)
        collection.delete(sorted(deleted))
        results = collection.search(queries, k, tenant=tenant)

    oracle = brute_force_scores(metric, queries, points)
    candidates = [
        i
        for i, point_id in enumerate(ids)
        if point_id not in deleted and (tenant is None or tenant in access[i])
    ]
    for q, hits in enumerate(results):
        score_of = {ids[i]: float(oracle[q, i]) for i in candidates}
        q_norm = float(np.linalg.norm(queries[q]))
        x_norm = float(np.linalg.norm(points, axis=1).max())
        scale = {
            Metric.COSINE: 1.0,
            Metric.IP: 1.0 + q_norm * x_norm,
            Metric.L2: (1.0 + q_norm + x_norm) ** 2,
        }[metric]
        tol = 8 * EPS32 * dim * scale
        assert_valid_top_k(hits, k, score_of, higher_is_better=metric.higher_is_better, tol=tol)


# --- save -> reload gives identical results --------------------------------------------------


@HEAVY
@given(data=st.data(), metric=st.sampled_from(list(Metric)))
def test_reload_gives_identical_results(data: st.DataObject, metric: Metric) -> None:
    schema = data.draw(schemas(), label="schema")
    first = data.draw(operations(DIM, schema, max_size=8), label="first")
    then = data.draw(st.lists(upserts(DIM, schema), max_size=3), label="then")
    node = data.draw(filters_for(schema), label="filter")
    queries = data.draw(grid_vectors(2, DIM), label="queries")
    written = sorted({i for op in first if isinstance(op, Upsert) for i in op.ids})
    grants = data.draw(
        st.lists(
            st.tuples(st.sampled_from(TENANTS), st.sampled_from(written), st.booleans()),
            min_size=1,
            max_size=5,
        ),
        label="grants",
    )
    dropped = data.draw(st.sampled_from((None, *TENANTS)), label="dropped tenant")
    delete_orphans = data.draw(st.booleans(), label="delete orphaned points")
    with fresh_database() as kept:
        directory = scratch_dir("vecdb-reload-")
        try:
            reloaded_db = Database(directory)
            live = kept.create_collection("docs", DIM, metric, schema)
            reloaded = reloaded_db.create_collection("docs", DIM, metric, schema)
            for collection in (live, reloaded):
                run(collection, first)
                for tenant, point_id, grant in grants:
                    collection.set_access(tenant, [point_id], grant=grant)
                if dropped is not None:
                    collection.drop_tenant(dropped, delete_orphaned_points=delete_orphans)
            before = snapshot(reloaded, queries, node)
            reloaded_db.close()

            reloaded_db = Database(directory)
            reloaded = reloaded_db.collection("docs")
            assert reloaded.settings == live.settings
            assert snapshot(reloaded, queries, node) == before
            # a truncated ranking may only swap points of equal score
            full = reloaded.search(queries, len(POINT_IDS))
            for complete, hits in zip(full, reloaded.search(queries, 2), strict=True):
                score_of = dict(zip(complete.ids, map(float, complete.scores), strict=True))
                assert_valid_top_k(
                    hits, 2, score_of, higher_is_better=metric.higher_is_better, tol=0.0
                )
            # writes after the restart land where they would have without it
            for op in then:
                apply(live, op)
                apply(reloaded, op)
            assert snapshot(reloaded, queries, node) == snapshot(live, queries, node)
            reloaded_db.close()
        finally:
            shutil.rmtree(directory, ignore_errors=True)


@FAST
@given(schema=schemas(), data=st.data())
def test_attributes_read_back_as_written_before_and_after_reload(
    schema: dict[str, AttributeType], data: st.DataObject
) -> None:
    attributes = data.draw(st.lists(attributes_for(schema), min_size=1, max_size=6))
    ids = [f"p{i}" for i in range(len(attributes))]
    directory = scratch_dir("vecdb-attrs-")
    try:
        with Database(directory) as database:
            collection = database.create_collection("docs", 3, "l2", schema)
            collection.upsert(ids, np.ones((len(ids), 3), np.float32), attributes)
            written, _ = collection.get(ids)
        with Database(directory) as database:
            read_back, _ = database.collection("docs").get(ids)
        for found in (written, read_back):
            assert [p.attributes for p in found] == attributes
            for point, expected in zip(found, attributes, strict=True):
                for name, value in expected.items():
                    assert type(point.attributes[name]) is type(value), name
    finally:
        shutil.rmtree(directory, ignore_errors=True)
