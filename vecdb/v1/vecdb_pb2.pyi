from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Metric(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    METRIC_UNSPECIFIED: _ClassVar[Metric]
    METRIC_COSINE: _ClassVar[Metric]
    METRIC_IP: _ClassVar[Metric]
    METRIC_L2: _ClassVar[Metric]

class AttributeType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ATTRIBUTE_TYPE_UNSPECIFIED: _ClassVar[AttributeType]
    ATTRIBUTE_TYPE_INT: _ClassVar[AttributeType]
    ATTRIBUTE_TYPE_FLOAT: _ClassVar[AttributeType]
    ATTRIBUTE_TYPE_KEYWORD: _ClassVar[AttributeType]
    ATTRIBUTE_TYPE_BOOL: _ClassVar[AttributeType]
    ATTRIBUTE_TYPE_KEYWORD_LIST: _ClassVar[AttributeType]
METRIC_UNSPECIFIED: Metric
METRIC_COSINE: Metric
METRIC_IP: Metric
METRIC_L2: Metric
ATTRIBUTE_TYPE_UNSPECIFIED: AttributeType
ATTRIBUTE_TYPE_INT: AttributeType
ATTRIBUTE_TYPE_FLOAT: AttributeType
ATTRIBUTE_TYPE_KEYWORD: AttributeType
ATTRIBUTE_TYPE_BOOL: AttributeType
ATTRIBUTE_TYPE_KEYWORD_LIST: AttributeType

class AttributeField(_message.Message):
    __slots__ = ("name", "type")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: AttributeType
    def __init__(self, name: _Optional[str] = ..., type: _Optional[_Union[AttributeType, str]] = ...) -> None: ...

class KeywordList(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, values: _Optional[_Iterable[str]] = ...) -> None: ...

class AttributeValue(_message.Message):
    __slots__ = ("int_value", "float_value", "keyword_value", "bool_value", "keyword_list_value")
    INT_VALUE_FIELD_NUMBER: _ClassVar[int]
    FLOAT_VALUE_FIELD_NUMBER: _ClassVar[int]
    KEYWORD_VALUE_FIELD_NUMBER: _ClassVar[int]
    BOOL_VALUE_FIELD_NUMBER: _ClassVar[int]
    KEYWORD_LIST_VALUE_FIELD_NUMBER: _ClassVar[int]
    int_value: int
    float_value: float
    keyword_value: str
    bool_value: bool
    keyword_list_value: KeywordList
    def __init__(self, int_value: _Optional[int] = ..., float_value: _Optional[float] = ..., keyword_value: _Optional[str] = ..., bool_value: _Optional[bool] = ..., keyword_list_value: _Optional[_Union[KeywordList, _Mapping]] = ...) -> None: ...

class Point(_message.Message):
    __slots__ = ("id", "vector", "attributes", "tenants")
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: AttributeValue
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[AttributeValue, _Mapping]] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    VECTOR_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    TENANTS_FIELD_NUMBER: _ClassVar[int]
    id: str
    vector: _containers.RepeatedScalarFieldContainer[float]
    attributes: _containers.MessageMap[str, AttributeValue]
    tenants: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, id: _Optional[str] = ..., vector: _Optional[_Iterable[float]] = ..., attributes: _Optional[_Mapping[str, AttributeValue]] = ..., tenants: _Optional[_Iterable[str]] = ...) -> None: ...

class Attributes(_message.Message):
    __slots__ = ("values",)
    class ValuesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: AttributeValue
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[AttributeValue, _Mapping]] = ...) -> None: ...
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.MessageMap[str, AttributeValue]
    def __init__(self, values: _Optional[_Mapping[str, AttributeValue]] = ...) -> None: ...

class TenantList(_message.Message):
    __slots__ = ("tenants",)
    TENANTS_FIELD_NUMBER: _ClassVar[int]
    tenants: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, tenants: _Optional[_Iterable[str]] = ...) -> None: ...

