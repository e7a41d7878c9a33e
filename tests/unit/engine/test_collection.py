"""Collections: upsert / get / delete, tenant access, tenant-keyed writes, validation, search."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from vecdb.engine import Collection, Database
from vecdb.engine import filters as flt
from vecdb.engine.collection import MAX_ID_LENGTH, top_k
from vecdb.engine.errors import (
    AlreadyExists,
    DimensionMismatch,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)

SCHEMA = {"year": "int", "lang": "keyword", "tags": "keyword_list"}


@pytest.fixture
def database(tmp_path: Path) -> Database:
    db = Database(tmp_path / "data")
    yield db
    db.close()


@pytest.fixture
def docs(database: Database) -> Collection:
    return database.create_collection("docs", 3, "l2", SCHEMA)


def unit(i: int, dim: int = 3) -> np.ndarray:
    vector = np.zeros(dim, np.float32)
    vector[i] = 1.0
    return vector


def ids_of(collection: Collection, query: object, k: int = 100, **kwargs: object) -> list[str]:
    (hits,) = collection.search(query, k, **kwargs)  # type: ignore[arg-type]
    return hits.ids


# --- collections -----------------------------------------------------------------------------


def test_create_list_and_drop_collections(database: Database) -> None:
    database.create_collection("b", 2, "ip")
    database.create_collection("a", 3, "l2", {"year": "int"})
    assert [c.name for c in database.collections()] == ["a", "b"]
    assert database.collection("a").dim == 3
    assert database.collection("b").metric.value == "ip"
    database.drop_collection("a")
    assert [c.name for c in database.collections()] == ["b"]


def test_duplicate_collection_is_refused(database: Database) -> None:
    database.create_collection("docs", 3, "l2")
    with pytest.raises(AlreadyExists, match="collection 'docs' already exists"):
        database.create_collection("docs", 4, "ip")
    assert database.collection("docs").dim == 3


def test_unknown_collection_lists_the_known_ones(database: Database) -> None:
    with pytest.raises(
        NotFound, match=re.escape("collection 'nope' does not exist (collections: none)")
    ):
        database.collection("nope")
    database.create_collection("b", 2, "l2")
    database.create_collection("a", 2, "l2")
    with pytest.raises(NotFound, match=re.escape("(collections: a, b)")):
        database.drop_collection("nope")


# --- upsert and get --------------------------------------------------------------------------


@pytest.mark.parametrize("dim", [3, 97, 256])
@pytest.mark.parametrize("batch", [1, 7, 64])
def test_upsert_then_get_returns_exact_vectors(database: Database, dim: int, batch: int) -> None:
    collection = database.create_collection("docs", dim, "cosine")
    vectors = np.random.default_rng(dim * batch).standard_normal((batch, dim)).astype(np.float32)
    ids = [f"doc-{i}" for i in range(batch)]
    written, sequence = collection.upsert(ids, vectors)
    assert written == batch
    assert sequence >= 1
    assert len(collection) == batch
    found, missing = collection.get(ids[::-1], with_vectors=True)
    assert missing == []
    assert [p.id for p in found] == ids[::-1]
    for point, vector in zip(found, vectors[::-1], strict=True):
        assert point.vector is not None
        assert point.vector.dtype == np.float32
        np.testing.assert_array_equal(point.vector, vector)
    # each point is its own nearest neighbour
    for hits, point_id in zip(collection.search(vectors, 1), ids, strict=True):
        assert hits.ids == [point_id]
        assert hits.scores[0] == pytest.approx(1.0, abs=1e-5)


def test_get_reports_missing_ids_in_order_and_omits_vectors_unless_asked(docs: Collection) -> None:
    docs.upsert(["a", "b"], [unit(0), unit(1)], [{"year": 1}, {}], [["acme"], []])
    found, missing = docs.get(["x", "b", "y", "a"])
    assert [p.id for p in found] == ["b", "a"]
    assert missing == ["x", "y"]
    assert all(p.vector is None for p in found)
    assert found[1].attributes == {"year": 1}
    assert found[1].tenants == ["acme"]
    assert found[0].attributes == {}
    assert found[0].tenants == []


def test_upsert_accepts_numpy_lists_and_a_single_vector(docs: Collection) -> None:
    docs.upsert(["a"], [1.0, 2.0, 3.0])
    docs.upsert(["b"], [[1, 2, 4]])
    docs.upsert(["c"], np.array([[1, 2, 5]], dtype=np.float64))
    found, _ = docs.get(["a", "b", "c"], with_vectors=True)
    assert [p.vector.tolist() for p in found if p.vector is not None] == [
        [1.0, 2.0, 3.0],
        [1.0, 2.0, 4.0],
        [1.0, 2.0, 5.0],
    ]


def test_duplicate_ids_in_one_upsert_last_wins(docs: Collection) -> None:
    written, _ = docs.upsert(
        ["a", "b", "a", "c", "a"],
        [unit(0), unit(1), unit(2), unit(1), [5.0, 5.0, 5.0]],
        [{"year": 1}, {"year": 2}, {"year": 3}, {}, {"lang": "en"}],
        [["t1"], [], ["t2"], [], ["t3", "t3"]],
    )
    assert written == 3
    assert len(docs) == 3
    (a,), _ = docs.get(["a"], with_vectors=True)
    assert a.vector is not None
    assert a.vector.tolist() == [5.0, 5.0, 5.0]
    assert a.attributes == {"lang": "en"}
    assert a.tenants == ["t3"]
    assert docs.tenants() == {"t3": 1}
    assert ids_of(docs, [5.0, 5.0, 5.0], k=1) == ["a"]
    assert ids_of(docs, unit(2), tenant="t2") == []
    assert set(ids_of(docs, unit(0))) == {"a", "b", "c"}


def test_replacing_a_point_replaces_everything_about_it(docs: Collection) -> None:
    docs.upsert(["a"], [unit(0)], [{"year": 1, "tags": ["x"]}], [["acme"]])
    docs.upsert(["a"], [unit(1)], [{"lang": "de"}], [["globex"]])
    (a,), _ = docs.get(["a"], with_vectors=True)
    assert a.vector is not None
    assert a.vector.tolist() == unit(1).tolist()
    assert a.attributes == {"lang": "de"}
    assert a.tenants == ["globex"]
    assert len(docs) == 1
    assert docs.tenants() == {"globex": 1}
    (hits,) = docs.search(unit(1), 5)
    assert hits.ids == ["a"]
    assert hits.scores.tolist() == [0.0]
    assert ids_of(docs, unit(0), filter=flt.Contains("tags", "x")) == []


def test_empty_upsert_writes_nothing(docs: Collection) -> None:
    written, _ = docs.upsert([], np.zeros((0, 3), np.float32))
    assert written == 0
    assert len(docs) == 0


def test_tenant_lists_are_deduplicated_keeping_order(docs: Collection) -> None:
    docs.upsert(["a"], [unit(0)], tenants=[["b", "a", "b"]])
    (a,), _ = docs.get(["a"])
    assert a.tenants == ["b", "a"]


# --- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("vectors", "message"),
    [
        ([[1.0, 2.0]], "vector dimension 2 does not match collection 'docs' (dim 3)"),
        ([[1.0, 2.0, 3.0, 4.0]], "vector dimension 4 does not match collection 'docs' (dim 3)"),
        (np.zeros((2, 3, 1)), "vector dimension 1 does not match collection 'docs' (dim 3)"),
        (np.float32(1.0), "vector dimension 0 does not match collection 'docs' (dim 3)"),
    ],
)
def test_dimension_mismatch_names_both_dimensions(
    docs: Collection, vectors: object, message: str
) -> None:
    with pytest.raises(DimensionMismatch, match=re.escape(message)):
        docs.upsert(["a"], vectors)
    assert len(docs) == 0


def test_query_dimension_mismatch(docs: Collection) -> None:
    with pytest.raises(
        DimensionMismatch,
        match=re.escape("query vector dimension 5 does not match collection 'docs' (dim 3)"),
    ):
        docs.search(np.ones(5), 3)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf"), 1e39])
@pytest.mark.parametrize("metric", ["cosine", "ip", "l2"])
def test_non_finite_vectors_are_refused_naming_the_row(
    database: Database, metric: str, bad: float
) -> None:
    collection = database.create_collection("docs", 3, metric)
    vectors = np.ones((3, 3), np.float64)
    vectors[2, 1] = bad
    with pytest.raises(InvalidArgument, match=re.escape("vector 2 contains NaN or infinity")):
        collection.upsert(["a", "b", "c"], vectors)
    assert len(collection) == 0
    with pytest.raises(InvalidArgument, match="query vector 0 contains NaN or infinity"):
        collection.search([1.0, bad, 0.0], 1)


def test_zero_vectors_are_refused_only_for_cosine(database: Database) -> None:
    cosine = database.create_collection("cos", 3, "cosine")
    with pytest.raises(
        InvalidArgument,
        match=re.escape("vector 1 is all zeros: cosine collections need non-zero vectors"),
    ):
        cosine.upsert(["a", "b"], [unit(0), np.zeros(3)])
    with pytest.raises(InvalidArgument, match="query vector 0 is all zeros"):
        cosine.search(np.zeros(3), 1)
    for metric in ("ip", "l2"):
        other = database.create_collection(metric, 3, metric)
        assert other.upsert(["z"], [np.zeros(3)])[0] == 1
        assert ids_of(other, np.zeros(3)) == ["z"]


@pytest.mark.parametrize("bad_id", ["", "x" * (MAX_ID_LENGTH + 1), None, 7])
def test_invalid_point_ids_are_refused(docs: Collection, bad_id: object) -> None:
    with pytest.raises(InvalidArgument, match=re.escape(f"invalid point id {bad_id!r}")):
        docs.upsert([bad_id], [unit(0)])  # type: ignore[list-item]
    with pytest.raises(InvalidArgument, match="ids are non-empty strings of at most 512"):
        docs.get([bad_id])  # type: ignore[list-item]


def test_longest_id_is_accepted(docs: Collection) -> None:
    long_id = "x" * MAX_ID_LENGTH
    docs.upsert([long_id], [unit(0)])
    assert [p.id for p in docs.get([long_id])[0]] == [long_id]


def test_counts_of_ids_vectors_attributes_and_tenants_must_agree(docs: Collection) -> None:
    with pytest.raises(InvalidArgument, match="2 ids but 1 vectors: they must match"):
        docs.upsert(["a", "b"], [unit(0)])
    with pytest.raises(InvalidArgument, match="2 ids but 1 attribute sets and 2 tenant lists"):
        docs.upsert(["a", "b"], [unit(0), unit(1)], [{}], [[], []])
    with pytest.raises(InvalidArgument, match="2 ids but 2 attribute sets and 3 tenant lists"):
        docs.upsert(["a", "b"], [unit(0), unit(1)], [{}, {}], [[], [], []])
    assert len(docs) == 0


def test_bad_attributes_or_tenants_write_nothing(docs: Collection) -> None:
    with pytest.raises(InvalidArgument, match="point 'b': attribute 'year' is int, got str 'x'"):
        docs.upsert(["a", "b"], [unit(0), unit(1)], [{"year": 1}, {"year": "x"}])
    with pytest.raises(InvalidArgument, match="invalid tenant name 'bad tenant'"):
        docs.upsert(["a", "b"], [unit(0), unit(1)], tenants=[["ok"], ["bad tenant"]])
    assert len(docs) == 0
    assert docs.get(["a", "b"])[1] == ["a", "b"]


def test_search_refuses_an_invalid_tenant_name(docs: Collection) -> None:
    with pytest.raises(InvalidArgument, match="invalid tenant name ''"):
        docs.search(unit(0), 1, tenant="")


# --- delete ----------------------------------------------------------------------------------


def test_delete_counts_existing_ids_once_and_ignores_unknown(docs: Collection) -> None:
    docs.upsert(["a", "b", "c"], [unit(0), unit(1), unit(2)], tenants=[["t"], ["t"], []])
    assert docs.delete(["a", "nope", "a", "c"]) == 2
    assert docs.delete(["a"]) == 0
    assert docs.delete([]) == 0
    assert len(docs) == 1
    assert docs.get(["a", "b", "c"])[1] == ["a", "c"]
    assert ids_of(docs, unit(0)) == ["b"]
    assert docs.tenants() == {"t": 1}


def test_reinserting_a_deleted_id_brings_it_back(docs: Collection) -> None:
    docs.upsert(["a"], [unit(0)], [{"year": 1}])
    docs.delete(["a"])
    docs.upsert(["a"], [unit(1)])
    (a,), _ = docs.get(["a"])
    assert a.attributes == {}
    assert ids_of(docs, unit(1)) == ["a"]


def test_search_over_mostly_deleted_rows(docs: Collection) -> None:
    ids = [f"p{i}" for i in range(40)]
    vectors = np.arange(120, dtype=np.float32).reshape(40, 3)
    docs.upsert(ids, vectors)
    docs.delete(ids[:35])
    (hits,) = docs.search(vectors[0], 10)
    assert hits.ids == ids[35:]
    assert hits.rows.tolist() == list(range(35, 40))


# --- grant / revoke / tenants ----------------------------------------------------------------


def test_grant_and_revoke_change_who_sees_a_point(docs: Collection) -> None:
    docs.upsert(["a", "b"], [unit(0), unit(1)], tenants=[["acme"], []])
    assert ids_of(docs, unit(0), tenant="globex") == []
    assert docs.set_access("globex", ["a", "b", "nope", "a"], grant=True) == 2
    assert docs.set_access("globex", ["a"], grant=True) == 0
    assert set(ids_of(docs, unit(0), tenant="globex")) == {"a", "b"}
    assert docs.get(["a"])[0][0].tenants == ["acme", "globex"]
    assert docs.tenants() == {"acme": 1, "globex": 2}

    assert docs.set_access("acme", ["a", "b"], grant=False) == 1
    assert docs.set_access("acme", ["a"], grant=False) == 0
    assert ids_of(docs, unit(0), tenant="acme") == []
    found, missing = docs.get(["a", "b"], tenant="acme")
    assert found == []
    assert missing == ["a", "b"]
    assert docs.tenants() == {"globex": 2}


def test_get_with_tenant_hides_others_points(docs: Collection) -> None:
    docs.upsert(
        ["a", "b", "c"],
        [unit(0), unit(1), unit(2)],
        tenants=[["acme"], ["globex"], ["acme", "globex"]],
    )
    found, missing = docs.get(["a", "b", "c"], tenant="acme")
    assert [p.id for p in found] == ["a", "c"]
    assert missing == ["b"]


def test_set_access_validates_the_tenant(docs: Collection) -> None:
    with pytest.raises(InvalidArgument, match="invalid tenant name 'a b'"):
        docs.set_access("a b", ["x"], grant=True)


@pytest.mark.parametrize("delete_orphaned_points", [False, True])
def test_drop_tenant(docs: Collection, delete_orphaned_points: bool) -> None:
    docs.upsert(
        ["own", "shared", "other", "public"],
        [unit(0), unit(1), unit(2), unit(0)],
        tenants=[["acme"], ["acme", "globex"], ["globex"], []],
    )
    revoked, deleted = docs.drop_tenant("acme", delete_orphaned_points=delete_orphaned_points)
    assert revoked == 2
    assert deleted == (1 if delete_orphaned_points else 0)
    assert ids_of(docs, unit(0), tenant="acme") == []
    assert docs.tenants() == {"globex": 2}
    assert set(ids_of(docs, unit(1), tenant="globex")) == {"shared", "other"}
    found, missing = docs.get(["own", "shared", "public"])
    if delete_orphaned_points:
        assert missing == ["own"]
        assert len(docs) == 3
    else:
        assert missing == []
        assert found[0].tenants == []
        assert len(docs) == 4
    # a point that never had a tenant is not an orphan of the drop
    assert "public" in {p.id for p in found}
    assert docs.drop_tenant("acme", delete_orphaned_points=True) == (0, 0)


def test_a_dropped_tenant_can_be_granted_again(docs: Collection) -> None:
    docs.upsert(["a"], [unit(0)], tenants=[["acme"]])
    docs.drop_tenant("acme", delete_orphaned_points=False)
    assert docs.set_access("acme", ["a"], grant=True) == 1
    assert ids_of(docs, unit(0), tenant="acme") == ["a"]
    assert docs.tenants() == {"acme": 1}


# --- tenant-keyed writes ---------------------------------------------------------------------


def test_a_tenant_writer_gets_its_tenant_as_the_access_list(docs: Collection) -> None:
    docs.upsert(["a", "b"], [unit(0), unit(1)], tenants=[[], ["acme"]], acting_tenant="acme")
    docs.upsert(["c"], [unit(2)], acting_tenant="acme")
    found, _ = docs.get(["a", "b", "c"])
    assert [p.tenants for p in found] == [["acme"], ["acme"], ["acme"]]
    # its own points it may replace and delete
    docs.upsert(["a"], [unit(2)], tenants=[["acme", "acme"]], acting_tenant="acme")
    assert docs.delete(["b", "nope"], acting_tenant="acme") == 1


@pytest.mark.parametrize("access", [["globex"], ["acme", "globex"], ["globex", "acme"]])
def test_a_tenant_writer_may_only_write_its_own_access_list(
    docs: Collection, access: list[str]
) -> None:
    with pytest.raises(
        PermissionDenied,
        match=re.escape(
            f"a key for tenant 'acme' may only write points whose access list is exactly "
            f"['acme'], got {access!r}"
        ),
    ):
        docs.upsert(
            ["mine", "x"], [unit(0), unit(1)], tenants=[["acme"], access], acting_tenant="acme"
        )
    assert len(docs) == 0


@pytest.mark.parametrize("owner", [["globex"], ["acme", "globex"], []])
def test_a_tenant_writer_may_not_replace_or_delete_others_points(
    docs: Collection, owner: list[str]
) -> None:
    docs.upsert(["theirs"], [unit(0)], [{"year": 1}], tenants=[owner])
    docs.upsert(["mine"], [unit(1)], acting_tenant="acme")
    with pytest.raises(
        PermissionDenied,
        match=re.escape(
            "a key for tenant 'acme' may not replace point 'theirs': "
            "it is not visible to that tenant alone"
        ),
    ):
        docs.upsert(["new", "theirs"], [unit(2), unit(2)], acting_tenant="acme")
    with pytest.raises(PermissionDenied, match="may not delete point 'theirs'"):
        docs.delete(["mine", "theirs"], acting_tenant="acme")
    # nothing of either request happened
    found, missing = docs.get(["theirs", "mine", "new"], with_vectors=True)
    assert missing == ["new"]
    assert found[0].tenants == owner
    assert found[0].attributes == {"year": 1}
    assert found[0].vector is not None
    assert found[0].vector.tolist() == unit(0).tolist()
    assert len(docs) == 2


# --- search ----------------------------------------------------------------------------------


def test_scores_per_metric(database: Database) -> None:
    points = np.array([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [3.0, 4.0, 0.0]], np.float32)
    query = np.array([[2.0, 0.0, 0.0]], np.float32)
    expected = {
        # best first; l2 reports the squared distance
        "cosine": (["a", "c", "b"], [1.0, 0.6, 0.0]),
        "ip": (["c", "a", "b"], [6.0, 2.0, 0.0]),
        "l2": (["a", "c", "b"], [1.0, 17.0, 8.0]),
    }
    for metric, (order, scores) in expected.items():
        collection = database.create_collection(metric, 3, metric)
        collection.upsert(["a", "b", "c"], points)
        (hits,) = collection.search(query, 3)
        if metric == "l2":
            order, scores = ["a", "b", "c"], [1.0, 8.0, 17.0]
        assert hits.ids == order, metric
        np.testing.assert_allclose(hits.scores, scores, rtol=1e-6, atol=1e-6)
        assert hits.scores.dtype == np.float32


def test_l2_scores_are_never_negative(database: Database) -> None:
    collection = database.create_collection("docs", 97, "l2")
    vectors = np.random.default_rng(1).standard_normal((7, 97)).astype(np.float32) * 1000
    collection.upsert([str(i) for i in range(7)], vectors)
    squared_norm = float((vectors.astype(np.float64) ** 2).sum(axis=1).max())
    for point_id, hits in enumerate(collection.search(vectors, 7)):
        assert (hits.scores >= 0).all()
        assert hits.ids[0] == str(point_id)
        # float32 cancellation in |q|^2 - 2 q.x + |x|^2 leaves a tiny self-distance
        assert hits.scores[0] <= 1e-6 * squared_norm


@pytest.mark.parametrize("batch", [1, 7, 33])
def test_one_result_list_per_query(docs: Collection, batch: int) -> None:
    docs.upsert(["a", "b", "c"], [unit(0), unit(1), unit(2)])
    queries = np.stack([unit(i % 3) for i in range(batch)])
    results = docs.search(queries, 1)
    assert [hits.ids for hits in results] == [[["a", "b", "c"][i % 3]] for i in range(batch)]


@pytest.mark.parametrize("k", [1, 4, 5, 9])
def test_k_above_the_candidate_count_returns_every_candidate_without_padding(
    docs: Collection, k: int
) -> None:
    docs.upsert([f"p{i}" for i in range(5)], np.arange(15, dtype=np.float32).reshape(5, 3))
    (hits,) = docs.search(np.zeros(3), k)
    assert hits.ids == [f"p{i}" for i in range(min(k, 5))]
    assert len(hits.scores) == len(hits.rows) == min(k, 5)
    assert np.isfinite(hits.scores).all()
    assert "" not in hits.ids


def test_search_of_an_empty_collection_returns_no_hits(docs: Collection) -> None:
    (hits,) = docs.search(unit(0), 10)
    assert hits.ids == []
    assert len(hits.scores) == 0
    docs.upsert(["a"], [unit(0)], tenants=[["acme"]])
    assert ids_of(docs, unit(0), tenant="globex") == []
    assert ids_of(docs, unit(0), filter=flt.Equals("lang", "en")) == []


def test_equal_scores_come_in_insertion_order(database: Database) -> None:
    collection = database.create_collection("docs", 3, "ip")
    ids = [f"p{i}" for i in range(20)]
    collection.upsert(ids[10:], np.tile(unit(0), (10, 1)))
    collection.upsert(ids[:10], np.tile(unit(0), (10, 1)))
    order = ids[10:] + ids[:10]
    assert ids_of(collection, unit(0), k=20) == order
    for k in (1, 3, 7):
        assert ids_of(collection, unit(0), k=k) == order[:k]
    # a re-inserted point moves to the end of its tie
    collection.upsert(["p15"], [unit(0)])
    assert ids_of(collection, unit(0), k=20)[-1] == "p15"


def test_ties_at_the_cut_keep_the_earliest_rows(database: Database) -> None:
    collection = database.create_collection("docs", 3, "ip")
    ids = [f"p{i}" for i in range(50)]
    collection.upsert(ids, np.tile(unit(0), (50, 1)))
    collection.delete(["p0", "p1"])
    full = ids_of(collection, unit(0), k=48)
    assert full == ids[2:]
    for k in (3, 4, 10):
        assert ids_of(collection, unit(0), k=k) == full[:k]


def test_top_k_pads_with_minus_infinity_and_minus_one() -> None:
    scores = np.array([[0.5, 2.0, -np.inf], [1.0, 1.0, 3.0]], np.float32)
    rows = np.array([10, 11, 12], np.int64)
    best, picked = top_k(scores, rows, 4)
    assert picked.tolist() == [[11, 10, -1, -1], [12, 10, 11, -1]]
    assert best[0].tolist() == [2.0, 0.5, -np.inf, -np.inf]
    assert best[1].tolist() == [3.0, 1.0, 1.0, -np.inf]
    best, picked = top_k(np.zeros((2, 0), np.float32), np.zeros(0, np.int64), 3)
    assert picked.tolist() == [[-1, -1, -1], [-1, -1, -1]]
    best, picked = top_k(scores, rows, 0)
    assert picked.shape == (2, 0)


def test_filter_and_tenant_combine(docs: Collection) -> None:
    docs.upsert(
        ["a", "b", "c", "d"],
        [unit(0), unit(1), unit(2), unit(0)],
        [{"lang": "en"}, {"lang": "en"}, {"lang": "de"}, {"lang": "en"}],
        [["acme"], ["acme"], ["acme"], ["globex"]],
    )
    (hits,) = docs.search(unit(0), 10, tenant="acme", filter=flt.Equals("lang", "en"))
    assert hits.ids == ["a", "b"]
    assert hits.explain is not None
    assert hits.explain.matching_points == 2
    assert hits.explain.estimated_selectivity == pytest.approx(0.5)


def test_cosine_finds_a_tiny_but_nonzero_vector(database: Database) -> None:
    collection = database.create_collection("docs", 3, "cosine")
    collection.upsert(["tiny", "other"], [[1e-25, 0.0, 0.0], [0.0, 1.0, 0.0]])
    (hits,) = collection.search([1.0, 0.0, 0.0], 2)
    assert hits.ids == ["tiny", "other"]
    assert hits.scores[0] == pytest.approx(1.0)


def test_cosine_of_a_huge_parallel_vector_is_one(database: Database) -> None:
    collection = database.create_collection("docs", 3, "cosine")
    collection.upsert(["huge", "other"], [[1e20, 0.0, 0.0], [0.0, 1.0, 1.0]])
    (hits,) = collection.search([1.0, 0.0, 0.0], 2)
    assert hits.ids[0] == "huge"
    assert hits.scores[0] == pytest.approx(1.0)
