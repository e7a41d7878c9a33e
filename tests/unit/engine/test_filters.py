"""Filters: JSON parsing and its error messages, evaluation over attribute columns, round trips."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from vecdb.engine import Collection, Database, attributes
from vecdb.engine import filters as flt
from vecdb.engine.attributes import AttributeTable
from vecdb.engine.errors import InvalidArgument, InvalidFilter
from vecdb.engine.schema import AttributeType

SCHEMA = {
    "year": AttributeType.INT,
    "score": AttributeType.FLOAT,
    "lang": AttributeType.KEYWORD,
    "open": AttributeType.BOOL,
    "tags": AttributeType.KEYWORD_LIST,
}

# id -> attributes; "p4" has no attributes at all
POINTS: dict[str, dict[str, object]] = {
    "p0": {"year": 2019, "score": 0.5, "lang": "en", "open": True, "tags": ["bio", "chem"]},
    "p1": {"year": 2020, "score": 1.5, "lang": "de", "open": False, "tags": ["bio"]},
    "p2": {"year": 2021, "score": -2.0, "lang": "en", "tags": []},
    "p3": {"year": 2020, "lang": "fr", "open": True, "tags": ["physics"]},
    "p4": {},
}


def make_collection(directory: Path) -> Collection:
    database = Database(directory)
    docs = database.create_collection("docs", 3, "l2", SCHEMA)
    ids = list(POINTS)
    docs.upsert(
        ids, np.arange(len(ids) * 3, dtype=np.float32).reshape(-1, 3), list(POINTS.values())
    )
    return docs


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Collection:
    """One collection for the tests that only read."""
    return make_collection(tmp_path_factory.mktemp("filters"))


@pytest.fixture
def collection(tmp_path: Path) -> Collection:
    """A collection of this test's own, for tests that write."""
    return make_collection(tmp_path)


def matching(collection: Collection, node: flt.Filter) -> set[str]:
    (hits,) = collection.search(np.zeros(collection.dim, np.float32), 100, filter=node)
    return set(hits.ids)


# --- JSON parsing ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"field": "year", "eq": 2020}, flt.Equals("year", 2020)),
        ({"field": "lang", "in": ["en", "de"]}, flt.In("lang", ("en", "de"))),
        ({"field": "tags", "contains": "bio"}, flt.Contains("tags", "bio")),
        ({"field": "year", "gte": 2000, "lt": 2010}, flt.Range("year", gte=2000.0, lt=2010.0)),
        ({"field": "score", "gt": -1.5}, flt.Range("score", gt=-1.5)),
        ({"field": "score", "lte": 3}, flt.Range("score", lte=3.0)),
        ({"not": {"field": "open", "eq": True}}, flt.Not(flt.Equals("open", True))),
        (
            {"and": [{"field": "year", "eq": 1}, {"or": [{"field": "lang", "eq": "en"}]}]},
            flt.And((flt.Equals("year", 1), flt.Or((flt.Equals("lang", "en"),)))),
        ),
    ],
)
def test_from_json_parses_every_form(data: dict[str, object], expected: flt.Filter) -> None:
    assert flt.from_json(data) == expected