class PointBatch(_message.Message):
    __slots__ = ("ids", "vectors", "attributes", "tenants")
    IDS_FIELD_NUMBER: _ClassVar[int]
    VECTORS_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    TENANTS_FIELD_NUMBER: _ClassVar[int]
    ids: _containers.RepeatedScalarFieldContainer[str]
    vectors: bytes
    attributes: _containers.RepeatedCompositeFieldContainer[Attributes]
    tenants: _containers.RepeatedCompositeFieldContainer[TenantList]
    def __init__(self, ids: _Optional[_Iterable[str]] = ..., vectors: _Optional[bytes] = ..., attributes: _Optional[_Iterable[_Union[Attributes, _Mapping]]] = ..., tenants: _Optional[_Iterable[_Union[TenantList, _Mapping]]] = ...) -> None: ...

class IndexInfo(_message.Message):
    __slots__ = ("kind", "reduced_dim", "code_bits", "structure", "graph_degree", "list_count", "ef_search", "nprobe", "rerank_factor", "recall_target", "measured_recall", "projection", "indexed_points", "build_seconds", "memory_bytes", "projection_method")
    KIND_FIELD_NUMBER: _ClassVar[int]
    REDUCED_DIM_FIELD_NUMBER: _ClassVar[int]
    CODE_BITS_FIELD_NUMBER: _ClassVar[int]
    STRUCTURE_FIELD_NUMBER: _ClassVar[int]
    GRAPH_DEGREE_FIELD_NUMBER: _ClassVar[int]
    LIST_COUNT_FIELD_NUMBER: _ClassVar[int]
    EF_SEARCH_FIELD_NUMBER: _ClassVar[int]
    NPROBE_FIELD_NUMBER: _ClassVar[int]
    RERANK_FACTOR_FIELD_NUMBER: _ClassVar[int]
    RECALL_TARGET_FIELD_NUMBER: _ClassVar[int]
    MEASURED_RECALL_FIELD_NUMBER: _ClassVar[int]
    PROJECTION_FIELD_NUMBER: _ClassVar[int]
    INDEXED_POINTS_FIELD_NUMBER: _ClassVar[int]
    BUILD_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    PROJECTION_METHOD_FIELD_NUMBER: _ClassVar[int]
    kind: str
    reduced_dim: int
    code_bits: int
    structure: str
    graph_degree: int
    list_count: int
    ef_search: int
    nprobe: int
    rerank_factor: float
    recall_target: float
    measured_recall: float
    projection: str
    indexed_points: int
    build_seconds: float
    memory_bytes: int
    projection_method: str
    def __init__(self, kind: _Optional[str] = ..., reduced_dim: _Optional[int] = ..., code_bits: _Optional[int] = ..., structure: _Optional[str] = ..., graph_degree: _Optional[int] = ..., list_count: _Optional[int] = ..., ef_search: _Optional[int] = ..., nprobe: _Optional[int] = ..., rerank_factor: _Optional[float] = ..., recall_target: _Optional[float] = ..., measured_recall: _Optional[float] = ..., projection: _Optional[str] = ..., indexed_points: _Optional[int] = ..., build_seconds: _Optional[float] = ..., memory_bytes: _Optional[int] = ..., projection_method: _Optional[str] = ...) -> None: ...

class CollectionInfo(_message.Message):
    __slots__ = ("name", "dim", "metric", "schema", "point_count", "tenant_count", "index", "partitionings")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DIM_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_FIELD_NUMBER: _ClassVar[int]
    POINT_COUNT_FIELD_NUMBER: _ClassVar[int]
    TENANT_COUNT_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    PARTITIONINGS_FIELD_NUMBER: _ClassVar[int]
    name: str
    dim: int
    metric: Metric
    schema: _containers.RepeatedCompositeFieldContainer[AttributeField]
    point_count: int
    tenant_count: int
    index: IndexInfo
    partitionings: _containers.RepeatedCompositeFieldContainer[PartitioningInfo]
    def __init__(self, name: _Optional[str] = ..., dim: _Optional[int] = ..., metric: _Optional[_Union[Metric, str]] = ..., schema: _Optional[_Iterable[_Union[AttributeField, _Mapping]]] = ..., point_count: _Optional[int] = ..., tenant_count: _Optional[int] = ..., index: _Optional[_Union[IndexInfo, _Mapping]] = ..., partitionings: _Optional[_Iterable[_Union[PartitioningInfo, _Mapping]]] = ...) -> None: ...

