"""The Python client: numpy in, numpy and dataclasses out, vecdb exceptions on errors.

::

    from vecdb import Client
    with Client("127.0.0.1:50051") as client:
        client.create_collection("docs", dim=384, metric="cosine", schema={"year": "int"})
        client.upsert("docs", ids=["a", "b"], vectors=vectors, attributes=[{"year": 2020}, {}])
        matches = client.search("docs", query, k=10, filter={"field": "year", "gte": 2015})
        matches.ids, matches.scores
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import grpc
import numpy as np
from numpy.typing import ArrayLike, NDArray

from vecdb import convert
from vecdb.engine import filters as flt
from vecdb.engine.errors import InvalidArgument, VecdbError
from vecdb.engine.schema import AttributeType, Metric
from vecdb.status import error_class
from vecdb.v1 import vecdb_pb2 as pb
from vecdb.v1 import vecdb_pb2_grpc as pb_grpc

FilterLike = flt.Filter | Mapping[str, object]
T = TypeVar("T")
MIB = 1024 * 1024


@dataclass(frozen=True)
class Explain:
    """How the server answered a search."""

    plan: str
    estimated_selectivity: float
    matching_points: int
    candidates_scored: int
    detail: str


@dataclass(frozen=True)
class Matches:
    """One query's results, best first (l2 scores are squared distances, lower is better)."""

    ids: list[str]
    scores: NDArray[np.float32]
    attributes: list[dict[str, object]] | None = None
    vectors: NDArray[np.float32] | None = None
    explain: Explain | None = None

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class Point:
    """A stored point as returned by :meth:`Client.get`."""

    id: str
    vector: NDArray[np.float32] | None
    attributes: dict[str, object]
    tenants: list[str]


@dataclass(frozen=True)
class CollectionInfo:
    """What a collection is and holds."""

    name: str
    dim: int
    metric: Metric
    schema: dict[str, AttributeType]
    point_count: int
    tenant_count: int
    index: dict[str, object] = field(default_factory=dict)
    # workload partitionings saved by batch_search(save_partitioning=...), by name
    partitionings: list[dict[str, object]] = field(default_factory=list)


@dataclass(frozen=True)
class Query:
    """One query of a :meth:`Client.batch_search` stream."""

    query_id: str
    vector: ArrayLike
    k: int = 10
    tenant: str | None = None
    filter: FilterLike | None = None


def _info(message: pb.CollectionInfo) -> CollectionInfo:
    index = {f.name: getattr(message.index, f.name) for f in message.index.DESCRIPTOR.fields}
    return CollectionInfo(
        name=message.name,
        dim=message.dim,
        metric=convert.METRIC_FROM_PROTO[message.metric],
        schema={f.name: convert.TYPE_FROM_PROTO[f.type] for f in message.schema},
        point_count=message.point_count,
        tenant_count=message.tenant_count,
        index=index,
        partitionings=[
            {f.name: getattr(saved, f.name) for f in saved.DESCRIPTOR.fields}
            for saved in message.partitionings
        ],
    )


def _matches(results: Sequence[pb.ScoredPoint], explain: pb.Explain | None) -> Matches:
    # every search response goes through here: no per-result work for fields that are absent
    attributes = None
    if any(len(r.attributes) for r in results):
        attributes = [convert.attributes_from_proto(r.attributes) for r in results]
    has_vectors = bool(results) and len(results[0].vector) > 0
    return Matches(
        ids=[r.id for r in results],
        scores=np.array([r.score for r in results], dtype=np.float32),
        attributes=attributes,
        vectors=np.array([r.vector for r in results], dtype=np.float32) if has_vectors else None,
        explain=Explain(
            plan=explain.plan,
            estimated_selectivity=explain.estimated_selectivity,
            matching_points=explain.matching_points,
            candidates_scored=explain.candidates_scored,
            detail=explain.detail,
        )
        if explain is not None and explain.plan
        else None,
    )