def test_range_bounds_are_parsed_as_floats() -> None:
    parsed = flt.from_json({"field": "year", "gt": 3})
    assert isinstance(parsed, flt.Range)
    assert type(parsed.gt) is float


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (["field", "year"], "a filter must be a JSON object, got ['field', 'year']"),
        ("year = 2020", "a filter must be a JSON object, got 'year = 2020'"),
        ({"and": []}, '"and" takes a non-empty list of filters, alone'),
        ({"or": []}, '"or" takes a non-empty list of filters, alone'),
        ({"and": {"field": "year", "eq": 1}}, '"and" takes a non-empty list'),
        ({"and": [{"field": "year", "eq": 1}], "field": "x"}, '"and" takes a non-empty list'),
        ({"not": {"field": "year", "eq": 1}, "or": []}, '"or" takes a non-empty list'),
        ({"not": {"field": "year", "eq": 1}, "field": "lang"}, '"not" takes one filter, alone'),
        ({"eq": 2020}, 'a condition needs "field" (a string)'),
        ({"field": 7, "eq": 2020}, "{'field': 7, 'eq': 2020}"),
        ({"field": "year"}, "condition on 'year' must have exactly one of eq, in, contains"),
        ({"field": "year", "eq": 1, "in": [1]}, "got ['eq', 'in']"),
        ({"field": "year", "eq": 1, "gt": 0}, "got ['eq', 'gt']"),
        ({"field": "year", "between": [1, 2]}, "got ['between']"),
        ({"field": "lang", "in": []}, '"in" takes a non-empty list of values'),
        (
            {"field": "lang", "in": "en"},
            "\"in\" takes a non-empty list of values: {'field': 'lang'",
        ),
        ({"field": "tags", "contains": ["bio"]}, '"contains" takes a keyword string'),
        ({"field": "year", "gt": "2000"}, "range bound gt must be a number, got '2000'"),
        ({"field": "year", "lte": True}, "range bound lte must be a number, got True"),
        ({"field": "year", "gte": None}, "range bound gte must be a number, got None"),
    ],
)
def test_from_json_errors_name_the_bad_value(data: object, message: str) -> None:
    with pytest.raises(InvalidFilter, match=re.escape(message)):
        flt.from_json(data)


def test_from_json_refuses_deep_nesting() -> None:
    node: dict[str, object] = {"field": "year", "eq": 1}
    for _ in range(flt.MAX_DEPTH + 1):
        node = {"not": node}
    with pytest.raises(InvalidFilter, match=f"deeper than {flt.MAX_DEPTH} levels"):
        flt.from_json(node)
    # the deepest allowed nesting parses
    shallow: dict[str, object] = {"field": "year", "eq": 1}
    for _ in range(flt.MAX_DEPTH):
        shallow = {"not": shallow}
    assert isinstance(flt.from_json(shallow), flt.Not)


def test_invalid_filter_is_an_invalid_argument_and_a_value_error() -> None:
    with pytest.raises(InvalidArgument):
        flt.from_json([])
    with pytest.raises(ValueError):
        flt.from_json([])


@pytest.mark.parametrize(
    "node",
    [
        flt.Equals("lang", "en"),
        flt.Equals("open", False),
        flt.Equals("year", 2020),
        flt.Equals("score", 1.5),
        flt.In("year", (1, 2, 3)),
        flt.In("tags", ("a", "b")),
        flt.Contains("tags", "bio"),
        flt.Range("year", gt=1.0),
        flt.Range("score", gte=-1.0, lt=2.0, lte=1.5),
        flt.Not(flt.Or((flt.Equals("lang", "en"), flt.Contains("tags", "x")))),
        flt.And((flt.Range("year", lte=3.0), flt.Not(flt.Equals("open", True)))),
    ],
)
def test_to_json_then_from_json_is_identity(node: flt.Filter) -> None:
    data = flt.to_json(node)
    assert flt.from_json(data) == node
    # the JSON form is plain JSON
    assert flt.from_json(json.loads(json.dumps(data))) == node


def test_to_json_leaves_unset_bounds_out() -> None:
    assert flt.to_json(flt.Range("year", gte=1.0)) == {"field": "year", "gte": 1.0}


