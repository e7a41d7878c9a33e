"""The gRPC servicer: authenticate, convert protobuf to engine calls and back, map errors."""

from __future__ import annotations

import functools
import itertools
import logging
import queue
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
import numpy as np
from numpy.typing import NDArray

from vecdb import convert
from vecdb.engine import Collection, Database, Hits, SearchOptions
from vecdb.engine.batch import (
    DEFAULT_RECALL_TARGET,
    BatchQuery,
    Partitioning,
    drop_partitioning,
    load_partitioning,
    run_batch,
    save_partitioning,
    saved_partitionings,
)
from vecdb.engine.collection import PreparedUpsert
from vecdb.engine.errors import InvalidArgument, NotFound, VecdbError
from vecdb.engine.filters import Filter
from vecdb.engine.schema import check_name
from vecdb.server import threads
from vecdb.server.auth import Principal, authenticate
from vecdb.server.config import ServerConfig
from vecdb.status import status_code
from vecdb.v1 import vecdb_pb2 as pb
from vecdb.v1 import vecdb_pb2_grpc as pb_grpc

log = logging.getLogger("vecdb.server")
BATCH_CHUNK = 4096  # queries of one BatchSearch stream planned together


@dataclass(frozen=True)
class _ParsedSearch:
    """A validated search request, ready to run alone or in a batch."""

    collection: Collection
    vector: NDArray[np.float32]
    k: int
    tenant: str | None
    filter: Filter | None
    options: SearchOptions


Request = TypeVar("Request")
Response = TypeVar("Response")


def _abort(context: grpc.ServicerContext, error: Exception) -> None:
    if isinstance(error, VecdbError):
        context.abort(status_code(error), str(error))
    log.exception("internal error")
    context.abort(grpc.StatusCode.INTERNAL, f"internal error: {type(error).__name__}: {error}")


def unary(
    method: Callable[[Any, Request, Principal], Response],
) -> Callable[[Any, Request, grpc.ServicerContext], Response]:
    """Wrap a unary handler: authenticate the caller and turn errors into status codes."""

    @functools.wraps(method)
    def handler(self: VectorServicer, request: Request, context: grpc.ServicerContext) -> Response:
        try:
            threads.one_thread_here()  # requests run in parallel: no OpenMP fan-out per call
            principal = authenticate(self.config, context.invocation_metadata())
            return method(self, request, principal)
        except Exception as error:  # every failure leaves as a status code
            _abort(context, error)
            raise  # unreachable: abort raises

    return handler


def streaming(
    method: Callable[[Any, Any, Principal], Iterator[Response]],
) -> Callable[[Any, Any, grpc.ServicerContext], Iterator[Response]]:
    """Wrap a handler that yields responses, as :func:`unary` does."""

    @functools.wraps(method)
    def handler(
        self: VectorServicer, request: Any, context: grpc.ServicerContext
    ) -> Iterator[Response]:
        try:
            threads.one_thread_here()
            principal = authenticate(self.config, context.invocation_metadata())
            yield from method(self, request, principal)
        except Exception as error:
            _abort(context, error)

    return handler


def on_all_cores(
    method: Callable[[Any, Any, Principal], Iterator[Response]],
) -> Callable[[Any, Any, Principal], Iterator[Response]]:
    """Run a long handler (build, batch plan) with BLAS on every core (see vecdb.server.threads)."""

    @functools.wraps(method)
    def handler(self: VectorServicer, request: Any, principal: Principal) -> Iterator[Response]:
        with threads.all_cores():
            yield from method(self, request, principal)

    return handler


