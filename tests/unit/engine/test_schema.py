"""Collection settings: names, dimensions, metrics, attribute types and value coercion."""

from __future__ import annotations

import re

import pytest

from vecdb.engine import errors
from vecdb.engine.errors import InvalidArgument
from vecdb.engine.schema import (
    MAX_DIM,
    AttributeType,
    CollectionSettings,
    Metric,
    check_name,
)

SCHEMA = {
    "year": "int",
    "score": "float",
    "lang": "keyword",
    "open": "bool",
    "tags": "keyword_list",
}


@pytest.fixture
def settings() -> CollectionSettings:
    return CollectionSettings.create("docs", 3, "cosine", SCHEMA)


# --- names -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["a", "docs", "Docs_2", "_private", "9lives", "a.b-c_d", "x" * 128, "v1.0"]
)
def test_valid_names_are_accepted(name: str) -> None:
    assert check_name("collection", name) == name


@pytest.mark.parametrize(
    "name",
    ["", ".hidden", "-dash", "has space", "slash/name", "x" * 129, "naïve", "tab\t", "semi;colon"],
)
def test_invalid_names_are_refused_naming_the_name(name: str) -> None:
    with pytest.raises(InvalidArgument, match=re.escape(f"invalid tenant name {name!r}")):
        check_name("tenant", name)


@pytest.mark.parametrize("name", [None, 7, b"docs"])
def test_names_must_be_strings(name: object) -> None:
    with pytest.raises(InvalidArgument, match=re.escape(repr(name))):
        check_name("attribute", name)  # type: ignore[arg-type]


def test_name_error_says_what_is_allowed() -> None:
    with pytest.raises(InvalidArgument, match=re.escape("1-128 characters from A-Z a-z 0-9 _ . -")):
        check_name("collection", "bad name")


# --- metric and attribute type ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "metric"),
    [("cosine", Metric.COSINE), ("IP", Metric.IP), ("L2", Metric.L2), (Metric.L2, Metric.L2)],
)
def test_metric_parse_is_case_insensitive(text: str, metric: Metric) -> None:
    assert Metric.parse(text) is metric


def test_unknown_metric_names_value_and_allowed() -> None:
    with pytest.raises(
        InvalidArgument, match=re.escape("unknown metric 'dot': allowed are cosine, ip, l2")
    ):
        Metric.parse("dot")


def test_only_l2_is_a_distance() -> None:
    assert [m for m in Metric if not m.higher_is_better] == [Metric.L2]


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("int", AttributeType.INT),
        ("FLOAT", AttributeType.FLOAT),
        ("keyword", AttributeType.KEYWORD),
        ("bool", AttributeType.BOOL),
        ("keyword_list", AttributeType.KEYWORD_LIST),
        ("keyword-list", AttributeType.KEYWORD_LIST),
        (AttributeType.INT, AttributeType.INT),
    ],
)
def test_attribute_type_parse(text: str, kind: AttributeType) -> None:
    assert AttributeType.parse(text) is kind


def test_unknown_attribute_type_names_value_and_allowed() -> None:
    with pytest.raises(
        InvalidArgument,
        match=re.escape(
            "unknown attribute type 'text': allowed are int, float, keyword, bool, keyword_list"
        ),
    ):
        AttributeType.parse("text")


# --- settings --------------------------------------------------------------------------------


@pytest.mark.parametrize("dim", [1, 3, 97, 256, MAX_DIM])
def test_dims_in_range_are_accepted(dim: int) -> None:
    assert CollectionSettings.create("docs", dim, "l2").dim == dim


@pytest.mark.parametrize("dim", [0, -1, MAX_DIM + 1, 3.0, True, "3", None])
def test_bad_dims_are_refused_naming_the_value(dim: object) -> None:
    with pytest.raises(
        InvalidArgument, match=re.escape(f"invalid dim {dim!r}: must be an integer in 1..{MAX_DIM}")
    ):
        CollectionSettings.create("docs", dim, "l2")  # type: ignore[arg-type]


def test_settings_validate_name_metric_and_schema() -> None:
    with pytest.raises(InvalidArgument, match="invalid collection name 'my docs'"):
        CollectionSettings.create("my docs", 3, "l2")
    with pytest.raises(InvalidArgument, match="unknown metric 'hamming'"):
        CollectionSettings.create("docs", 3, "hamming")
    with pytest.raises(InvalidArgument, match="invalid attribute name 'release year'"):
        CollectionSettings.create("docs", 3, "l2", {"release year": "int"})
    with pytest.raises(InvalidArgument, match="unknown attribute type 'date'"):
        CollectionSettings.create("docs", 3, "l2", {"published": "date"})


def test_settings_parse_the_schema_types(settings: CollectionSettings) -> None:
    assert settings.metric is Metric.COSINE
    assert dict(settings.schema) == {
        "year": AttributeType.INT,
        "score": AttributeType.FLOAT,
        "lang": AttributeType.KEYWORD,
        "open": AttributeType.BOOL,
        "tags": AttributeType.KEYWORD_LIST,
    }