# --- evaluation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"field": "year", "eq": 2020}, {"p1", "p3"}),
        ({"field": "year", "eq": 2020.0}, {"p1", "p3"}),
        ({"field": "year", "eq": 2020.5}, set()),
        ({"field": "score", "eq": 1.5}, {"p1"}),
        ({"field": "score", "eq": -2}, {"p2"}),
        ({"field": "lang", "eq": "en"}, {"p0", "p2"}),
        ({"field": "lang", "eq": "zz"}, set()),
        ({"field": "open", "eq": True}, {"p0", "p3"}),
        ({"field": "open", "eq": False}, {"p1"}),
        ({"field": "year", "in": [2019, 2021]}, {"p0", "p2"}),
        ({"field": "lang", "in": ["de", "fr", "zz"]}, {"p1", "p3"}),
        ({"field": "tags", "in": ["chem", "physics"]}, {"p0", "p3"}),
        ({"field": "tags", "contains": "bio"}, {"p0", "p1"}),
        ({"field": "tags", "contains": "nothing"}, set()),
        ({"field": "year", "gt": 2019, "lt": 2021}, {"p1", "p3"}),
        ({"field": "year", "gte": 2019, "lte": 2021}, {"p0", "p1", "p2", "p3"}),
        ({"field": "score", "lt": 0}, {"p2"}),
        ({"field": "score", "gte": 0.5}, {"p0", "p1"}),
        # absent values never match a condition, so a negation matches them
        ({"not": {"field": "open", "eq": True}}, {"p1", "p2", "p4"}),
        ({"not": {"field": "score", "gte": -100}}, {"p3", "p4"}),
        (
            {"and": [{"field": "lang", "eq": "en"}, {"field": "tags", "contains": "bio"}]},
            {"p0"},
        ),
        ({"or": [{"field": "lang", "eq": "fr"}, {"field": "score", "lt": 0}]}, {"p2", "p3"}),
        ({"not": {"or": [{"field": "year", "eq": 2020}, {"field": "lang", "eq": "en"}]}}, {"p4"}),
        # one child, and more than two
        ({"and": [{"field": "lang", "eq": "en"}]}, {"p0", "p2"}),
        ({"or": [{"field": "tags", "contains": "physics"}]}, {"p3"}),
        (
            {
                "and": [
                    {"field": "year", "gte": 2019},
                    {"field": "tags", "contains": "bio"},
                    {"field": "open", "eq": True},
                ]
            },
            {"p0"},
        ),
        (
            {
                "or": [
                    {"field": "lang", "eq": "fr"},
                    {"field": "score", "lt": 0},
                    {"field": "year", "eq": 2019},
                ]
            },
            {"p0", "p2", "p3"},
        ),
    ],
)
def test_filtered_search_returns_the_matching_points(
    shared: Collection, data: dict[str, object], expected: set[str]
) -> None:
    assert matching(shared, flt.from_json(data)) == expected


@pytest.mark.parametrize(
    "data",
    [
        {"field": "year", "eq": 2020},
        {"field": "score", "gte": 0.5},
        {"field": "lang", "in": ["de", "fr", "zz"]},
        {"field": "open", "eq": True},
        {"field": "tags", "contains": "bio"},
        {"field": "tags", "in": ["chem", "physics"]},
        {"not": {"field": "score", "gte": -100}},
        {"and": [{"field": "lang", "eq": "en"}, {"field": "tags", "contains": "bio"}]},
        {"or": [{"field": "lang", "eq": "fr"}, {"field": "score", "lt": 0}]},
    ],
)
def test_a_permuted_table_evaluates_to_the_permuted_mask(
    shared: Collection, data: dict[str, object]
) -> None:
    node = flt.from_json(data)
    table = shared.attributes
    order = np.array([3, 0, 4, 2], dtype=np.int64)  # some rows, in another order
    permuted = table.permuted(order)
    expected = flt.evaluate(node, table, 5)[order]
    np.testing.assert_array_equal(flt.evaluate(node, permuted, len(order)), expected)
    # and over given positions, as over given rows
    np.testing.assert_array_equal(
        flt.evaluate(node, permuted, np.array([1, 3], dtype=np.int64)), expected[[1, 3]]
    )


def test_a_permuted_table_reads_its_source_rows_and_takes_no_writes(
    collection: Collection,
) -> None:
    permuted = collection.attributes.permuted(np.array([1, 0], dtype=np.int64))
    assert permuted.columns["tags"].get(0) == ["bio"] and permuted.columns["lang"].get(1) == "en"
    assert permuted.nbytes() > 0
    with pytest.raises(TypeError, match="read-only"):
        permuted.columns["tags"].set(np.array([0]), [["x"]])
    with pytest.raises(InvalidFilter, match="unknown attribute 'colour'"):
        flt.evaluate(flt.Equals("colour", "red"), permuted, 2)
    # a copy is not kept up to date: its users mask out rows deleted since (as dead rows)
    bio = flt.Contains("tags", "bio")
    assert flt.evaluate(bio, permuted, 2).tolist() == [True, True]
    collection.delete(["p0"])
    assert flt.evaluate(bio, permuted, 2).tolist() == [True, True]


