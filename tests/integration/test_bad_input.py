"""Every kind of bad input gets the right status code and a message naming the bad value.

One table, one real server: each case is sent, its status and message checked, and afterwards the
server must still serve and the data must be intact.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
import numpy as np
import pytest

from vecdb import Client
from vecdb.v1 import vecdb_pb2 as pb
from vecdb.v1 import vecdb_pb2_grpc as pb_grpc

ADMIN_KEY = "admin-key-for-tests"
TENANT_KEY = "tenant-key-for-acme"
DIM = 4
COLLECTION = "good"
Code = grpc.StatusCode


@dataclass(frozen=True)
class Case:
    name: str
    call: Callable[[pb_grpc.VectorServiceStub], Any]
    code: grpc.StatusCode
    message: str  # a fragment the message must contain
    key: str | None = ADMIN_KEY


def _vector(*values: float) -> list[float]:
    return list(values) if values else [0.5] * DIM


def _search(
    vector: list[float] | None = None, filter: pb.Filter | None = None, k: int = 5
) -> Callable[[pb_grpc.VectorServiceStub], Any]:
    request = pb.SearchRequest(
        collection=COLLECTION, vector=vector or _vector(), k=k, filter=filter
    )
    return lambda stub: stub.Search(request)


def _condition(**fields: Any) -> pb.Filter:
    return pb.Filter(condition=pb.Condition(**fields))


def _upsert(
    point: pb.Point | None = None, batch: pb.PointBatch | None = None
) -> Callable[..., Any]:
    request = pb.UpsertRequest(collection=COLLECTION)
    if point is not None:
        request.points.append(point)
    if batch is not None:
        request.batch.CopyFrom(batch)
    return lambda stub: stub.Upsert(request)


def _attributed(**values: pb.AttributeValue) -> pb.Point:
    point = pb.Point(id="new", vector=_vector())
    for key, value in values.items():
        point.attributes[key].CopyFrom(value)
    return point


CASES = [
    Case(
        "wrong dimension",
        _search(vector=[1.0, 2.0, 3.0]),
        Code.INVALID_ARGUMENT,
        "dimension 3 does not match collection 'good' (dim 4)",
    ),
    Case(
        "NaN in query",
        _search(vector=[1.0, float("nan"), 0.0, 0.0]),
        Code.INVALID_ARGUMENT,
        "NaN or infinity",
    ),
    Case(
        "inf in point",
        _upsert(pb.Point(id="x", vector=[1.0, float("inf"), 0, 0])),
        Code.INVALID_ARGUMENT,
        "NaN or infinity",
    ),
    Case(
        "point dimension",
        _upsert(pb.Point(id="x", vector=[1.0])),
        Code.INVALID_ARGUMENT,
        "vector dimension 1 does not match",
    ),
    Case(
        "batch byte count",
        _upsert(batch=pb.PointBatch(ids=["a", "b"], vectors=b"\0" * 12)),
        Code.INVALID_ARGUMENT,
        "need 32",
    ),
    Case(
        "empty id",
        _upsert(pb.Point(id="", vector=_vector())),
        Code.INVALID_ARGUMENT,
        "invalid point id ''",
    ),
    Case("k zero", _search(k=0), Code.INVALID_ARGUMENT, "k 0 is not allowed: use 1..100"),
    Case("k above cap", _search(k=101), Code.INVALID_ARGUMENT, "k 101 is not allowed: use 1..100"),
    Case(
        "unknown collection",
        lambda s: s.Search(pb.SearchRequest(collection="nope", vector=_vector(), k=1)),
        Code.NOT_FOUND,
        "collection 'nope' does not exist",
    ),
    Case(
        "drop unknown collection",
        lambda s: s.DropCollection(pb.DropCollectionRequest(name="nope")),
        Code.NOT_FOUND,
        "'nope'",
    ),
    Case(
        "unknown attribute in point",
        _upsert(_attributed(colour=pb.AttributeValue(keyword_value="red"))),
        Code.INVALID_ARGUMENT,
        "unknown attribute 'colour'",
    ),
    Case(
        "attribute of wrong type",
        _upsert(_attributed(year=pb.AttributeValue(keyword_value="1999"))),
        Code.INVALID_ARGUMENT,
        "attribute 'year' is int, got str '1999'",
    ),
    Case(
        "unknown attribute in filter",
        _search(filter=_condition(field="colour", equals=pb.AttributeValue(keyword_value="red"))),
        Code.INVALID_ARGUMENT,
        "unknown attribute 'colour'",
    ),
    Case(
        "filter value of wrong type",
        _search(filter=_condition(field="year", equals=pb.AttributeValue(keyword_value="x"))),
        Code.INVALID_ARGUMENT,
        "does not fit attribute 'year' of type int",
    ),
    Case(
        "range on keyword",
        _search(filter=_condition(field="lang", range=pb.Range(gt=1))),
        Code.INVALID_ARGUMENT,
        "range does not apply to attribute 'lang'",
    ),
    Case("empty filter", _search(filter=pb.Filter()), Code.INVALID_ARGUMENT, "filter is empty"),
    Case(
        "empty condition",
        _search(filter=_condition(field="year")),
        Code.INVALID_ARGUMENT,
        "condition on 'year' is empty",
    ),
    Case(
        "empty and",
        _search(filter=pb.Filter(all_of=pb.FilterList())),
        Code.INVALID_ARGUMENT,
        "all_of needs at least one filter",
    ),
    Case(
        "unspecified metric",
        lambda s: s.CreateCollection(pb.CreateCollectionRequest(name="m", dim=3)),
        Code.INVALID_ARGUMENT,
        "METRIC_UNSPECIFIED is not allowed",
    ),
    Case(
        "unspecified attribute type",
        lambda s: s.CreateCollection(
            pb.CreateCollectionRequest(
                name="m", dim=3, metric=pb.METRIC_L2, schema=[pb.AttributeField(name="a")]
            )
        ),
        Code.INVALID_ARGUMENT,
        "ATTRIBUTE_TYPE_UNSPECIFIED",
    ),
    Case(
        "zero dim",
        lambda s: s.CreateCollection(
            pb.CreateCollectionRequest(name="m", dim=0, metric=pb.METRIC_L2)
        ),
        Code.INVALID_ARGUMENT,
        "invalid dim 0",
    ),
    Case(
        "bad collection name",
        lambda s: s.CreateCollection(
            pb.CreateCollectionRequest(name="a b", dim=3, metric=pb.METRIC_L2)
        ),
        Code.INVALID_ARGUMENT,
        "invalid collection name 'a b'",
    ),
    Case(
        "duplicate collection",
        lambda s: s.CreateCollection(
            pb.CreateCollectionRequest(name=COLLECTION, dim=3, metric=pb.METRIC_L2)
        ),
        Code.ALREADY_EXISTS,
        "collection 'good' already exists",
    ),
    Case(
        "oversized message",
        _upsert(batch=pb.PointBatch(ids=["big"], vectors=b"\0" * (2 * 1024 * 1024))),
        Code.RESOURCE_EXHAUSTED,
        "larger than max",
    ),
    Case(
        "missing key",
        lambda s: s.ListCollections(pb.ListCollectionsRequest()),
        Code.UNAUTHENTICATED,
        "missing API key",
        key=None,
    ),
    Case(
        "invalid key",
        lambda s: s.ListCollections(pb.ListCollectionsRequest()),
        Code.UNAUTHENTICATED,
        "invalid API key",
        key="not-a-real-key",
    ),
    Case(
        "tenant key creating a collection",
        lambda s: s.CreateCollection(
            pb.CreateCollectionRequest(name="t", dim=3, metric=pb.METRIC_L2)
        ),
        Code.PERMISSION_DENIED,
        "needs an admin key",
        key=TENANT_KEY,
    ),
    Case(
        "tenant key writing a shared point",
        _upsert(pb.Point(id="s", vector=_vector(), tenants=["acme", "other"])),
        Code.PERMISSION_DENIED,
        "exactly ['acme']",
        key=TENANT_KEY,
    ),
    Case(
        "tenant key deleting another's point",
        lambda s: s.Delete(pb.DeleteRequest(collection=COLLECTION, ids=["p0"])),
        Code.PERMISSION_DENIED,
        "may not delete point 'p0'",
        key=TENANT_KEY,
    ),
    Case(
        "tenant key granting",
        lambda s: s.GrantAccess(
            pb.GrantAccessRequest(collection=COLLECTION, tenant="acme", ids=["p0"])
        ),
        Code.PERMISSION_DENIED,
        "needs an admin key",
        key=TENANT_KEY,
    ),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from tests.conftest import ServerProcess

    config = tmp_path_factory.mktemp("bad") / "vecdb.toml"
    config.write_text(
        "max_k = 100\nmax_message_bytes = 1048576\n"
        f'[[keys]]\nkey = "{ADMIN_KEY}"\nrole = "admin"\n'
        f'[[keys]]\nkey = "{TENANT_KEY}"\ntenant = "acme"\n'
    )
    process = ServerProcess(config.parent / "data", args=("--config", str(config))).start()
    with Client(process.address, api_key=ADMIN_KEY) as client:
        client.create_collection(COLLECTION, DIM, "cosine", {"year": "int", "lang": "keyword"})
        vectors = np.random.default_rng(0).standard_normal((20, DIM)).astype(np.float32)
        client.upsert(
            COLLECTION,
            [f"p{i}" for i in range(20)],
            vectors,
            [{"year": 2000 + i, "lang": "en"} for i in range(20)],
            [["other"]] * 20,
        )
    yield process, vectors
    process.kill()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_gets_clear_status(server, case: Case) -> None:  # type: ignore[no-untyped-def]
    process, vectors = server
    with grpc.insecure_channel(process.address) as channel:
        stub = pb_grpc.VectorServiceStub(channel)
        metadata = (("authorization", f"Bearer {case.key}"),) if case.key else ()

        class Authed:
            def __getattr__(self, method: str) -> Callable[..., Any]:
                return lambda request: getattr(stub, method)(request, metadata=metadata, timeout=30)

        with pytest.raises(grpc.RpcError) as raised:
            case.call(Authed())  # type: ignore[arg-type]
    error = raised.value
    assert error.code() == case.code, error.details()
    assert case.message in (error.details() or ""), error.details()
    # the server still serves, and nothing was lost or half-written
    with Client(process.address, api_key=ADMIN_KEY) as client:
        info = client.describe_collection(COLLECTION)
        assert info.point_count == 20
        got = client.get(COLLECTION, [f"p{i}" for i in range(20)], with_vectors=True)
        np.testing.assert_array_equal(np.stack([p.vector for p in got]), vectors)
        assert client.search(COLLECTION, vectors[3], k=1).ids == ["p3"]
        assert {c.name for c in client.list_collections()} == {COLLECTION}