def test_settings_json_round_trip(settings: CollectionSettings) -> None:
    data = settings.to_json()
    assert data == {"name": "docs", "dim": 3, "metric": "cosine", "schema": SCHEMA}
    assert CollectionSettings.from_json(data) == settings
    assert CollectionSettings.from_json({"name": "x", "dim": 2, "metric": "ip"}).schema == {}


# --- attribute values ------------------------------------------------------------------------


def test_valid_attributes_are_returned_normalised(settings: CollectionSettings) -> None:
    values = {"year": 2020, "score": 2, "lang": "en", "open": False, "tags": ["a", "b", "a"]}
    checked = settings.check_attributes("p1", values)
    assert checked == {"year": 2020, "score": 2.0, "lang": "en", "open": False, "tags": ["a", "b"]}
    assert type(checked["score"]) is float
    assert settings.check_attributes("p1", {"tags": ("x", "y")}) == {"tags": ["x", "y"]}
    assert settings.check_attributes("p1", {"tags": []}) == {"tags": []}


@pytest.mark.parametrize("value", [-(2**63), 2**63 - 1, 0])
def test_int_attributes_take_the_int64_range(settings: CollectionSettings, value: int) -> None:
    assert settings.check_attributes("p", {"year": value}) == {"year": value}


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("year", True, "attribute 'year' is int, got bool True"),
        ("year", 2020.0, "attribute 'year' is int, got float 2020.0"),
        ("year", "2020", "attribute 'year' is int, got str '2020'"),
        ("year", 2**63, f"attribute 'year' is int, got int {2**63}"),
        ("year", -(2**63) - 1, f"attribute 'year' is int, got int {-(2**63) - 1}"),
        ("score", False, "attribute 'score' is float, got bool False"),
        ("score", "1.5", "attribute 'score' is float, got str '1.5'"),
        ("score", float("nan"), "attribute 'score' must be a finite float, got nan"),
        ("score", float("-inf"), "attribute 'score' must be a finite float, got -inf"),
        ("lang", 5, "attribute 'lang' is keyword, got int 5"),
        ("lang", ["en"], "attribute 'lang' is keyword, got list ['en']"),
        ("open", 1, "attribute 'open' is bool, got int 1"),
        ("open", "true", "attribute 'open' is bool, got str 'true'"),
        ("tags", "bio", "attribute 'tags' is keyword_list, got str 'bio'"),
        ("tags", ["bio", 3], "attribute 'tags' is keyword_list, got list ['bio', 3]"),
        ("tags", {"bio": 1}, "attribute 'tags' is keyword_list, got dict {'bio': 1}"),
        ("tags", None, "attribute 'tags' is keyword_list, got NoneType None"),
    ],
)
def test_attribute_coercion_errors_name_point_attribute_and_value(
    settings: CollectionSettings, key: str, value: object, message: str
) -> None:
    with pytest.raises(InvalidArgument, match=re.escape(f"point 'doc-7': {message}")):
        settings.check_attributes("doc-7", {key: value})


def test_unknown_attribute_names_the_schema(settings: CollectionSettings) -> None:
    with pytest.raises(
        InvalidArgument,
        match=re.escape(
            "point 'p': unknown attribute 'colour' for collection 'docs' "
            "(schema has: lang, open, score, tags, year)"
        ),
    ):
        settings.check_attributes("p", {"year": 1, "colour": "red"})
    bare = CollectionSettings.create("bare", 3, "l2")
    with pytest.raises(InvalidArgument, match=re.escape("(schema has: none)")):
        bare.check_attributes("p", {"year": 1})


def test_float_attribute_out_of_float_range_is_invalid_argument(
    settings: CollectionSettings,
) -> None:
    with pytest.raises(InvalidArgument, match="attribute 'score'"):
        settings.check_attributes("p", {"score": 10**400})


# --- the exception hierarchy -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "builtin"),
    [
        (errors.InvalidArgument, ValueError),
        (errors.DimensionMismatch, ValueError),
        (errors.InvalidFilter, ValueError),
        (errors.NotFound, KeyError),
    ],
)
def test_errors_also_subclass_the_builtin_a_caller_catches(
    kind: type[errors.VecdbError], builtin: type[Exception]
) -> None:
    assert issubclass(kind, builtin)
    assert issubclass(kind, errors.VecdbError)


def test_every_engine_error_is_a_vecdb_error() -> None:
    for kind in (
        errors.InvalidArgument,
        errors.DimensionMismatch,
        errors.InvalidFilter,
        errors.NotFound,
        errors.AlreadyExists,
        errors.FailedPrecondition,
        errors.ResourceExhausted,
        errors.Unauthenticated,
        errors.PermissionDenied,
    ):
        assert issubclass(kind, errors.VecdbError), kind
    assert issubclass(errors.DimensionMismatch, errors.InvalidArgument)
    assert issubclass(errors.InvalidFilter, errors.InvalidArgument)


def test_not_found_message_is_not_quoted() -> None:
    assert str(errors.NotFound("collection 'x' does not exist")) == "collection 'x' does not exist"
    assert str(errors.NotFound()) == ""