class PartitioningInfo(_message.Message):
    __slots__ = ("name", "leaves", "cells", "covered_points", "reduced_dim", "workload_queries", "measured_recall", "build_seconds", "memory_bytes")
    NAME_FIELD_NUMBER: _ClassVar[int]
    LEAVES_FIELD_NUMBER: _ClassVar[int]
    CELLS_FIELD_NUMBER: _ClassVar[int]
    COVERED_POINTS_FIELD_NUMBER: _ClassVar[int]
    REDUCED_DIM_FIELD_NUMBER: _ClassVar[int]
    WORKLOAD_QUERIES_FIELD_NUMBER: _ClassVar[int]
    MEASURED_RECALL_FIELD_NUMBER: _ClassVar[int]
    BUILD_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    name: str
    leaves: int
    cells: int
    covered_points: int
    reduced_dim: int
    workload_queries: int
    measured_recall: float
    build_seconds: float
    memory_bytes: int
    def __init__(self, name: _Optional[str] = ..., leaves: _Optional[int] = ..., cells: _Optional[int] = ..., covered_points: _Optional[int] = ..., reduced_dim: _Optional[int] = ..., workload_queries: _Optional[int] = ..., measured_recall: _Optional[float] = ..., build_seconds: _Optional[float] = ..., memory_bytes: _Optional[int] = ...) -> None: ...

class CreateCollectionRequest(_message.Message):
    __slots__ = ("name", "dim", "metric", "schema")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DIM_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_FIELD_NUMBER: _ClassVar[int]
    name: str
    dim: int
    metric: Metric
    schema: _containers.RepeatedCompositeFieldContainer[AttributeField]
    def __init__(self, name: _Optional[str] = ..., dim: _Optional[int] = ..., metric: _Optional[_Union[Metric, str]] = ..., schema: _Optional[_Iterable[_Union[AttributeField, _Mapping]]] = ...) -> None: ...

class CreateCollectionResponse(_message.Message):
    __slots__ = ("collection",)
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    collection: CollectionInfo
    def __init__(self, collection: _Optional[_Union[CollectionInfo, _Mapping]] = ...) -> None: ...

class DropCollectionRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DropCollectionResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListCollectionsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListCollectionsResponse(_message.Message):
    __slots__ = ("collections",)
    COLLECTIONS_FIELD_NUMBER: _ClassVar[int]
    collections: _containers.RepeatedCompositeFieldContainer[CollectionInfo]
    def __init__(self, collections: _Optional[_Iterable[_Union[CollectionInfo, _Mapping]]] = ...) -> None: ...

class DescribeCollectionRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DescribeCollectionResponse(_message.Message):
    __slots__ = ("collection",)
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    collection: CollectionInfo
    def __init__(self, collection: _Optional[_Union[CollectionInfo, _Mapping]] = ...) -> None: ...

class UpsertRequest(_message.Message):
    __slots__ = ("collection", "points", "batch")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    collection: str
    points: _containers.RepeatedCompositeFieldContainer[Point]
    batch: PointBatch
    def __init__(self, collection: _Optional[str] = ..., points: _Optional[_Iterable[_Union[Point, _Mapping]]] = ..., batch: _Optional[_Union[PointBatch, _Mapping]] = ...) -> None: ...

class UpsertResponse(_message.Message):
    __slots__ = ("upserted", "sequence")
    UPSERTED_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    upserted: int
    sequence: int
    def __init__(self, upserted: _Optional[int] = ..., sequence: _Optional[int] = ...) -> None: ...

class DeleteRequest(_message.Message):
    __slots__ = ("collection", "ids")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    collection: str
    ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, collection: _Optional[str] = ..., ids: _Optional[_Iterable[str]] = ...) -> None: ...

class DeleteResponse(_message.Message):
    __slots__ = ("deleted",)
    DELETED_FIELD_NUMBER: _ClassVar[int]
    deleted: int
    def __init__(self, deleted: _Optional[int] = ...) -> None: ...