def test_replacing_a_point_replaces_its_attribute_values(collection: Collection) -> None:
    collection.upsert(["p0"], [[1.0, 1.0, 1.0]], [{"lang": "de"}])
    assert matching(collection, flt.Contains("tags", "chem")) == set()
    assert matching(collection, flt.Equals("lang", "de")) == {"p0", "p1"}
    assert matching(collection, flt.Equals("year", 2019)) == set()


def test_deleted_points_match_no_filter(collection: Collection) -> None:
    collection.delete(["p0", "p4"])
    assert matching(collection, flt.Contains("tags", "bio")) == {"p1"}
    assert matching(collection, flt.Not(flt.Equals("lang", "de"))) == {"p2", "p3"}


@pytest.mark.parametrize(
    ("node", "message"),
    [
        (
            flt.Equals("colour", "red"),
            "filter names unknown attribute 'colour' (schema has: lang, open, score, tags, year)",
        ),
        (flt.Equals("lang", 5), "filter value 5 does not fit attribute 'lang' of type keyword"),
        (
            flt.Equals("year", "2020"),
            "filter value '2020' does not fit attribute 'year' of type int",
        ),
        (flt.Equals("year", True), "filter value True does not fit attribute 'year' of type int"),
        (
            flt.Equals("score", None),
            "filter value None does not fit attribute 'score' of type float",
        ),
        (flt.Equals("open", 1), "filter value 1 does not fit attribute 'open' of type bool"),
        (flt.In("lang", ("en", 3)), "filter value 3 does not fit attribute 'lang' of type keyword"),
        (flt.In("year", (1, "x")), "filter value 'x' does not fit attribute 'year' of type int"),
        (
            flt.In("tags", ("bio", 4)),
            "filter value 4 does not fit attribute 'tags' of type keyword_list",
        ),
        (
            flt.Contains("tags", 4),
            "filter value 4 does not fit attribute 'tags' of type keyword_list",
        ),  # type: ignore[arg-type]
        (
            flt.Range("lang", gt=1.0),
            "range does not apply to attribute 'lang' of type keyword (allowed: equals, in)",
        ),
        (
            flt.Range("open", gt=0.0),
            "range does not apply to attribute 'open' of type bool (allowed: equals)",
        ),
        (
            flt.Range("tags", gt=0.0),
            "range does not apply to attribute 'tags' of type keyword_list",
        ),
        (
            flt.In("open", (True,)),
            "in does not apply to attribute 'open' of type bool (allowed: equals)",
        ),
        (
            flt.Contains("year", "x"),
            "contains does not apply to attribute 'year' of type int (allowed: equals, in, range)",
        ),
        (flt.Contains("lang", "en"), "contains does not apply to attribute 'lang' of type keyword"),
        (
            flt.Equals("tags", "bio"),
            "equals does not apply to attribute 'tags' of type keyword_list (allowed: contains, in (any of))",
        ),
        (flt.And(()), "and needs at least one filter"),
        (flt.Or(()), "or needs at least one filter"),
        (flt.In("lang", ()), "in on 'lang' needs at least one value"),
        (flt.Range("year"), "range on 'year' needs at least one of gt, gte, lt, lte"),
        (flt.Range("year", lt=float("nan")), "range bound lt on 'year' is NaN"),
        # the error of a nested child surfaces
        (
            flt.Not(flt.And((flt.Equals("year", 1), flt.Equals("nope", 1)))),
            "unknown attribute 'nope'",
        ),
    ],
)
def test_bad_filters_raise_naming_the_bad_value(
    shared: Collection, node: flt.Filter, message: str
) -> None:
    with pytest.raises(InvalidFilter, match=re.escape(message)):
        shared.search([0.0, 0.0, 0.0], 3, filter=node)


