"""Tenant-scoped search through the collection once its index (and tenant tree) is built."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vecdb.engine import Database, SearchOptions
from vecdb.engine.filters import from_json
from vecdb.engine.planner import PlannerSettings

DIM = 24
N = 6000


def _data(seed: int = 0) -> tuple[np.ndarray, list[list[str]]]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((30, DIM)).astype(np.float32) * 3
    vectors = centres[rng.integers(0, 30, N)] + rng.standard_normal((N, DIM)).astype(np.float32)
    sizes = np.array([2000, 1500, 900, 400, 150, 50])
    owner = rng.choice(len(sizes), N, p=sizes / sizes.sum())
    tenants = [
        [f"t{o}"] + ([f"t{(o + 1) % 6}"] if i % 10 == 0 else []) for i, o in enumerate(owner)
    ]
    return vectors.astype(np.float32), tenants


def _visible(database: Database, tenant: str) -> set[str]:
    collection = database.collection("c")
    every = [f"p{i}" for i in range(N)] + ["new0", "new1"]
    return {p.id for p in collection.get(every, tenant=tenant)[0]}


@pytest.mark.slow
def test_tenant_tree_answers_tenant_queries_and_stays_isolated(tmp_path: Path) -> None:
    vectors, tenants = _data()
    ids = [f"p{i}" for i in range(N)]
    rng = np.random.default_rng(1)
    queries = vectors[rng.integers(0, N, 30)] + 0.1
    with Database(tmp_path / "d") as database:
        collection = database.create_collection("c", DIM, "l2", {"group": "int"})
        collection.upsert(ids, vectors, [{"group": i % 4} for i in range(N)], tenants)
        collection.build_index(recall_target=0.9)
        assert collection.tenant_index is not None
        # small data: pin an index plan (the tenant tree takes its place) so tenant queries go
        # through the tree instead of the exact scan the cost model would pick
        collection.planner = PlannerSettings(exact_rows=20, force="index+selector")
        for tenant in ("t0", "t2"):
            exact = collection.search(queries, 10, tenant=tenant, options=SearchOptions(exact=True))
            fast = collection.search(queries, 10, tenant=tenant)
            assert fast[0].explain is not None and fast[0].explain.plan == "tenant-tree"
            recall = np.mean(
                [len(set(a.ids) & set(b.ids)) / 10 for a, b in zip(exact, fast, strict=True)]
            )
            assert recall >= 0.9, (tenant, recall)
        # writes after the build keep the tree in step: grants, revokes, deletes, new points
        collection.set_access("t0", ["p1", "p2", "p3"], grant=False)
        collection.set_access("t0", ["p5"], grant=True)
        collection.delete(["p7", "p8"])
        collection.upsert(["new0", "new1"], queries[:2], tenants=[["t0"], ["t1"]])
        allowed = _visible(database, "t0")
        assert "new0" in allowed and "new1" not in allowed
        group_filter = from_json({"field": "group", "eq": 1})
        for hits in collection.search(queries, 50, tenant="t0"):
            assert set(hits.ids) <= allowed
        for hits in collection.search(queries, 50, tenant="t0", filter=group_filter):
            assert set(hits.ids) <= allowed
            assert all(int(i[1:]) % 4 == 1 for i in hits.ids if i.startswith("p"))
        assert collection.search(queries[:1], 1, tenant="t0")[0].ids == ["new0"]
        before = [h.ids for h in collection.search(queries, 10, tenant="t0")]
    # a restart loads the saved tree and reconciles the writes made after it was saved
    with Database(tmp_path / "d") as database:
        collection = database.collection("c")
        assert collection.tenant_index is not None
        collection.planner = PlannerSettings(exact_rows=20, force="index+selector")
        after = [h.ids for h in collection.search(queries, 10, tenant="t0")]
        allowed = _visible(database, "t0")
        for ids_after in after:
            assert set(ids_after) <= allowed
        overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(before, after, strict=True)])
        assert overlap >= 0.9