class GetRequest(_message.Message):
    __slots__ = ("collection", "ids", "with_vectors")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    WITH_VECTORS_FIELD_NUMBER: _ClassVar[int]
    collection: str
    ids: _containers.RepeatedScalarFieldContainer[str]
    with_vectors: bool
    def __init__(self, collection: _Optional[str] = ..., ids: _Optional[_Iterable[str]] = ..., with_vectors: _Optional[bool] = ...) -> None: ...

class GetResponse(_message.Message):
    __slots__ = ("points", "missing_ids")
    POINTS_FIELD_NUMBER: _ClassVar[int]
    MISSING_IDS_FIELD_NUMBER: _ClassVar[int]
    points: _containers.RepeatedCompositeFieldContainer[Point]
    missing_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, points: _Optional[_Iterable[_Union[Point, _Mapping]]] = ..., missing_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class GrantAccessRequest(_message.Message):
    __slots__ = ("collection", "tenant", "ids")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    collection: str
    tenant: str
    ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, collection: _Optional[str] = ..., tenant: _Optional[str] = ..., ids: _Optional[_Iterable[str]] = ...) -> None: ...

class GrantAccessResponse(_message.Message):
    __slots__ = ("changed",)
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    changed: int
    def __init__(self, changed: _Optional[int] = ...) -> None: ...

class RevokeAccessRequest(_message.Message):
    __slots__ = ("collection", "tenant", "ids")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    collection: str
    tenant: str
    ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, collection: _Optional[str] = ..., tenant: _Optional[str] = ..., ids: _Optional[_Iterable[str]] = ...) -> None: ...

class RevokeAccessResponse(_message.Message):
    __slots__ = ("changed",)
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    changed: int
    def __init__(self, changed: _Optional[int] = ...) -> None: ...

class TenantInfo(_message.Message):
    __slots__ = ("tenant", "point_count")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    POINT_COUNT_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    point_count: int
    def __init__(self, tenant: _Optional[str] = ..., point_count: _Optional[int] = ...) -> None: ...

class ListTenantsRequest(_message.Message):
    __slots__ = ("collection",)
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    collection: str
    def __init__(self, collection: _Optional[str] = ...) -> None: ...

class ListTenantsResponse(_message.Message):
    __slots__ = ("tenants",)
    TENANTS_FIELD_NUMBER: _ClassVar[int]
    tenants: _containers.RepeatedCompositeFieldContainer[TenantInfo]
    def __init__(self, tenants: _Optional[_Iterable[_Union[TenantInfo, _Mapping]]] = ...) -> None: ...

class DropTenantRequest(_message.Message):
    __slots__ = ("collection", "tenant", "delete_orphaned_points")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    DELETE_ORPHANED_POINTS_FIELD_NUMBER: _ClassVar[int]
    collection: str
    tenant: str
    delete_orphaned_points: bool
    def __init__(self, collection: _Optional[str] = ..., tenant: _Optional[str] = ..., delete_orphaned_points: _Optional[bool] = ...) -> None: ...

class DropTenantResponse(_message.Message):
    __slots__ = ("revoked", "deleted")
    REVOKED_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    revoked: int
    deleted: int
    def __init__(self, revoked: _Optional[int] = ..., deleted: _Optional[int] = ...) -> None: ...

class Filter(_message.Message):
    __slots__ = ("all_of", "any_of", "negate", "condition")
    ALL_OF_FIELD_NUMBER: _ClassVar[int]
    ANY_OF_FIELD_NUMBER: _ClassVar[int]
    NEGATE_FIELD_NUMBER: _ClassVar[int]
    CONDITION_FIELD_NUMBER: _ClassVar[int]
    all_of: FilterList
    any_of: FilterList
    negate: Filter
    condition: Condition
    def __init__(self, all_of: _Optional[_Union[FilterList, _Mapping]] = ..., any_of: _Optional[_Union[FilterList, _Mapping]] = ..., negate: _Optional[_Union[Filter, _Mapping]] = ..., condition: _Optional[_Union[Condition, _Mapping]] = ...) -> None: ...

class FilterList(_message.Message):
    __slots__ = ("filters",)
    FILTERS_FIELD_NUMBER: _ClassVar[int]
    filters: _containers.RepeatedCompositeFieldContainer[Filter]
    def __init__(self, filters: _Optional[_Iterable[_Union[Filter, _Mapping]]] = ...) -> None: ...