def test_unknown_attribute_in_an_empty_schema_says_none(tmp_path: Path) -> None:
    database = Database(tmp_path)
    bare = database.create_collection("bare", 2, "ip")
    bare.upsert(["a"], [[1.0, 2.0]])
    with pytest.raises(InvalidFilter, match=re.escape("'year' (schema has: none)")):
        bare.search([1.0, 0.0], 1, filter=flt.Equals("year", 1))


def test_evaluate_refuses_trees_deeper_than_the_limit() -> None:
    table = AttributeTable({"year": AttributeType.INT})
    table.grow(4)
    node: flt.Filter = flt.Equals("year", 1)
    for _ in range(flt.MAX_DEPTH + 1):
        node = flt.Not(node)
    with pytest.raises(InvalidFilter, match="nests deeper"):
        flt.evaluate(node, table, 4)


def test_evaluate_returns_a_mask_over_exactly_n_rows() -> None:
    table = AttributeTable({"year": AttributeType.INT, "tags": AttributeType.KEYWORD_LIST})
    table.grow(8)
    table.set_rows(np.arange(3), [{"year": 1, "tags": ["a"]}, {"year": 2}, {"tags": ["a", "b"]}])
    mask = flt.evaluate(flt.Or((flt.Equals("year", 2), flt.Contains("tags", "b"))), table, 3)
    assert mask.dtype == np.bool_
    assert mask.tolist() == [False, True, True]
    # rows beyond n are not looked at even when they hold a match
    table.set_rows(np.array([5]), [{"tags": ["b"]}])
    assert flt.evaluate(flt.Contains("tags", "b"), table, 4).tolist() == [False, False, True, False]


def test_in_on_an_int_attribute_compares_large_values_exactly(tmp_path: Path) -> None:
    database = Database(tmp_path)
    docs = database.create_collection("docs", 2, "l2", {"n": "int"})
    docs.upsert(["big"], [[1.0, 0.0]], [{"n": 2**53}])
    # Equals is exact; In must agree with it
    assert matching(docs, flt.Equals("n", 2**53 + 1)) == set()
    assert matching(docs, flt.In("n", (2**53 + 1,))) == set()


@pytest.mark.parametrize(
    "field",
    ["level", "score", "lang"],
)
@pytest.mark.parametrize("count", [1, 3, 8, 9, 32, 33, 60])
def test_in_matches_the_rows_holding_one_of_its_values(field: str, count: int) -> None:
    # a few values are compared one by one, many go through np.isin (numbers) or a table over
    # the dictionary (keywords): each way must give the same rows, absent values never match
    rng = np.random.default_rng(count)
    n = attributes.NARROW_MIN_ROWS + 1_000  # past it, int comparisons use the narrow copy
    table = AttributeTable(
        {"level": AttributeType.INT, "score": AttributeType.FLOAT, "lang": AttributeType.KEYWORD}
    )
    table.grow(n)
    drawn = rng.integers(0, 80, n)
    absent = rng.random(n) < 0.1
    words = [f"w{v}" for v in range(80)]
    held = {
        "level": [None if a else int(v) for v, a in zip(drawn, absent, strict=True)],
        "score": [None if a else float(v) / 2 for v, a in zip(drawn, absent, strict=True)],
        "lang": [None if a else words[v] for v, a in zip(drawn, absent, strict=True)],
    }
    table.set_rows(
        np.arange(n),
        [{name: held[name][i] for name in held if held[name][i] is not None} for i in range(n)],
    )
    # 0 (what an absent number is stored as) and some of 80-89 (values no row holds)
    picked = np.concatenate([[0], 1 + rng.choice(89, count - 1, replace=False)])
    wanted: list[object] = {
        "level": [int(v) for v in picked],
        "score": [float(v) / 2 for v in picked],
        "lang": [f"w{v}" for v in picked],
    }[field]
    expected = [value is not None and value in set(wanted) for value in held[field]]
    # repeated values change nothing
    mask = flt.evaluate(flt.In(field, tuple(wanted + wanted[:2])), table, n)
    assert mask.dtype == np.bool_
    assert mask.tolist() == expected
    rows = np.flatnonzero(rng.random(n) < 0.01)
    assert flt.evaluate(flt.In(field, tuple(wanted)), table, rows).tolist() == [
        expected[i] for i in rows.tolist()
    ]