class Client:
    """A connection to a vecdb server."""

    def __init__(
        self,
        address: str = "127.0.0.1:50051",
        *,
        api_key: str | None = None,
        tls: bool = False,
        root_certificates: bytes | None = None,
        timeout: float | None = 60.0,
        max_message_bytes: int = 64 * MIB,
    ) -> None:
        options = [
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
        ]
        if tls or root_certificates is not None:
            credentials = grpc.ssl_channel_credentials(root_certificates=root_certificates)
            self._channel = grpc.secure_channel(address, credentials, options=options)
        else:
            self._channel = grpc.insecure_channel(address, options=options)
        self._stub = pb_grpc.VectorServiceStub(self._channel)
        self._metadata = (("authorization", f"Bearer {api_key}"),) if api_key else ()
        self.timeout = timeout

    def close(self) -> None:
        """Close the connection."""
        self._channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: Callable[..., T], request: Any, timeout: float | None = None) -> T:
        try:
            return method(request, metadata=self._metadata, timeout=timeout or self.timeout)
        except grpc.RpcError as error:
            raise _translate(error) from None

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Block until the server accepts connections (raise VecdbError on timeout)."""
        try:
            grpc.channel_ready_future(self._channel).result(timeout=timeout)
        except grpc.FutureTimeoutError:
            raise VecdbError(f"server not reachable within {timeout}s") from None

    # --- collections -------------------------------------------------------------------------

    def create_collection(
        self,
        name: str,
        dim: int,
        metric: str | Metric = "cosine",
        schema: Mapping[str, str | AttributeType] | None = None,
    ) -> CollectionInfo:
        """Create a collection and return its description."""
        fields = [
            pb.AttributeField(name=n, type=convert.TYPE_TO_PROTO[AttributeType.parse(t)])
            for n, t in (schema or {}).items()
        ]
        request = pb.CreateCollectionRequest(
            name=name,
            dim=dim,
            metric=convert.METRIC_TO_PROTO[Metric.parse(metric)],
            schema=fields,
        )
        return _info(self._call(self._stub.CreateCollection, request).collection)

    def drop_collection(self, name: str) -> None:
        """Delete a collection and all its points."""
        self._call(self._stub.DropCollection, pb.DropCollectionRequest(name=name))

    def list_collections(self) -> list[CollectionInfo]:
        """Return every collection."""
        response = self._call(self._stub.ListCollections, pb.ListCollectionsRequest())
        return [_info(c) for c in response.collections]

    def describe_collection(self, name: str) -> CollectionInfo:
        """Return one collection's description (including its index settings)."""
        request = pb.DescribeCollectionRequest(name=name)
        return _info(self._call(self._stub.DescribeCollection, request).collection)

    # --- points ------------------------------------------------------------------------------

    @staticmethod
    def _upsert_request(
        collection: str,
        ids: Sequence[str],
        vectors: ArrayLike,
        attributes: Sequence[Mapping[str, object]] | None,
        tenants: Sequence[Sequence[str]] | None,
    ) -> pb.UpsertRequest:
        matrix = np.asarray(vectors, dtype=np.float32)
        if matrix.ndim != 2 or matrix.shape[0] != len(ids):
            raise InvalidArgument(
                f"vectors must be a ({len(ids)}, dim) array, got shape {matrix.shape}"
            )
        # filled in place: passing a finished PointBatch to the constructor would copy it
        request = pb.UpsertRequest(collection=collection)
        batch = request.batch
        batch.ids.extend(ids)
        batch.vectors = convert.vectors_to_bytes(matrix)
        if attributes is not None:
            for values in attributes:
                convert.attributes_to_proto(values, batch.attributes.add().values)
        if tenants is not None:
            batch.tenants.extend(pb.TenantList(tenants=t) for t in tenants)
        return request

    def upsert(
        self,
        collection: str,
        ids: Sequence[str],
        vectors: ArrayLike,
        attributes: Sequence[Mapping[str, object]] | None = None,
        tenants: Sequence[Sequence[str]] | None = None,
    ) -> int:
        """Insert or replace points in one durable write; return how many were written."""
        request = self._upsert_request(collection, ids, vectors, attributes, tenants)
        return int(self._call(self._stub.Upsert, request).upserted)

    def upsert_many(
        self,
        collection: str,
        ids: Sequence[str],
        vectors: ArrayLike,
        attributes: Sequence[Mapping[str, object]] | None = None,
        tenants: Sequence[Sequence[str]] | None = None,
        *,
        batch_size: int = 2000,
        on_batch: Callable[[int], None] | None = None,
    ) -> int:
        """Stream points in batches (each one durable write); return how many were written.

        ``on_batch`` is called with the number of points of each acknowledged batch.
        """
        matrix = np.asarray(vectors, dtype=np.float32)
        if batch_size < 1:
            raise InvalidArgument(f"batch_size {batch_size} must be at least 1")

        def requests() -> Iterator[pb.UpsertRequest]:
            for start in range(0, len(ids), batch_size):
                end = start + batch_size
                yield self._upsert_request(
                    collection,
                    ids[start:end],
                    matrix[start:end],
                    attributes[start:end] if attributes is not None else None,
                    tenants[start:end] if tenants is not None else None,
                )

        total = 0
        try:
            for response in self._stub.UpsertStream(requests(), metadata=self._metadata):
                total += response.upserted
                if on_batch is not None:
                    on_batch(response.upserted)
        except grpc.RpcError as error:
            raise _translate(error) from None
        return total

    def delete(self, collection: str, ids: Sequence[str]) -> int:
        """Delete points by id; return how many existed."""
        request = pb.DeleteRequest(collection=collection, ids=ids)
        return int(self._call(self._stub.Delete, request).deleted)

    def get(
        self, collection: str, ids: Sequence[str], *, with_vectors: bool = False
    ) -> list[Point]:
        """Return the points that exist among ``ids`` (in request order)."""
        request = pb.GetRequest(collection=collection, ids=ids, with_vectors=with_vectors)
        response = self._call(self._stub.Get, request)
        return [
            Point(
                id=p.id,
                vector=np.asarray(p.vector, dtype=np.float32) if with_vectors else None,
                attributes=convert.attributes_from_proto(p.attributes),
                tenants=list(p.tenants),
            )
            for p in response.points
        ]

    def grant_access(self, collection: str, tenant: str, ids: Sequence[str]) -> int:
        """Let ``tenant`` see the points; return how many changed."""
        request = pb.GrantAccessRequest(collection=collection, tenant=tenant, ids=ids)
        return int(self._call(self._stub.GrantAccess, request).changed)

    def revoke_access(self, collection: str, tenant: str, ids: Sequence[str]) -> int:
        """Stop ``tenant`` seeing the points; return how many changed."""
        request = pb.RevokeAccessRequest(collection=collection, tenant=tenant, ids=ids)
        return int(self._call(self._stub.RevokeAccess, request).changed)

    def list_tenants(self, collection: str) -> dict[str, int]:
        """Return each tenant's point count."""
        response = self._call(self._stub.ListTenants, pb.ListTenantsRequest(collection=collection))
        return {t.tenant: t.point_count for t in response.tenants}

    def drop_tenant(
        self, collection: str, tenant: str, *, delete_orphaned_points: bool = False
    ) -> tuple[int, int]:
        """Revoke a tenant everywhere; return (points revoked, orphaned points deleted)."""
        request = pb.DropTenantRequest(
            collection=collection, tenant=tenant, delete_orphaned_points=delete_orphaned_points
        )
        response = self._call(self._stub.DropTenant, request)
        return response.revoked, response.deleted

    def drop_partitioning(self, collection: str, name: str) -> None:
        """Delete a workload partitioning saved by a batch (NotFound if there is none)."""
        request = pb.DropPartitioningRequest(collection=collection, name=name)
        self._call(self._stub.DropPartitioning, request)

    # --- index -------------------------------------------------------------------------------

    def build_index(
        self,
        collection: str,
        *,
        recall_target: float = 0.95,
        train_queries: ArrayLike | None = None,
        reduced_dim: int | None = None,
        code_bits: int | None = None,
        structure: str | None = None,
        on_progress: Callable[[str, float], None] | None = None,
        timeout: float | None = 3600.0,
    ) -> dict[str, object]:
        """Train the collection's approximate index for ``recall_target``; return its settings.

        ``train_queries`` (real queries) make the projection query-aware (LeanVec-OOD) and are
        used to measure recall; without them the build uses PCA and sampled points.
        """
        request = pb.BuildIndexRequest(
            collection=collection,
            recall_target=recall_target,
            reduced_dim=reduced_dim or 0,
            code_bits=code_bits or 0,
            structure=structure or "",
        )
        if train_queries is not None:
            request.train_queries = convert.vectors_to_bytes(
                np.asarray(train_queries, dtype=np.float32)
            )
        info: dict[str, object] = {}
        try:
            for update in self._stub.BuildIndex(request, metadata=self._metadata, timeout=timeout):
                if on_progress is not None:
                    on_progress(update.stage, update.fraction)
                if update.done:
                    info = {
                        f.name: getattr(update.index, f.name)
                        for f in update.index.DESCRIPTOR.fields
                    }
        except grpc.RpcError as error:
            raise _translate(error) from None
        return info

    # --- search ------------------------------------------------------------------------------

    @staticmethod
    def _search_request(
        collection: str,
        vector: ArrayLike,
        k: int,
        tenant: str | None,
        filter: FilterLike | None,
        with_attributes: bool,
        with_vectors: bool,
        explain: bool,
        exact: bool,
        ef_search: int | None,
        nprobe: int | None,
        rerank_factor: float | None,
    ) -> pb.SearchRequest:
        query = np.asarray(vector, dtype=np.float32).ravel()
        request = pb.SearchRequest(
            collection=collection,
            vector=query.tolist(),
            k=k,
            tenant=tenant or "",
            with_attributes=with_attributes,
            with_vectors=with_vectors,
            explain=explain,
            params=pb.SearchParams(
                exact=exact,
                ef_search=ef_search or 0,
                nprobe=nprobe or 0,
                rerank_factor=rerank_factor or 0.0,
            ),
        )
        if filter is not None:
            request.filter.CopyFrom(convert.filter_to_proto(filter))
        return request

    def search(
        self,
        collection: str,
        vector: ArrayLike,
        k: int = 10,
        *,
        tenant: str | None = None,
        filter: FilterLike | None = None,
        with_attributes: bool = False,
        with_vectors: bool = False,
        explain: bool = False,
        exact: bool = False,
        ef_search: int | None = None,
        nprobe: int | None = None,
        rerank_factor: float | None = None,
    ) -> Matches:
        """Return the ``k`` nearest points the tenant and filter allow."""
        request = self._search_request(
            collection,
            vector,
            k,
            tenant,
            filter,
            with_attributes,
            with_vectors,
            explain,
            exact,
            ef_search,
            nprobe,
            rerank_factor,
        )
        response = self._call(self._stub.Search, request)
        return _matches(response.results, response.explain if explain else None)

    def search_batch(
        self,
        collection: str,
        vectors: ArrayLike,
        k: int = 10,
        *,
        tenant: str | None = None,
        filter: FilterLike | None = None,
        with_attributes: bool = False,
        explain: bool = False,
        exact: bool = False,
    ) -> list[Matches]:
        """Return the matches of every row of ``vectors`` (one BatchSearch stream)."""
        matrix = np.asarray(vectors, dtype=np.float32)
        if matrix.ndim != 2:
            raise InvalidArgument(f"vectors must be a 2-d array, got shape {matrix.shape}")
        queries = [Query(str(i), row, k, tenant, filter) for i, row in enumerate(matrix)]
        found = dict(
            self.batch_search(
                collection, queries, with_attributes=with_attributes, explain=explain, exact=exact
            )
        )
        return [found[str(i)] for i in range(len(queries))]

    def batch_search(
        self,
        collection: str,
        queries: Iterable[Query],
        *,
        with_attributes: bool = False,
        explain: bool = False,
        exact: bool = False,
        partitioning: str | None = None,
        save_partitioning: str | None = None,
        recall_target: float | None = None,
        on_progress: Callable[[str, float], None] | None = None,
    ) -> Iterator[tuple[str, Matches]]:
        """Yield (query_id, matches) as the server answers a stream of queries.

        The server plans the stream as a whole, chunk by chunk, and results arrive as each
        chunk is done (not in query order). ``partitioning``: answer through the workload
        partitioning saved under that name. ``save_partitioning``: learn a partitioning from
        these queries (calibrated for ``recall_target``, default 0.98), save it under that
        name for later batches, then answer through it; the server reads the whole stream
        first and reports the build to ``on_progress(stage, fraction)``. Closing the iterator
        early cancels the call, and the server stops working on it.
        """
        options = pb.BatchOptions(
            partitioning=partitioning or "",
            save_partitioning=save_partitioning or "",
            recall_target=recall_target or 0.0,
        )

        # set once the answers end (done, failed or closed early): gRPC's thread that sends
        # the requests then stops at the next one instead of serializing the rest
        finished = threading.Event()

        def requests() -> Iterator[pb.BatchSearchRequest]:
            for number, q in enumerate(queries):
                if finished.is_set():
                    return
                request = pb.BatchSearchRequest(
                    query_id=q.query_id,
                    query=self._search_request(
                        collection,
                        q.vector,
                        q.k,
                        q.tenant,
                        q.filter,
                        with_attributes,
                        False,
                        explain,
                        exact,
                        None,
                        None,
                        None,
                    ),
                )
                if number == 0:
                    request.options.CopyFrom(options)
                yield request

        call = self._stub.BatchSearch(requests(), metadata=self._metadata)
        try:
            for response in call:
                if response.HasField("progress"):
                    if on_progress is not None:
                        on_progress(response.progress.stage, response.progress.fraction)
                    continue
                yield (
                    response.query_id,
                    _matches(response.results, response.explain if explain else None),
                )
        except grpc.RpcError as error:
            raise _translate(error) from None
        finally:
            finished.set()
            call.cancel()  # a no-op once the call is complete; stops the server when not


def _translate(error: grpc.RpcError) -> VecdbError:
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    details = error.details() if hasattr(error, "details") else str(error)
    kind = error_class(code)
    result = kind(details or str(code))
    result.code = code  # type: ignore[attr-defined]
    return result