class ValueList(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedCompositeFieldContainer[AttributeValue]
    def __init__(self, values: _Optional[_Iterable[_Union[AttributeValue, _Mapping]]] = ...) -> None: ...

class Range(_message.Message):
    __slots__ = ("gt", "gte", "lt", "lte")
    GT_FIELD_NUMBER: _ClassVar[int]
    GTE_FIELD_NUMBER: _ClassVar[int]
    LT_FIELD_NUMBER: _ClassVar[int]
    LTE_FIELD_NUMBER: _ClassVar[int]
    gt: float
    gte: float
    lt: float
    lte: float
    def __init__(self, gt: _Optional[float] = ..., gte: _Optional[float] = ..., lt: _Optional[float] = ..., lte: _Optional[float] = ...) -> None: ...

class Condition(_message.Message):
    __slots__ = ("field", "equals", "is_in", "range", "contains")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    EQUALS_FIELD_NUMBER: _ClassVar[int]
    IS_IN_FIELD_NUMBER: _ClassVar[int]
    RANGE_FIELD_NUMBER: _ClassVar[int]
    CONTAINS_FIELD_NUMBER: _ClassVar[int]
    field: str
    equals: AttributeValue
    is_in: ValueList
    range: Range
    contains: str
    def __init__(self, field: _Optional[str] = ..., equals: _Optional[_Union[AttributeValue, _Mapping]] = ..., is_in: _Optional[_Union[ValueList, _Mapping]] = ..., range: _Optional[_Union[Range, _Mapping]] = ..., contains: _Optional[str] = ...) -> None: ...

class SearchParams(_message.Message):
    __slots__ = ("ef_search", "nprobe", "rerank_factor", "exact")
    EF_SEARCH_FIELD_NUMBER: _ClassVar[int]
    NPROBE_FIELD_NUMBER: _ClassVar[int]
    RERANK_FACTOR_FIELD_NUMBER: _ClassVar[int]
    EXACT_FIELD_NUMBER: _ClassVar[int]
    ef_search: int
    nprobe: int
    rerank_factor: float
    exact: bool
    def __init__(self, ef_search: _Optional[int] = ..., nprobe: _Optional[int] = ..., rerank_factor: _Optional[float] = ..., exact: _Optional[bool] = ...) -> None: ...

class SearchRequest(_message.Message):
    __slots__ = ("collection", "vector", "k", "tenant", "filter", "with_attributes", "with_vectors", "explain", "params")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    VECTOR_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    WITH_ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    WITH_VECTORS_FIELD_NUMBER: _ClassVar[int]
    EXPLAIN_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    collection: str
    vector: _containers.RepeatedScalarFieldContainer[float]
    k: int
    tenant: str
    filter: Filter
    with_attributes: bool
    with_vectors: bool
    explain: bool
    params: SearchParams
    def __init__(self, collection: _Optional[str] = ..., vector: _Optional[_Iterable[float]] = ..., k: _Optional[int] = ..., tenant: _Optional[str] = ..., filter: _Optional[_Union[Filter, _Mapping]] = ..., with_attributes: _Optional[bool] = ..., with_vectors: _Optional[bool] = ..., explain: _Optional[bool] = ..., params: _Optional[_Union[SearchParams, _Mapping]] = ...) -> None: ...

class ScoredPoint(_message.Message):
    __slots__ = ("id", "score", "attributes", "vector")
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: AttributeValue
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[AttributeValue, _Mapping]] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    VECTOR_FIELD_NUMBER: _ClassVar[int]
    id: str
    score: float
    attributes: _containers.MessageMap[str, AttributeValue]
    vector: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, id: _Optional[str] = ..., score: _Optional[float] = ..., attributes: _Optional[_Mapping[str, AttributeValue]] = ..., vector: _Optional[_Iterable[float]] = ...) -> None: ...

class Explain(_message.Message):
    __slots__ = ("plan", "estimated_selectivity", "matching_points", "candidates_scored", "detail")
    PLAN_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_SELECTIVITY_FIELD_NUMBER: _ClassVar[int]
    MATCHING_POINTS_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_SCORED_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    plan: str
    estimated_selectivity: float
    matching_points: int
    candidates_scored: int
    detail: str
    def __init__(self, plan: _Optional[str] = ..., estimated_selectivity: _Optional[float] = ..., matching_points: _Optional[int] = ..., candidates_scored: _Optional[int] = ..., detail: _Optional[str] = ...) -> None: ...