@pytest.mark.parametrize("low, high", [(-100, 100), (0, 10_000), (-(10**6), 10**6), (0, 2**40)])
def test_int_passes_over_a_narrowed_copy_match_int64_comparisons(low: int, high: int) -> None:
    # past NARROW_MIN_ROWS an int column compares a copy in the narrowest type holding its
    # values; every bound, in or beyond that type's range, must match the int64 answer, through
    # writes to covered rows, appended rows and cleared rows
    rng = np.random.default_rng(low & 0xFFFF)
    n = attributes.NARROW_MIN_ROWS + 5_000
    table = AttributeTable({"level": AttributeType.INT})
    table.grow(n + 3_000)
    values = rng.integers(low, high, n, endpoint=True)
    table.set_rows(np.arange(n), [{"level": int(v)} for v in values])
    present = np.ones(n + 3_000, np.bool_)
    present[n:] = False
    reference = np.zeros(n + 3_000, np.int64)
    reference[:n] = values
    middle = (low + high) // 2
    bounds = [low - 1, low, middle, middle + 0.5, high, high + 1, 2**62, -(2**62), 1e300, -1e300]
    checks = 0

    def check(rows: int) -> None:
        nonlocal checks
        stored, has = reference[:rows], present[:rows]
        for bound in bounds:
            for node, want in (
                (flt.Range("level", lt=float(bound)), stored < bound),
                (flt.Range("level", gte=float(bound)), stored >= bound),
                (
                    flt.Range("level", gt=float(bound), lte=float(high)),
                    (stored > bound) & (stored <= high),
                ),
                (flt.Equals("level", bound), stored == bound),
            ):
                got = flt.evaluate(node, table, rows)
                np.testing.assert_array_equal(got, want & has, err_msg=f"{node} over {rows} rows")
                checks += 1

    check(n)  # every row has a value
    absent = rng.choice(n, 50, replace=False)
    table.clear_rows(absent)
    present[absent] = False
    check(n)
    # rows appended past the copy (compared as a tail), then a write to a covered row and a
    # cleared row (each drops the copy)
    more = np.arange(n, n + 3_000)
    extra = rng.integers(low, high, 3_000, endpoint=True)
    table.set_rows(more, [{"level": int(v)} for v in extra])
    reference[more], present[more] = extra, True
    check(n + 3_000)
    table.set_rows(np.array([7]), [{"level": high}])
    reference[7], present[7] = high, True
    check(n + 3_000)
    table.clear_rows(np.array([11]))
    present[11] = False
    check(n + 3_000)
    check(n - 1_000)  # fewer rows than the copy covers
    assert checks == 4 * len(bounds) * 6


def test_filter_numbers_too_large_for_a_float_are_invalid_filters(shared: Collection) -> None:
    with pytest.raises(InvalidFilter, match=re.escape(str(10**400)[:20])):
        shared.search([0.0, 0.0, 0.0], 3, filter=flt.Equals("score", 10**400))


# --- helpers ---------------------------------------------------------------------------------


def test_fields_of_collects_every_field_in_the_tree() -> None:
    node = flt.And(
        (flt.Equals("a", 1), flt.Not(flt.Or((flt.Contains("b", "x"), flt.Range("c", gt=1.0)))))
    )
    assert flt.fields_of(node) == {"a", "b", "c"}


def test_conjunction_skips_none_and_nests_only_when_needed() -> None:
    one = flt.Equals("a", 1)
    two = flt.Equals("b", 2)
    assert flt.conjunction([]) is None
    assert flt.conjunction([None, None]) is None
    assert flt.conjunction([None, one]) is one
    assert flt.conjunction([one, None, two]) == flt.And((one, two))
