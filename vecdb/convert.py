"""Conversion between vecdb.v1 protobuf messages and plain Python / numpy values.

Shared by the client and the server so both sides read and write the wire format the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from vecdb.engine import filters as flt
from vecdb.engine.errors import InvalidArgument, InvalidFilter
from vecdb.engine.schema import AttributeType, Metric
from vecdb.v1 import vecdb_pb2 as pb

METRIC_TO_PROTO = {
    Metric.COSINE: pb.METRIC_COSINE,
    Metric.IP: pb.METRIC_IP,
    Metric.L2: pb.METRIC_L2,
}
METRIC_FROM_PROTO = {v: k for k, v in METRIC_TO_PROTO.items()}

TYPE_TO_PROTO = {
    AttributeType.INT: pb.ATTRIBUTE_TYPE_INT,
    AttributeType.FLOAT: pb.ATTRIBUTE_TYPE_FLOAT,
    AttributeType.KEYWORD: pb.ATTRIBUTE_TYPE_KEYWORD,
    AttributeType.BOOL: pb.ATTRIBUTE_TYPE_BOOL,
    AttributeType.KEYWORD_LIST: pb.ATTRIBUTE_TYPE_KEYWORD_LIST,
}
TYPE_FROM_PROTO = {v: k for k, v in TYPE_TO_PROTO.items()}


def metric_from_proto(value: int) -> Metric:
    """Return the metric of a proto enum value, or raise naming the allowed values."""
    metric: Metric | None = METRIC_FROM_PROTO.get(value)  # type: ignore[call-overload]
    if metric is None:
        raise InvalidArgument(
            f"metric {pb.Metric.Name(value) if value in pb.Metric.values() else value} is not "
            "allowed: use METRIC_COSINE, METRIC_IP or METRIC_L2"
        )
    return metric


def attribute_type_from_proto(field: str, value: int) -> AttributeType:
    """Return the attribute type of a proto enum value, or raise naming the allowed values."""
    kind: AttributeType | None = TYPE_FROM_PROTO.get(value)  # type: ignore[call-overload]
    if kind is None:
        name = pb.AttributeType.Name(value) if value in pb.AttributeType.values() else value
        raise InvalidArgument(
            f"attribute {field!r} has type {name}: use ATTRIBUTE_TYPE_INT, _FLOAT, _KEYWORD, "
            "_BOOL or _KEYWORD_LIST"
        )
    return kind


# --- attribute values ------------------------------------------------------------------------


def value_from_proto(value: pb.AttributeValue) -> object:
    """Return the Python value an AttributeValue holds (keyword lists as list[str])."""
    kind = value.WhichOneof("kind")
    if kind is None:
        raise InvalidArgument("attribute value is empty: set one of its fields")
    if kind == "keyword_list_value":
        return list(value.keyword_list_value.values)
    return getattr(value, kind)


def value_to_proto(value: object, out: pb.AttributeValue | None = None) -> pb.AttributeValue:
    """Return an AttributeValue for a Python value (bool, int, float, str or list of str)."""
    message = out if out is not None else pb.AttributeValue()
    if isinstance(value, bool):
        message.bool_value = value
    elif isinstance(value, int):
        message.int_value = value
    elif isinstance(value, float):
        message.float_value = value
    elif isinstance(value, str):
        message.keyword_value = value
    elif isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        message.keyword_list_value.values.extend(value)
    else:
        raise InvalidArgument(
            f"attribute value {value!r} is not an int, float, str, bool or list of str"
        )
    return message


def attributes_from_proto(values: Mapping[str, pb.AttributeValue]) -> dict[str, object]:
    """Return a plain dict for a protobuf attribute map."""
    return {key: value_from_proto(v) for key, v in values.items()}


def attributes_to_proto(values: Mapping[str, object], out: Any) -> None:
    """Fill a protobuf attribute map from a plain dict."""
    for key, value in values.items():
        value_to_proto(value, out[key])


# --- vectors ---------------------------------------------------------------------------------


def vectors_from_bytes(data: bytes, count: int, dim: int) -> NDArray[np.float32]:
    """Return the (count, dim) float32 matrix packed little-endian in ``data``."""
    expected = count * dim * 4
    if len(data) != expected:
        raise InvalidArgument(
            f"vectors hold {len(data)} bytes but {count} points of dim {dim} need {expected} "
            "(float32, little-endian, row-major)"
        )
    return np.frombuffer(data, dtype="<f4").reshape(count, dim).astype(np.float32, copy=False)


def vectors_to_bytes(vectors: NDArray[np.floating[Any]]) -> bytes:
    """Return ``vectors`` packed as little-endian float32 bytes, row-major."""
    return np.ascontiguousarray(vectors, dtype="<f4").tobytes()


# --- filters ---------------------------------------------------------------------------------


def filter_from_proto(message: pb.Filter) -> flt.Filter:
    """Return the engine filter a protobuf Filter describes, or raise InvalidFilter."""
    return _filter_from_proto(message, 0)


def _filter_from_proto(message: pb.Filter, depth: int) -> flt.Filter:
    if depth > flt.MAX_DEPTH:
        raise InvalidFilter(f"filter nests deeper than {flt.MAX_DEPTH} levels")
    kind = message.WhichOneof("kind")
    if kind == "all_of" or kind == "any_of":
        children = getattr(message, kind).filters
        if not children:
            raise InvalidFilter(f"{kind} needs at least one filter")
        parsed = tuple(_filter_from_proto(c, depth + 1) for c in children)
        return flt.And(parsed) if kind == "all_of" else flt.Or(parsed)
    if kind == "negate":
        return flt.Not(_filter_from_proto(message.negate, depth + 1))
    if kind != "condition":
        raise InvalidFilter("filter is empty: set one of all_of, any_of, negate, condition")
    condition = message.condition
    field = condition.field
    if not field:
        raise InvalidFilter("condition has no field name")
    test = condition.WhichOneof("test")
    if test == "equals":
        return flt.Equals(field, value_from_proto(condition.equals))
    if test == "is_in":
        values = tuple(value_from_proto(v) for v in condition.is_in.values)
        if not values:
            raise InvalidFilter(f"is_in on {field!r} needs at least one value")
        return flt.In(field, values)
    if test == "range":
        r = condition.range
        return flt.Range(
            field,
            gt=r.gt if r.HasField("gt") else None,
            gte=r.gte if r.HasField("gte") else None,
            lt=r.lt if r.HasField("lt") else None,
            lte=r.lte if r.HasField("lte") else None,
        )
    if test == "contains":
        return flt.Contains(field, condition.contains)
    raise InvalidFilter(
        f"condition on {field!r} is empty: set one of equals, is_in, range, contains"
    )


def filter_to_proto(node: flt.Filter | Mapping[str, object]) -> pb.Filter:
    """Return the protobuf Filter for an engine filter or its JSON form."""
    if isinstance(node, Mapping):
        node = flt.from_json(node)
    message = pb.Filter()
    if isinstance(node, flt.And | flt.Or):
        target = message.all_of if isinstance(node, flt.And) else message.any_of
        target.filters.extend(filter_to_proto(c) for c in node.children)
    elif isinstance(node, flt.Not):
        message.negate.CopyFrom(filter_to_proto(node.child))
    else:
        condition = message.condition
        condition.field = node.field
        if isinstance(node, flt.Equals):
            value_to_proto(node.value, condition.equals)
        elif isinstance(node, flt.In):
            for v in node.values:
                value_to_proto(v, condition.is_in.values.add())
        elif isinstance(node, flt.Contains):
            condition.contains = node.value
        else:
            for name in ("gt", "gte", "lt", "lte"):
                bound = getattr(node, name)
                if bound is not None:
                    setattr(condition.range, name, bound)
    return message


def schema_to_proto(schema: Mapping[str, AttributeType]) -> list[pb.AttributeField]:
    """Return the protobuf fields of an attribute schema."""
    return [pb.AttributeField(name=n, type=TYPE_TO_PROTO[t]) for n, t in schema.items()]


def tenants_lists(lists: Sequence[pb.TenantList]) -> list[list[str]]:
    """Return plain tenant lists."""
    return [list(t.tenants) for t in lists]