class SearchResponse(_message.Message):
    __slots__ = ("results", "explain")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    EXPLAIN_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[ScoredPoint]
    explain: Explain
    def __init__(self, results: _Optional[_Iterable[_Union[ScoredPoint, _Mapping]]] = ..., explain: _Optional[_Union[Explain, _Mapping]] = ...) -> None: ...

class BatchOptions(_message.Message):
    __slots__ = ("partitioning", "save_partitioning", "recall_target")
    PARTITIONING_FIELD_NUMBER: _ClassVar[int]
    SAVE_PARTITIONING_FIELD_NUMBER: _ClassVar[int]
    RECALL_TARGET_FIELD_NUMBER: _ClassVar[int]
    partitioning: str
    save_partitioning: str
    recall_target: float
    def __init__(self, partitioning: _Optional[str] = ..., save_partitioning: _Optional[str] = ..., recall_target: _Optional[float] = ...) -> None: ...

class DropPartitioningRequest(_message.Message):
    __slots__ = ("collection", "name")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    collection: str
    name: str
    def __init__(self, collection: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class DropPartitioningResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class BatchSearchRequest(_message.Message):
    __slots__ = ("query_id", "query", "options")
    QUERY_ID_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    query_id: str
    query: SearchRequest
    options: BatchOptions
    def __init__(self, query_id: _Optional[str] = ..., query: _Optional[_Union[SearchRequest, _Mapping]] = ..., options: _Optional[_Union[BatchOptions, _Mapping]] = ...) -> None: ...

class BatchProgress(_message.Message):
    __slots__ = ("stage", "fraction")
    STAGE_FIELD_NUMBER: _ClassVar[int]
    FRACTION_FIELD_NUMBER: _ClassVar[int]
    stage: str
    fraction: float
    def __init__(self, stage: _Optional[str] = ..., fraction: _Optional[float] = ...) -> None: ...

class BatchSearchResponse(_message.Message):
    __slots__ = ("query_id", "results", "explain", "progress")
    QUERY_ID_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    EXPLAIN_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    query_id: str
    results: _containers.RepeatedCompositeFieldContainer[ScoredPoint]
    explain: Explain
    progress: BatchProgress
    def __init__(self, query_id: _Optional[str] = ..., results: _Optional[_Iterable[_Union[ScoredPoint, _Mapping]]] = ..., explain: _Optional[_Union[Explain, _Mapping]] = ..., progress: _Optional[_Union[BatchProgress, _Mapping]] = ...) -> None: ...

class BuildIndexRequest(_message.Message):
    __slots__ = ("collection", "recall_target", "train_queries", "reduced_dim", "code_bits", "structure")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    RECALL_TARGET_FIELD_NUMBER: _ClassVar[int]
    TRAIN_QUERIES_FIELD_NUMBER: _ClassVar[int]
    REDUCED_DIM_FIELD_NUMBER: _ClassVar[int]
    CODE_BITS_FIELD_NUMBER: _ClassVar[int]
    STRUCTURE_FIELD_NUMBER: _ClassVar[int]
    collection: str
    recall_target: float
    train_queries: bytes
    reduced_dim: int
    code_bits: int
    structure: str
    def __init__(self, collection: _Optional[str] = ..., recall_target: _Optional[float] = ..., train_queries: _Optional[bytes] = ..., reduced_dim: _Optional[int] = ..., code_bits: _Optional[int] = ..., structure: _Optional[str] = ...) -> None: ...

class BuildIndexProgress(_message.Message):
    __slots__ = ("stage", "fraction", "done", "index")
    STAGE_FIELD_NUMBER: _ClassVar[int]
    FRACTION_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    stage: str
    fraction: float
    done: bool
    index: IndexInfo
    def __init__(self, stage: _Optional[str] = ..., fraction: _Optional[float] = ..., done: _Optional[bool] = ..., index: _Optional[_Union[IndexInfo, _Mapping]] = ...) -> None: ...