class VectorServicer(pb_grpc.VectorServiceServicer):
    """vecdb.v1.VectorService over one Database."""

    def __init__(self, database: Database, config: ServerConfig) -> None:
        self.database = database
        self.config = config

    # --- collections -------------------------------------------------------------------------

    def _info(self, collection: Collection) -> pb.CollectionInfo:
        return pb.CollectionInfo(
            name=collection.name,
            dim=collection.dim,
            metric=convert.METRIC_TO_PROTO[collection.metric],
            schema=convert.schema_to_proto(collection.settings.schema),
            point_count=len(collection),
            tenant_count=collection.tenant_count(),
            index=_index_info(collection.index_info()),
            partitionings=[
                pb.PartitioningInfo(
                    name=saved.name,
                    leaves=saved.leaves,
                    cells=saved.cells,
                    covered_points=saved.covered_rows,
                    reduced_dim=saved.reduced_dim,
                    workload_queries=saved.workload_queries,
                    measured_recall=saved.measured_recall or 0.0,
                    build_seconds=saved.build_seconds,
                    memory_bytes=saved.memory_bytes,
                )
                for saved in saved_partitionings(collection)
            ],
        )

    @unary
    def CreateCollection(
        self, request: pb.CreateCollectionRequest, principal: Principal
    ) -> pb.CreateCollectionResponse:
        principal.require_admin("create collections")
        schema = {f.name: convert.attribute_type_from_proto(f.name, f.type) for f in request.schema}
        if len(schema) != len(request.schema):
            raise InvalidArgument("schema names an attribute more than once")
        collection = self.database.create_collection(
            request.name, request.dim, convert.metric_from_proto(request.metric), schema
        )
        return pb.CreateCollectionResponse(collection=self._info(collection))

    @unary
    def DropCollection(
        self, request: pb.DropCollectionRequest, principal: Principal
    ) -> pb.DropCollectionResponse:
        principal.require_admin("drop collections")
        self.database.drop_collection(request.name)
        return pb.DropCollectionResponse()

    @unary
    def ListCollections(
        self, request: pb.ListCollectionsRequest, principal: Principal
    ) -> pb.ListCollectionsResponse:
        return pb.ListCollectionsResponse(
            collections=[self._info(c) for c in self.database.collections()]
        )

    @unary
    def DescribeCollection(
        self, request: pb.DescribeCollectionRequest, principal: Principal
    ) -> pb.DescribeCollectionResponse:
        collection = self.database.collection(request.name)
        return pb.DescribeCollectionResponse(collection=self._info(collection))

    # --- points ------------------------------------------------------------------------------

    def _prepare(
        self, request: pb.UpsertRequest, principal: Principal
    ) -> tuple[Collection, PreparedUpsert]:
        collection = self.database.collection(request.collection)
        ids, vectors, attributes, tenants = _points_of(request, collection.dim)
        prepared = collection.prepare_upsert(
            ids, vectors, attributes, tenants, acting_tenant=principal.tenant
        )
        return collection, prepared

    @staticmethod
    def _commit(collection: Collection, prepared: PreparedUpsert) -> pb.UpsertResponse:
        count, sequence = collection.commit_upsert(prepared)
        return pb.UpsertResponse(upserted=count, sequence=sequence)

    @unary
    def Upsert(self, request: pb.UpsertRequest, principal: Principal) -> pb.UpsertResponse:
        return self._commit(*self._prepare(request, principal))

    @streaming
    def UpsertStream(
        self, requests: Iterator[pb.UpsertRequest], principal: Principal
    ) -> Iterator[pb.UpsertResponse]:
        # Two stages: while batch i commits (mostly fsync, outside the GIL) on the committer
        # thread, this thread decodes and validates batch i + 1. Acks keep request order.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="vecdb-commit") as committer:
            pending: Future[pb.UpsertResponse] | None = None
            for request in requests:
                try:
                    prepared = self._prepare(request, principal)
                except Exception:
                    if pending is not None:  # acknowledge what did commit, then fail
                        yield pending.result()
                    raise
                if pending is not None:
                    yield pending.result()
                pending = committer.submit(self._commit, *prepared)
            if pending is not None:
                yield pending.result()

    @unary
    def Delete(self, request: pb.DeleteRequest, principal: Principal) -> pb.DeleteResponse:
        collection = self.database.collection(request.collection)
        deleted = collection.delete(list(request.ids), acting_tenant=principal.tenant)
        return pb.DeleteResponse(deleted=deleted)

    @unary
    def Get(self, request: pb.GetRequest, principal: Principal) -> pb.GetResponse:
        collection = self.database.collection(request.collection)
        found, missing = collection.get(
            list(request.ids), with_vectors=request.with_vectors, tenant=principal.tenant
        )
        response = pb.GetResponse(missing_ids=missing)
        for point in found:
            message = response.points.add(id=point.id, tenants=point.tenants)
            if point.vector is not None:
                message.vector.extend(point.vector.tolist())
            convert.attributes_to_proto(point.attributes, message.attributes)
        return response

    @unary
    def GrantAccess(
        self, request: pb.GrantAccessRequest, principal: Principal
    ) -> pb.GrantAccessResponse:
        principal.require_admin("grant access")
        collection = self.database.collection(request.collection)
        changed = collection.set_access(request.tenant, list(request.ids), grant=True)
        return pb.GrantAccessResponse(changed=changed)

    @unary
    def RevokeAccess(
        self, request: pb.RevokeAccessRequest, principal: Principal
    ) -> pb.RevokeAccessResponse:
        principal.require_admin("revoke access")
        collection = self.database.collection(request.collection)
        changed = collection.set_access(request.tenant, list(request.ids), grant=False)
        return pb.RevokeAccessResponse(changed=changed)

    @unary
    def ListTenants(
        self, request: pb.ListTenantsRequest, principal: Principal
    ) -> pb.ListTenantsResponse:
        principal.require_admin("list tenants")
        collection = self.database.collection(request.collection)
        return pb.ListTenantsResponse(
            tenants=[
                pb.TenantInfo(tenant=t, point_count=n) for t, n in collection.tenants().items()
            ]
        )

    @unary
    def DropTenant(
        self, request: pb.DropTenantRequest, principal: Principal
    ) -> pb.DropTenantResponse:
        principal.require_admin("drop tenants")
        collection = self.database.collection(request.collection)
        revoked, deleted = collection.drop_tenant(
            request.tenant, delete_orphaned_points=request.delete_orphaned_points
        )
        return pb.DropTenantResponse(revoked=revoked, deleted=deleted)

    # --- search ------------------------------------------------------------------------------

    def _search(self, request: pb.SearchRequest, principal: Principal) -> tuple[Hits, Collection]:
        # Collection.search checks the vector itself (same message): no second check here
        parsed = self._parse_search(request, principal, check_vector=False)
        (hits,) = parsed.collection.search(
            parsed.vector,
            parsed.k,
            tenant=parsed.tenant,
            filter=parsed.filter,
            options=parsed.options,
        )
        return hits, parsed.collection

    def _parse_search(
        self, request: pb.SearchRequest, principal: Principal, *, check_vector: bool = True
    ) -> _ParsedSearch:
        collection = self.database.collection(request.collection)
        if request.k < 1 or request.k > self.config.max_k:
            raise InvalidArgument(f"k {request.k} is not allowed: use 1..{self.config.max_k}")
        if len(request.vector) != collection.dim:
            raise InvalidArgument(
                f"query vector dimension {len(request.vector)} does not match collection "
                f"{collection.name!r} (dim {collection.dim})"
            )
        vector = np.asarray(request.vector, dtype=np.float32)
        tenant = principal.tenant or (request.tenant or None)
        search_filter = (
            convert.filter_from_proto(request.filter) if request.HasField("filter") else None
        )
        params = request.params
        if params.rerank_factor < 0 or not np.isfinite(params.rerank_factor):
            raise InvalidArgument(
                f"rerank_factor {params.rerank_factor} is not allowed: use a finite value >= 1"
            )
        options = SearchOptions(
            exact=params.exact,
            ef_search=params.ef_search or None,
            nprobe=params.nprobe or None,
            rerank_factor=params.rerank_factor or None,
        )
        if check_vector:
            collection.check_vectors(vector, what="query vector")
        return _ParsedSearch(collection, vector, request.k, tenant, search_filter, options)

    def _fill_results(
        self, request: pb.SearchRequest, hits: Hits, collection: Collection, out: Any
    ) -> None:
        """Append the hits to a response's ``results`` field (built in place: no copies)."""
        add = out.add
        for point_id, score in zip(hits.ids, hits.scores.tolist(), strict=True):
            add(id=point_id, score=score)
        if request.with_attributes:
            for result, values in zip(out, collection.attributes_of(hits.rows), strict=True):
                convert.attributes_to_proto(values, result.attributes)
        if request.with_vectors:
            for result, vector in zip(out, collection.vectors_of(hits.rows), strict=True):
                result.vector.extend(vector.tolist())

    @staticmethod
    def _explain(request: pb.SearchRequest, hits: Hits) -> pb.Explain | None:
        if not request.explain or hits.explain is None:
            return None
        e = hits.explain
        return pb.Explain(
            plan=e.plan,
            estimated_selectivity=e.estimated_selectivity,
            matching_points=e.matching_points,
            candidates_scored=e.candidates_scored,
            detail=e.detail,
        )

    @unary
    def Search(self, request: pb.SearchRequest, principal: Principal) -> pb.SearchResponse:
        hits, collection = self._search(request, principal)
        response = pb.SearchResponse(explain=self._explain(request, hits))
        self._fill_results(request, hits, collection, response.results)
        return response

    @streaming
    @on_all_cores
    def BatchSearch(
        self, requests: Iterator[pb.BatchSearchRequest], principal: Principal
    ) -> Iterator[pb.BatchSearchResponse]:
        # The stream is planned in chunks: queries that share a tenant and filter are evaluated
        # and scored together (vecdb.engine.batch); each chunk's results stream back as soon as
        # it is done, and a cancelled call stops between chunks. Queries with per-query knobs
        # run one by one through the planner. Options come with the first request: answer
        # through a saved partitioning, or learn one from the whole stream first and save it.
        stream = iter(requests)
        first = next(stream, None)
        if first is None:
            return
        options = first.options
        if options.save_partitioning:
            principal.require_admin("save partitionings")
            check_name("partitioning", options.save_partitioning)
            if options.partitioning:
                raise InvalidArgument(
                    "give either partitioning (reuse a saved one) or save_partitioning "
                    "(learn one from this batch), not both"
                )
            if options.recall_target and not 0.0 < options.recall_target <= 1.0:
                raise InvalidArgument(
                    f"recall_target {options.recall_target} is not allowed: use (0, 1]"
                )
        elif options.recall_target:
            raise InvalidArgument("recall_target applies only with save_partitioning")
        partitionings: dict[str, Partitioning | None] = {}
        pending: dict[str, list[tuple[pb.BatchSearchRequest, _ParsedSearch]]] = {}
        for request in itertools.chain([first], stream):
            try:
                parsed = self._parse_search(request.query, principal)
            except InvalidArgument as error:
                raise type(error)(f"query {request.query_id!r}: {error}") from error
            if parsed.options != SearchOptions():
                (hits,) = parsed.collection.search(
                    parsed.vector,
                    parsed.k,
                    tenant=parsed.tenant,
                    filter=parsed.filter,
                    options=parsed.options,
                )
                yield self._batch_response(request, hits, parsed.collection)
                continue
            name = parsed.collection.name
            if options.partitioning and name not in partitionings:
                partitionings[name] = load_partitioning(parsed.collection, options.partitioning)
            group = pending.setdefault(name, [])
            group.append((request, parsed))
            if len(group) >= BATCH_CHUNK and not options.save_partitioning:
                yield from self._run_group(pending.pop(name), partitionings.get(name))
        for name, group in pending.items():
            if options.save_partitioning:
                partitioning = yield from self._learn_partitioning(group, options)
                partitionings[name] = partitioning
            yield from self._run_group(group, partitionings.get(name))

    def _learn_partitioning(
        self,
        group: list[tuple[pb.BatchSearchRequest, _ParsedSearch]],
        options: pb.BatchOptions,
    ) -> Generator[pb.BatchSearchResponse, None, Partitioning]:
        """Learn a partitioning from a collection's queries and save it, streaming progress;
        return it."""
        collection = group[0][1].collection
        queries = self._batch_queries(group)
        updates: queue.Queue[tuple[str, float]] = queue.Queue()
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="vecdb-partition") as builder:
            built = builder.submit(
                Partitioning.build,
                collection,
                queries,
                recall_target=options.recall_target or DEFAULT_RECALL_TARGET,
                progress=lambda stage, fraction: updates.put((stage, fraction)),
            )
            while not built.done() or not updates.empty():
                try:
                    stage, fraction = updates.get(timeout=0.2)
                except queue.Empty:
                    continue
                yield pb.BatchSearchResponse(
                    progress=pb.BatchProgress(stage=stage, fraction=fraction)
                )
            partitioning = built.result()
        save_partitioning(
            collection, options.save_partitioning, partitioning, workload_queries=len(queries)
        )
        yield pb.BatchSearchResponse(progress=pb.BatchProgress(stage="saved", fraction=1.0))
        return partitioning

    @staticmethod
    def _batch_queries(
        group: list[tuple[pb.BatchSearchRequest, _ParsedSearch]],
    ) -> list[BatchQuery]:
        if len({request.query_id for request, _ in group}) != len(group):
            raise InvalidArgument("query ids within one BatchSearch stream must be unique")
        return [
            BatchQuery(request.query_id, parsed.vector, parsed.k, parsed.tenant, parsed.filter)
            for request, parsed in group
        ]

    def _run_group(
        self,
        group: list[tuple[pb.BatchSearchRequest, _ParsedSearch]],
        partitioning: Partitioning | None = None,
    ) -> Iterator[pb.BatchSearchResponse]:
        collection = group[0][1].collection
        by_id = {request.query_id: request for request, _ in group}
        queries = self._batch_queries(group)
        for query_id, hits in run_batch(collection, queries, partitioning=partitioning):
            yield self._batch_response(by_id[query_id], hits, collection)

    def _batch_response(
        self, request: pb.BatchSearchRequest, hits: Hits, collection: Collection
    ) -> pb.BatchSearchResponse:
        response = pb.BatchSearchResponse(
            query_id=request.query_id, explain=self._explain(request.query, hits)
        )
        self._fill_results(request.query, hits, collection, response.results)
        return response

    @unary
    def DropPartitioning(
        self, request: pb.DropPartitioningRequest, principal: Principal
    ) -> pb.DropPartitioningResponse:
        principal.require_admin("drop partitionings")
        collection = self.database.collection(request.collection)
        check_name("partitioning", request.name)
        if not drop_partitioning(collection, request.name):
            known = ", ".join(p.name for p in saved_partitionings(collection)) or "none"
            raise NotFound(
                f"collection {collection.name!r} has no partitioning {request.name!r} "
                f"(saved: {known})"
            )
        return pb.DropPartitioningResponse()

    @streaming
    @on_all_cores
    def BuildIndex(
        self, request: pb.BuildIndexRequest, principal: Principal
    ) -> Iterator[pb.BuildIndexProgress]:
        principal.require_admin("build indexes")
        collection = self.database.collection(request.collection)
        train_queries = None
        if request.train_queries:
            count, remainder = divmod(len(request.train_queries), 4 * collection.dim)
            if remainder or not count:
                raise InvalidArgument(
                    f"train_queries holds {len(request.train_queries)} bytes: expected a "
                    f"multiple of {4 * collection.dim} (float32 rows of dim {collection.dim})"
                )
            train_queries = convert.vectors_from_bytes(request.train_queries, count, collection.dim)
        config = None
        if request.reduced_dim or request.code_bits or request.structure:
            from vecdb.engine.ann import AnnConfig

            structure = request.structure or None
            if structure not in (None, "hnsw", "ivf"):
                raise InvalidArgument(
                    f"structure {request.structure!r} is not allowed: use hnsw or ivf"
                )
            config = AnnConfig(
                reduced_dim=request.reduced_dim or None,
                code_bits=request.code_bits or None,
                structure=structure,  # type: ignore[arg-type]
            )
        updates: queue.Queue[tuple[str, float]] = queue.Queue()
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="vecdb-build") as builder:
            built = builder.submit(
                collection.build_index,
                recall_target=request.recall_target or 0.95,
                train_queries=train_queries,
                config=config,
                progress=lambda stage, fraction: updates.put((stage, fraction)),
            )
            while not built.done() or not updates.empty():
                try:
                    stage, fraction = updates.get(timeout=0.2)
                except queue.Empty:
                    continue
                yield pb.BuildIndexProgress(stage=stage, fraction=fraction)
            info = built.result()
        yield pb.BuildIndexProgress(stage="done", fraction=1.0, done=True, index=_index_info(info))


