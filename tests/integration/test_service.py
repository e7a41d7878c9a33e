"""The service end to end over a real server on loopback: collections, points, access, search."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

import vecdb
from vecdb import Client
from vecdb.engine import Database


@pytest.fixture
def client(vecdb_server: str) -> Iterator[Client]:
    with Client(vecdb_server) as c:
        c.wait_ready()
        yield c


@pytest.fixture
def name(client: Client) -> Iterator[str]:
    collection = f"c{uuid.uuid4().hex[:10]}"
    yield collection
    with contextlib.suppress(vecdb.NotFound):
        client.drop_collection(collection)


SCHEMA = {
    "year": "int",
    "score": "float",
    "lang": "keyword",
    "open": "bool",
    "tags": "keyword_list",
}


def _points(
    n: int, dim: int, seed: int = 0
) -> tuple[list[str], np.ndarray, list[dict[str, object]]]:
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    ids = [f"p{i}" for i in range(n)]
    attributes: list[dict[str, object]] = [
        {
            "year": 2000 + i % 25,
            "score": float(i) / n,
            "lang": ["en", "de", "fr"][i % 3],
            "open": i % 2 == 0,
            "tags": ["a", "b"] if i % 4 == 0 else ["c"],
        }
        for i in range(n)
    ]
    return ids, vectors, attributes


def test_collection_lifecycle(client: Client, name: str) -> None:
    info = client.create_collection(name, dim=5, metric="l2", schema=SCHEMA)
    assert (info.name, info.dim, info.metric.value, info.point_count) == (name, 5, "l2", 0)
    assert {k: v.value for k, v in info.schema.items()} == SCHEMA
    assert name in [c.name for c in client.list_collections()]
    with pytest.raises(vecdb.AlreadyExists, match=name):
        client.create_collection(name, dim=5)
    client.drop_collection(name)
    with pytest.raises(vecdb.NotFound, match=name):
        client.describe_collection(name)


@pytest.mark.parametrize("metric", ["cosine", "ip", "l2"])
def test_search_matches_brute_force(client: Client, name: str, metric: str) -> None:
    ids, vectors, attributes = _points(300, 17, seed=1)
    client.create_collection(name, dim=17, metric=metric, schema=SCHEMA)
    assert client.upsert_many(name, ids, vectors, attributes, batch_size=64) == 300
    queries = np.random.default_rng(2).standard_normal((5, 17)).astype(np.float32)
    for query in queries:
        if metric == "cosine":
            scores = (vectors @ query) / np.linalg.norm(vectors, axis=1) / np.linalg.norm(query)
            order = np.argsort(-scores)
        elif metric == "ip":
            scores = vectors @ query
            order = np.argsort(-scores)
        else:
            scores = ((vectors - query) ** 2).sum(axis=1)
            order = np.argsort(scores)
        matches = client.search(name, query, k=10)
        assert matches.ids == [ids[i] for i in order[:10]]
        np.testing.assert_allclose(matches.scores, scores[order[:10]], rtol=1e-4, atol=1e-4)


def test_points_round_trip_and_delete(client: Client, name: str) -> None:
    ids, vectors, attributes = _points(50, 8)
    client.create_collection(name, dim=8, schema=SCHEMA)
    client.upsert(name, ids, vectors, attributes, tenants=[["t1"]] * 50)
    got = client.get(name, ["p3", "nope", "p7"], with_vectors=True)
    assert [p.id for p in got] == ["p3", "p7"]
    np.testing.assert_array_equal(got[0].vector, vectors[3])
    assert got[0].attributes == attributes[3]
    assert got[0].tenants == ["t1"]
    # replacing keeps one copy with the new content
    client.upsert(name, ["p3"], vectors[4:5], [{"year": 1999}])
    (p3,) = client.get(name, ["p3"], with_vectors=True)
    np.testing.assert_array_equal(p3.vector, vectors[4])
    assert p3.attributes == {"year": 1999}
    assert client.describe_collection(name).point_count == 50
    assert client.delete(name, ["p3", "p4", "missing"]) == 2
    assert client.get(name, ["p3", "p4"]) == []
    found = client.search(name, vectors[4], k=50)
    assert "p3" not in found.ids and "p4" not in found.ids
    assert len(found) == 48


def test_row_form_points_from_any_language(client: Client, name: str) -> None:
    from vecdb.v1 import vecdb_pb2 as pb
    from vecdb.v1 import vecdb_pb2_grpc as pb_grpc

    client.create_collection(name, dim=3, metric="ip", schema={"lang": "keyword"})
    stub = pb_grpc.VectorServiceStub(client._channel)
    point = pb.Point(id="x", vector=[1.0, 2.0, 3.0], tenants=["acme"])
    point.attributes["lang"].keyword_value = "en"
    stub.Upsert(pb.UpsertRequest(collection=name, points=[point]))
    (got,) = client.get(name, ["x"], with_vectors=True)
    assert got.vector.tolist() == [1.0, 2.0, 3.0]
    assert got.attributes == {"lang": "en"} and got.tenants == ["acme"]


def test_filters_and_tenants(client: Client, name: str) -> None:
    ids, vectors, attributes = _points(200, 6, seed=3)
    tenants = [["t1"] if i % 2 else ["t2", "t3"] for i in range(200)]
    client.create_collection(name, dim=6, schema=SCHEMA)
    client.upsert(name, ids, vectors, attributes, tenants)
    query = vectors[0]
    search_filter = {
        "and": [
            {"field": "year", "gte": 2010, "lt": 2020},
            {"or": [{"field": "lang", "eq": "en"}, {"field": "tags", "contains": "a"}]},
            {"not": {"field": "open", "eq": False}},
        ]
    }
    matches = client.search(
        name, query, k=200, tenant="t2", filter=search_filter, with_attributes=True, explain=True
    )
    expected = {
        ids[i]
        for i, a in enumerate(attributes)
        if 2010 <= a["year"] < 2020  # type: ignore[operator]
        and (a["lang"] == "en" or "a" in a["tags"])  # type: ignore[operator]
        and a["open"]
        and "t2" in tenants[i]
    }
    assert set(matches.ids) == expected and expected
    assert matches.attributes is not None and all(a["open"] for a in matches.attributes)
    assert matches.explain is not None and matches.explain.matching_points == len(expected)
    # grant / revoke move points in and out of a tenant's view
    assert client.grant_access(name, "t9", ["p1", "p2"]) == 2
    assert set(client.search(name, query, k=10, tenant="t9").ids) == {"p1", "p2"}
    assert client.revoke_access(name, "t9", ["p1"]) == 1
    assert client.search(name, query, k=10, tenant="t9").ids == ["p2"]
    assert client.list_tenants(name) == {"t1": 100, "t2": 100, "t3": 100, "t9": 1}
    # dropping t2 leaves the points t3 still sees; dropping t3 then orphans them
    assert client.drop_tenant(name, "t2") == (100, 0)
    assert client.drop_tenant(name, "t3", delete_orphaned_points=True) == (100, 99)
    assert client.describe_collection(name).point_count == 101  # 100 of t1 + p2 kept by t9


def test_batch_search_equals_single_searches(client: Client, name: str) -> None:
    ids, vectors, attributes = _points(120, 9, seed=4)
    client.create_collection(name, dim=9, schema=SCHEMA)
    client.upsert(name, ids, vectors, attributes)
    queries = vectors[:7] + 0.01
    batch = client.search_batch(name, queries, k=5, filter={"field": "lang", "in": ["en", "fr"]})
    for query, matches in zip(queries, batch, strict=True):
        single = client.search(name, query, k=5, filter={"field": "lang", "in": ["en", "fr"]})
        assert matches.ids == single.ids


def test_health_and_reflection(vecdb_server: str) -> None:
    with grpc.insecure_channel(vecdb_server) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "vecdb.v1.VectorService"):
            status = health.Check(health_pb2.HealthCheckRequest(service=service)).status
            assert status == health_pb2.HealthCheckResponse.SERVING
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        (response,) = list(reflection.ServerReflectionInfo(iter([request])))
        names = {s.name for s in response.list_services_response.service}
        assert {"vecdb.v1.VectorService", "grpc.health.v1.Health"} <= names


def test_grpc_equals_engine_in_process(client: Client, name: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ids, vectors, attributes = _points(150, 12, seed=5)
    client.create_collection(name, dim=12, metric="l2", schema=SCHEMA)
    client.upsert(name, ids, vectors, attributes)
    with Database(tmp_path / "local") as database:
        local = database.create_collection(name, 12, "l2", SCHEMA)
        local.upsert(ids, vectors, attributes)
        queries = np.random.default_rng(6).standard_normal((6, 12)).astype(np.float32)
        for query in queries:
            remote = client.search(name, query, k=8, filter={"field": "year", "lt": 2012})
            (hits,) = local.search(
                query, 8, filter=vecdb.engine.filters.from_json({"field": "year", "lt": 2012})
            )
            assert remote.ids == hits.ids
            np.testing.assert_allclose(remote.scores, hits.scores, rtol=1e-5)


def test_sigterm_drains_and_closes_cleanly(server_factory) -> None:  # type: ignore[no-untyped-def]
    server = server_factory("drain").start()
    with Client(server.address) as c:
        c.create_collection("d", dim=4)
        c.upsert("d", ["a"], np.ones((1, 4), np.float32))
    assert server.terminate() == 0
    assert "store closed" in server.log()
    server.start()
    with Client(server.address) as c:
        assert [p.id for p in c.get("d", ["a"])] == ["a"]
