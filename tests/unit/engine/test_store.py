"""The SQLite store: settings and pragmas, what survives a reopen, and transactions."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from vecdb.engine import Database
from vecdb.engine import filters as flt
from vecdb.engine.database import STORE_FILE
from vecdb.engine.schema import AttributeType, CollectionSettings, Metric
from vecdb.engine.store import Store

SCHEMA = {
    "year": "int",
    "score": "float",
    "lang": "keyword",
    "open": "bool",
    "tags": "keyword_list",
}


def reopen(path: Path) -> Database:
    return Database(path)


def test_store_runs_in_wal_mode_with_full_sync(tmp_path: Path) -> None:
    with Database(tmp_path) as database:
        database.create_collection("docs", 3, "l2")
        (synchronous,) = database.store._db.execute("PRAGMA synchronous").fetchone()
        assert synchronous == 2  # FULL
    raw = sqlite3.connect(tmp_path / STORE_FILE)
    try:
        (mode,) = raw.execute("PRAGMA journal_mode").fetchone()
    finally:
        raw.close()
    assert mode == "wal"


def test_acknowledged_writes_are_visible_to_another_connection(tmp_path: Path) -> None:
    database = Database(tmp_path)
    docs = database.create_collection("docs", 3, "l2")
    _, sequence = docs.upsert(["a"], [[1.0, 2.0, 3.0]], [{}], [["acme"]])
    raw = sqlite3.connect(tmp_path / STORE_FILE)
    try:
        cid = docs.cid
        rows = raw.execute(f"SELECT id, tenants FROM points_{cid}").fetchall()
        (stored_sequence,) = raw.execute(
            "SELECT sequence FROM collections WHERE cid = ?", (cid,)
        ).fetchone()
    finally:
        raw.close()
        database.close()
    assert [(i, json.loads(t)) for i, t in rows] == [("a", ["acme"])]
    assert stored_sequence == sequence


def test_collections_and_settings_survive_a_reopen(tmp_path: Path) -> None:
    with Database(tmp_path) as database:
        database.create_collection("docs", 97, "cosine", SCHEMA)
        database.create_collection("gone", 3, "l2")
        database.create_collection("flat", 256, "IP")
        database.drop_collection("gone")
    with reopen(tmp_path) as database:
        assert [c.name for c in database.collections()] == ["docs", "flat"]
        docs = database.collection("docs")
        assert docs.settings == CollectionSettings.create("docs", 97, Metric.COSINE, SCHEMA)
        assert docs.settings.schema["tags"] is AttributeType.KEYWORD_LIST
        assert database.collection("flat").metric is Metric.IP
        # the dropped name is free again
        database.create_collection("gone", 5, "l2")
    with reopen(tmp_path) as database:
        assert database.collection("gone").dim == 5
        assert len(database.collection("gone")) == 0


@pytest.mark.parametrize("dim", [3, 97, 256])
@pytest.mark.parametrize("batch", [1, 7, 300])
def test_points_survive_a_reopen_exactly(tmp_path: Path, dim: int, batch: int) -> None:
    rng = np.random.default_rng(dim + batch)
    vectors = rng.standard_normal((batch, dim)).astype(np.float32)
    ids = [f"doc-{i}" for i in range(batch)]
    attributes = [
        {
            "year": int(i),
            "score": float(i) / 3,
            "lang": "en" if i % 2 else "de",
            "open": bool(i % 3),
            "tags": ["t", str(i)],
        }
        for i in range(batch)
    ]
    tenants = [["acme"] if i % 2 else ["acme", "globex"] for i in range(batch)]
    query = rng.standard_normal((2, dim)).astype(np.float32)
    with Database(tmp_path) as database:
        docs = database.create_collection("docs", dim, "l2", SCHEMA)
        docs.upsert(ids, vectors, attributes, tenants)
        docs.delete(ids[::3])
        expected = [(h.ids, h.scores.tolist()) for h in docs.search(query, 10)]
        sequence = docs.sequence
    with reopen(tmp_path) as database:
        docs = database.collection("docs")
        assert docs.sequence == sequence
        kept = [i for n, i in enumerate(ids) if n % 3]
        assert len(docs) == len(kept)
        found, missing = docs.get(ids, with_vectors=True)
        assert missing == ids[::3]
        assert [p.id for p in found] == kept
        for point in found:
            n = ids.index(point.id)
            assert point.vector is not None
            np.testing.assert_array_equal(point.vector, vectors[n])
            assert point.attributes == attributes[n]
            assert type(point.attributes["score"]) is float
            assert point.tenants == tenants[n]
        assert [(h.ids, h.scores.tolist()) for h in docs.search(query, 10)] == expected
        counts = {
            "acme": len(kept),
            "globex": sum(1 for n in range(batch) if n % 3 and not n % 2),
        }
        assert docs.tenants() == {t: c for t, c in counts.items() if c}


def test_access_changes_and_tenant_drops_survive_a_reopen(tmp_path: Path) -> None:
    with Database(tmp_path) as database:
        docs = database.create_collection("docs", 3, "l2")
        docs.upsert(
            ["a", "b", "c"], np.eye(3, dtype=np.float32), tenants=[["acme"], ["acme", "globex"], []]
        )
        docs.set_access("initech", ["a", "c"], grant=True)
        docs.set_access("acme", ["b"], grant=False)
        docs.drop_tenant("globex", delete_orphaned_points=False)
        docs.drop_tenant("initech", delete_orphaned_points=True)
    with reopen(tmp_path) as database:
        docs = database.collection("docs")
        found, missing = docs.get(["a", "b", "c"])
        assert missing == ["c"]
        assert [(p.id, p.tenants) for p in found] == [("a", ["acme"]), ("b", [])]
        assert docs.tenants() == {"acme": 1}
        (hits,) = docs.search([1.0, 0.0, 0.0], 5, tenant="acme")
        assert hits.ids == ["a"]


def test_rows_are_not_reused_after_a_reopen(tmp_path: Path) -> None:
    with Database(tmp_path) as database:
        docs = database.create_collection("docs", 3, "ip")
        docs.upsert(["a", "b", "c"], np.ones((3, 3), np.float32))
        docs.delete(["c"])  # the highest row is gone; the next write must not reuse it
        docs.upsert(["a"], np.ones((1, 3), np.float32))  # a moves behind b
    with reopen(tmp_path) as database:
        docs = database.collection("docs")
        docs.upsert(["d"], np.ones((1, 3), np.float32))
        (hits,) = docs.search(np.ones(3), 10)
        assert hits.ids == ["b", "a", "d"]
        assert hits.rows.tolist() == sorted(hits.rows.tolist())
        assert len(set(hits.rows.tolist())) == 3
    with reopen(tmp_path) as database:
        (hits,) = database.collection("docs").search(np.ones(3), 10)
        assert hits.ids == ["b", "a", "d"]


def test_a_filter_works_the_same_after_a_reopen(tmp_path: Path) -> None:
    node = flt.from_json(
        {"or": [{"field": "tags", "contains": "x"}, {"not": {"field": "year", "gte": 2}}]}
    )
    with Database(tmp_path) as database:
        docs = database.create_collection("docs", 3, "l2", SCHEMA)
        docs.upsert(
            ["a", "b", "c", "d"],
            np.eye(4, 3, dtype=np.float32) + 0.5,
            [{"year": 1}, {"year": 2, "tags": ["x"]}, {"year": 3}, {}],
        )
        (before,) = docs.search(np.zeros(3), 10, filter=node)
    with reopen(tmp_path) as database:
        (after,) = database.collection("docs").search(np.zeros(3), 10, filter=node)
    assert sorted(before.ids) == ["a", "b", "d"]
    assert after.ids == before.ids
    assert after.scores.tolist() == before.scores.tolist()


def test_a_failed_transaction_leaves_nothing_behind(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.sqlite3")
    settings = CollectionSettings.create("docs", 2, "l2")
    cid = store.create_collection(settings)
    vectors = store.vector_file(cid, 2)
    # vectors reach the file before the commit; the rows of a request that never committed
    # must not come back
    vectors.write(0, np.array([[9.0, 9.0]], np.float32))
    with pytest.raises(RuntimeError, match="disk on fire"), store.transaction() as db:
        Store.write_points(db, cid, [(0, "a", None, None)], 1)
        raise RuntimeError("disk on fire")
    vectors.write(5, np.array([[1.0, 2.0]], np.float32))
    with store.transaction() as db:
        sequence = Store.write_points(db, cid, [(5, "b", '{"x": 1}', '["t"]')], 6)
    store.close()

    store = Store(tmp_path / "store.sqlite3")
    try:
        (stored,) = store.collections()
        loaded = store.load_points(cid)
        matrix = store.vector_file(cid, 2).read(stored.next_row)
    finally:
        store.close()
    assert loaded.ids == ["b"]
    assert loaded.rows.tolist() == [5]
    assert loaded.attributes == [{"x": 1}]
    assert loaded.tenants == [["t"]]
    np.testing.assert_array_equal(matrix[loaded.rows], [[1.0, 2.0]])
    assert stored.next_row == 6
    assert stored.sequence == sequence == 1


def test_load_points_of_an_empty_collection(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.sqlite3")
    try:
        cid = store.create_collection(CollectionSettings.create("docs", 4, "l2"))
        loaded = store.load_points(cid)
        matrix = store.vector_file(cid, 4).read(0)
    finally:
        store.close()
    assert loaded.ids == []
    assert matrix.shape == (0, 4)
    assert loaded.rows.dtype == np.int64


def test_sequence_counts_every_committed_write(tmp_path: Path) -> None:
    with Database(tmp_path) as database:
        docs = database.create_collection("docs", 2, "l2")
        sequences = [docs.upsert(["a"], [[1.0, 0.0]])[1]]
        docs.set_access("acme", ["a"], grant=True)
        sequences.append(docs.sequence)
        docs.delete(["a"])
        sequences.append(docs.sequence)
        # writes that change nothing do not commit
        docs.delete(["a"])
        docs.set_access("acme", ["a"], grant=True)
        sequences.append(docs.sequence)
    assert sequences == [1, 2, 3, 3]
    with reopen(tmp_path) as database:
        assert database.collection("docs").sequence == 3


def test_dropping_a_collection_removes_its_derived_files(tmp_path: Path) -> None:
    with Database(tmp_path) as database:
        docs = database.create_collection("docs", 2, "l2")
        artefacts = docs.artefact_dir
        assert artefacts is not None
        artefacts.mkdir(parents=True, exist_ok=True)
        (artefacts / "index.bin").write_bytes(b"x")
        database.drop_collection("docs")
        assert not artefacts.exists()


def test_read_into_fills_rows_in_place_and_refuses_a_wrong_buffer(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.sqlite3")
    try:
        cid = store.create_collection(CollectionSettings.create("docs", 3, "l2"))
        vectors = store.vector_file(cid, 3)
        vectors.write(1, np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], np.float32))
        out = np.full((5, 3), 7.0, np.float32)
        vectors.read_into(out, 3)
        with pytest.raises(ValueError, match="C-contiguous float32"):
            vectors.read_into(np.zeros((5, 2), np.float32), 3)
        with pytest.raises(ValueError, match="do not fit"):
            vectors.read_into(np.zeros((2, 3), np.float32), 3)
    finally:
        store.close()
    # rows 0..2 come from the file (row 0 never written reads as zeros); rows 3.. untouched
    np.testing.assert_array_equal(out[:3], [[0, 0, 0], [1, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(out[3:], np.full((2, 3), 7.0))