def _points_of(
    request: pb.UpsertRequest, dim: int
) -> tuple[list[str], NDArray[np.float32], list[dict[str, object]] | None, list[list[str]] | None]:
    """Return (ids, vectors, attributes, tenants) from either form of an upsert request."""
    ids: list[str] = []
    parts: list[NDArray[np.float32]] = []
    attributes: list[dict[str, object]] = []
    tenants: list[list[str]] = []
    has_attributes = has_tenants = False
    if request.points:
        for point in request.points:
            if len(point.vector) != dim:
                raise InvalidArgument(
                    f"point {point.id!r}: vector dimension {len(point.vector)} does not match "
                    f"collection {request.collection!r} (dim {dim})"
                )
        ids.extend(p.id for p in request.points)
        parts.append(np.array([p.vector for p in request.points], dtype=np.float32))
        attributes.extend(convert.attributes_from_proto(p.attributes) for p in request.points)
        tenants.extend(list(p.tenants) for p in request.points)
        has_attributes = any(attributes)
        has_tenants = any(tenants)
    batch = request.batch
    if batch.ids:
        count = len(batch.ids)
        for what, given in (("attributes", len(batch.attributes)), ("tenants", len(batch.tenants))):
            if given not in (0, count):
                raise InvalidArgument(
                    f"batch has {count} ids but {given} {what}: give 0 or {count}"
                )
        ids.extend(batch.ids)
        parts.append(convert.vectors_from_bytes(batch.vectors, count, dim))
        if batch.attributes:
            has_attributes = True
            attributes.extend(convert.attributes_from_proto(a.values) for a in batch.attributes)
        else:
            attributes.extend([{}] * count)  # shared, never mutated
        if batch.tenants:
            has_tenants = True
            tenants.extend(convert.tenants_lists(batch.tenants))
        else:
            tenants.extend([[]] * count)  # shared, never mutated
    elif batch.vectors:
        raise InvalidArgument("batch has vectors but no ids")
    vectors = (
        parts[0]
        if len(parts) == 1
        else np.concatenate(parts)
        if parts
        else np.zeros((0, dim), np.float32)
    )
    return ids, vectors, attributes if has_attributes else None, tenants if has_tenants else None


def _index_info(info: dict[str, Any]) -> pb.IndexInfo:
    """Return the index description as the message (fields the message lacks are left out)."""
    fields = pb.IndexInfo.DESCRIPTOR.fields_by_name
    return pb.IndexInfo(**{key: value for key, value in info.items() if key in fields})
