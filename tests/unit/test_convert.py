"""Wire conversion: protobuf <-> Python for enums, attribute values, vectors and filters."""

from __future__ import annotations

import re

import numpy as np
import pytest

from vecdb import convert
from vecdb.engine import filters as flt
from vecdb.engine.errors import InvalidArgument, InvalidFilter
from vecdb.engine.schema import AttributeType, Metric
from vecdb.v1 import vecdb_pb2 as pb

# --- enums -----------------------------------------------------------------------------------


@pytest.mark.parametrize("metric", list(Metric))
def test_metric_round_trip(metric: Metric) -> None:
    assert convert.metric_from_proto(convert.METRIC_TO_PROTO[metric]) is metric


@pytest.mark.parametrize(
    ("value", "named"), [(pb.METRIC_UNSPECIFIED, "METRIC_UNSPECIFIED"), (99, "99")]
)
def test_unspecified_or_unknown_metric_is_refused(value: int, named: str) -> None:
    with pytest.raises(
        InvalidArgument,
        match=re.escape(
            f"metric {named} is not allowed: use METRIC_COSINE, METRIC_IP or METRIC_L2"
        ),
    ):
        convert.metric_from_proto(value)


@pytest.mark.parametrize("kind", list(AttributeType))
def test_attribute_type_round_trip(kind: AttributeType) -> None:
    assert convert.attribute_type_from_proto("f", convert.TYPE_TO_PROTO[kind]) is kind


@pytest.mark.parametrize(
    ("value", "named"),
    [(pb.ATTRIBUTE_TYPE_UNSPECIFIED, "ATTRIBUTE_TYPE_UNSPECIFIED"), (42, "42")],
)
def test_unspecified_or_unknown_attribute_type_is_refused(value: int, named: str) -> None:
    with pytest.raises(InvalidArgument, match=re.escape(f"attribute 'year' has type {named}: use")):
        convert.attribute_type_from_proto("year", value)


def test_every_metric_and_type_has_a_proto_value() -> None:
    assert set(convert.METRIC_TO_PROTO) == set(Metric)
    assert set(convert.TYPE_TO_PROTO) == set(AttributeType)
    assert len(set(convert.TYPE_TO_PROTO.values())) == len(AttributeType)


def test_schema_to_proto() -> None:
    fields = convert.schema_to_proto(
        {"year": AttributeType.INT, "tags": AttributeType.KEYWORD_LIST}
    )
    assert [(f.name, f.type) for f in fields] == [
        ("year", pb.ATTRIBUTE_TYPE_INT),
        ("tags", pb.ATTRIBUTE_TYPE_KEYWORD_LIST),
    ]


# --- attribute values ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (True, "bool_value"),
        (False, "bool_value"),
        (0, "int_value"),
        (-(2**63), "int_value"),
        (2**63 - 1, "int_value"),
        (0.0, "float_value"),
        (-1.5e300, "float_value"),
        ("", "keyword_value"),
        ("naïve ☃", "keyword_value"),
        (["a", "b"], "keyword_list_value"),
        ([], "keyword_list_value"),
    ],
)
def test_value_round_trip_keeps_type_and_value(value: object, kind: str) -> None:
    message = convert.value_to_proto(value)
    assert message.WhichOneof("kind") == kind
    back = convert.value_from_proto(pb.AttributeValue.FromString(message.SerializeToString()))
    assert back == value
    assert type(back) is type(value)


def test_tuples_of_keywords_come_back_as_lists() -> None:
    assert convert.value_from_proto(convert.value_to_proto(("a", "b"))) == ["a", "b"]


@pytest.mark.parametrize("value", [None, {"a": 1}, [1, 2], ["a", 2], b"bytes", object()])
def test_unsupported_values_are_refused_naming_them(value: object) -> None:
    with pytest.raises(InvalidArgument, match=re.escape(f"attribute value {value!r} is not")):
        convert.value_to_proto(value)


def test_empty_attribute_value_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="attribute value is empty"):
        convert.value_from_proto(pb.AttributeValue())


def test_value_to_proto_fills_a_given_message() -> None:
    out = pb.AttributeValue()
    assert convert.value_to_proto(3, out) is out
    assert out.int_value == 3


def test_attribute_maps_round_trip() -> None:
    values = {"year": 2020, "score": 0.5, "lang": "en", "open": True, "tags": ["x"], "none": []}
    point = pb.Point(id="a")
    convert.attributes_to_proto(values, point.attributes)
    wire = pb.Point.FromString(point.SerializeToString())
    assert convert.attributes_from_proto(wire.attributes) == values


# --- vectors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("dim", [3, 97, 256])
@pytest.mark.parametrize("count", [0, 1, 7])
def test_vectors_round_trip_through_bytes(dim: int, count: int) -> None:
    vectors = np.random.default_rng(dim).standard_normal((count, dim)).astype(np.float32)
    data = convert.vectors_to_bytes(vectors)
    assert len(data) == count * dim * 4
    back = convert.vectors_from_bytes(data, count, dim)
    assert back.dtype == np.float32
    assert back.shape == (count, dim)
    np.testing.assert_array_equal(back, vectors)


def test_vectors_are_packed_little_endian_float32() -> None:
    assert convert.vectors_to_bytes(np.array([[1.0]], dtype=np.float64)) == b"\x00\x00\x80\x3f"
    big_endian = np.array([[1.0, -2.0]], dtype=">f4")
    assert convert.vectors_from_bytes(convert.vectors_to_bytes(big_endian), 1, 2).tolist() == [
        [1.0, -2.0]
    ]


def test_wrong_byte_count_names_sizes() -> None:
    with pytest.raises(
        InvalidArgument,
        match=re.escape(
            "vectors hold 20 bytes but 2 points of dim 3 need 24 (float32, little-endian"
        ),
    ):
        convert.vectors_from_bytes(b"\x00" * 20, 2, 3)


def test_tenants_lists() -> None:
    lists = [pb.TenantList(tenants=["a", "b"]), pb.TenantList()]
    assert convert.tenants_lists(lists) == [["a", "b"], []]


# --- filters ---------------------------------------------------------------------------------

FILTERS = [
    flt.Equals("year", 2020),
    flt.Equals("score", 0.25),
    flt.Equals("lang", "en"),
    flt.Equals("open", True),
    flt.In("lang", ("en", "de")),
    flt.In("year", (1, 2, 3)),
    flt.Contains("tags", "bio"),
    flt.Range("year", gte=2000.0),
    flt.Range("score", gt=-1.0, gte=0.0, lt=1.0, lte=2.0),
    flt.Range("score", lt=0.0),
    flt.Not(flt.Equals("open", False)),
    flt.And(
        (flt.Equals("lang", "en"), flt.Or((flt.Contains("tags", "a"), flt.Range("year", lt=3.0))))
    ),
    flt.Or((flt.Not(flt.In("lang", ("x",))),)),
]


@pytest.mark.parametrize("node", FILTERS)
def test_filter_round_trip(node: flt.Filter) -> None:
    message = convert.filter_to_proto(node)
    wire = pb.Filter.FromString(message.SerializeToString())
    assert convert.filter_from_proto(wire) == node
    # the JSON form converts the same way
    assert convert.filter_to_proto(flt.to_json(node)) == message


def test_zero_range_bounds_survive_the_wire() -> None:
    # optional fields: a bound of 0.0 is set, not absent
    back = convert.filter_from_proto(convert.filter_to_proto(flt.Range("x", gte=0.0)))
    assert back == flt.Range("x", gte=0.0)


def test_filter_to_proto_validates_its_json_form() -> None:
    with pytest.raises(InvalidFilter, match='"and" takes a non-empty list'):
        convert.filter_to_proto({"and": []})


def _condition(**kwargs: object) -> pb.Filter:
    return pb.Filter(condition=pb.Condition(**kwargs))


@pytest.mark.parametrize(
    ("message", "error"),
    [
        (pb.Filter(), "filter is empty: set one of all_of, any_of, negate, condition"),
        (pb.Filter(all_of=pb.FilterList()), "all_of needs at least one filter"),
        (pb.Filter(any_of=pb.FilterList()), "any_of needs at least one filter"),
        (pb.Filter(negate=pb.Filter()), "filter is empty"),
        (
            pb.Filter(
                all_of=pb.FilterList(filters=[_condition(field="a", contains="x"), pb.Filter()])
            ),
            "filter is empty",
        ),
        (_condition(contains="x"), "condition has no field name"),
        (
            _condition(field="year"),
            "condition on 'year' is empty: set one of equals, is_in, range, contains",
        ),
        (
            _condition(field="lang", is_in=pb.ValueList()),
            "is_in on 'lang' needs at least one value",
        ),
        (_condition(field="year", equals=pb.AttributeValue()), "attribute value is empty"),
    ],
)
def test_malformed_proto_filters_are_refused(message: pb.Filter, error: str) -> None:
    with pytest.raises(InvalidArgument, match=re.escape(error)):
        convert.filter_from_proto(message)


def test_proto_filter_nesting_is_limited() -> None:
    message = _condition(field="a", contains="x")
    for _ in range(flt.MAX_DEPTH + 1):
        message = pb.Filter(negate=message)
    with pytest.raises(InvalidFilter, match=f"deeper than {flt.MAX_DEPTH} levels"):
        convert.filter_from_proto(message)
