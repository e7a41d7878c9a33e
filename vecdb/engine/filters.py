"""Filters: a tree of predicates over attributes, evaluated to a row mask in vectorized steps.

The JSON form (batch files, CLI) mirrors the protobuf message::

    {"and": [F, ...]}   {"or": [F, ...]}   {"not": F}
    {"field": "year", "eq": 2020}
    {"field": "lang", "in": ["en", "de"]}
    {"field": "year", "gte": 2000, "lt": 2010}        (any of gt / gte / lt / lte)
    {"field": "tags", "contains": "biology"}
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from vecdb.engine.attributes import (
    AttributeTable,
    KeywordListColumn,
    Mask,
    NumericColumn,
    Rows,
    Where,
)
from vecdb.engine.errors import InvalidFilter
from vecdb.engine.schema import AttributeType

MAX_DEPTH = 32


@dataclass(frozen=True)
class And:
    """Every child must match."""

    children: tuple[Filter, ...]


@dataclass(frozen=True)
class Or:
    """At least one child must match."""

    children: tuple[Filter, ...]


@dataclass(frozen=True)
class Not:
    """The child must not match."""

    child: Filter


@dataclass(frozen=True)
class Equals:
    """The attribute equals the value."""

    field: str
    value: object


@dataclass(frozen=True)
class In:
    """The attribute equals one of the values (keyword lists: contains any of them)."""

    field: str
    values: tuple[object, ...]


@dataclass(frozen=True)
class Range:
    """The numeric attribute lies within the given bounds (unset bounds are open)."""

    field: str
    gt: float | None = None
    gte: float | None = None
    lt: float | None = None
    lte: float | None = None


@dataclass(frozen=True)
class Contains:
    """The keyword-list attribute contains the keyword."""

    field: str
    value: str


Filter = And | Or | Not | Equals | In | Range | Contains

_BOUNDS = ("gt", "gte", "lt", "lte")


def evaluate(node: Filter, table: AttributeTable, n: Where) -> Mask:
    """Return the mask of the first ``n`` rows that match ``node`` (raises InvalidFilter).

    ``n`` may instead be sorted rows: the mask then says which of them match.
    """
    return _evaluate(node, table, n, 0)


def select(
    node: Filter, table: AttributeTable, n: int, limit: int, *, ordered: bool = True
) -> Rows | None:
    """Return the rows among the first ``n`` that match ``node`` when an index answers it
    with at most about ``limit`` rows without a pass over every row; otherwise None (evaluate a
    mask instead). Invalid filters return None too: :func:`evaluate` raises for them. The rows
    are ascending when ``ordered``, else in whatever order the index yields them (no sort).

    Ranges and equality on int / float attributes use the column's sorted index, keyword-list
    ``contains`` its posting list; an ``and`` takes its most selective such child and checks
    the others on those rows only.
    """
    try:
        return _select(node, table, n, limit, 0, ordered)
    except (InvalidFilter, OverflowError):
        return None


def _select(
    node: Filter, table: AttributeTable, n: int, limit: int, depth: int, ordered: bool
) -> Rows | None:
    if depth > MAX_DEPTH:
        return None
    if isinstance(node, And):
        best: Rows | None = None
        chosen = -1
        for position, child in enumerate(node.children):
            rows = _select(child, table, n, limit, depth + 1, ordered)
            if rows is not None and (best is None or len(rows) < len(best)):
                best, chosen = rows, position
        if best is None:
            return None
        for position, child in enumerate(node.children):
            if position != chosen and len(best):
                best = best[_evaluate(child, table, best, depth + 1)]
        return best
    if isinstance(node, Or | Not | In):
        return None
    column = table.columns.get(node.field)
    if isinstance(node, Range) and isinstance(column, NumericColumn):
        bounds = [node.gt, node.gte, node.lt, node.lte]
        if column.kind is AttributeType.BOOL or all(b is None for b in bounds):
            return None
        if any(b is not None and math.isnan(b) for b in bounds):
            return None
        return column.range_rows(
            n, gt=node.gt, gte=node.gte, lt=node.lt, lte=node.lte, limit=limit, ordered=ordered
        )
    if isinstance(node, Equals) and isinstance(column, NumericColumn):
        value = node.value
        if column.kind is AttributeType.BOOL or isinstance(value, bool):
            return None
        if isinstance(value, int):
            column._scalar(value)  # raises for values beyond int64 (evaluate says so)
            # ints compare as ints: an int beyond 2**53 is not its float
            return column.range_rows(n, gte=value, lte=value, limit=limit, ordered=ordered)
        if not isinstance(value, float) or math.isnan(value):
            return None
        if column.kind is AttributeType.INT and not value.is_integer():
            return np.zeros(0, dtype=np.int64)
        return column.range_rows(n, gte=value, lte=value, limit=limit, ordered=ordered)
    if isinstance(node, Contains) and isinstance(column, KeywordListColumn):
        if not isinstance(node.value, str):
            return None
        rows = column.rows_with(node.value)
        rows = rows[: np.searchsorted(rows, n)]
        return rows if len(rows) <= limit else None
    return None


def _evaluate(node: Filter, table: AttributeTable, n: Where, depth: int) -> Mask:
    if depth > MAX_DEPTH:
        raise InvalidFilter(f"filter nests deeper than {MAX_DEPTH} levels")
    if isinstance(node, And | Or):
        if not node.children:
            raise InvalidFilter(f"{type(node).__name__.lower()} needs at least one filter")
        masks = [_evaluate(c, table, n, depth + 1) for c in node.children]
        combine = np.logical_and if isinstance(node, And) else np.logical_or
        # a fresh array (callers narrow it in place; a child may be a column's own bitmap),
        # combined pairwise in place: no stacked copy of the children
        combined: Mask = combine(masks[0], masks[1]) if len(masks) > 1 else masks[0].copy()
        for mask in masks[2:]:
            combine(combined, mask, out=combined)
        return combined
    if isinstance(node, Not):
        return ~_evaluate(node.child, table, n, depth + 1)
    column = table.columns.get(node.field)
    if column is None:
        known = ", ".join(sorted(table.columns)) or "none"
        raise InvalidFilter(f"filter names unknown attribute {node.field!r} (schema has: {known})")
    if isinstance(node, Equals):
        return column.equals(node.value, n)
    if isinstance(node, In):
        if not node.values:
            raise InvalidFilter(f"in on {node.field!r} needs at least one value")
        return column.is_in(node.values, n)
    if isinstance(node, Range):
        bounds = [node.gt, node.gte, node.lt, node.lte]
        if all(b is None for b in bounds):
            raise InvalidFilter(f"range on {node.field!r} needs at least one of gt, gte, lt, lte")
        for name, bound in zip(_BOUNDS, bounds, strict=True):
            if bound is not None and math.isnan(bound):
                raise InvalidFilter(f"range bound {name} on {node.field!r} is NaN")
        return column.range(n, gt=node.gt, gte=node.gte, lt=node.lt, lte=node.lte)
    return column.contains(node.value, n)


def from_json(data: object) -> Filter:
    """Return the filter a JSON object describes, or raise InvalidFilter saying what is wrong."""
    return _from_json(data, 0)


def _from_json(data: object, depth: int) -> Filter:
    if depth > MAX_DEPTH:
        raise InvalidFilter(f"filter nests deeper than {MAX_DEPTH} levels")
    if not isinstance(data, Mapping):
        raise InvalidFilter(f"a filter must be a JSON object, got {data!r}")
    for key, kind in (("and", And), ("or", Or)):
        if key in data:
            children = data[key]
            if len(data) != 1 or not isinstance(children, list) or not children:
                raise InvalidFilter(f'"{key}" takes a non-empty list of filters, alone: {data!r}')
            return kind(tuple(_from_json(c, depth + 1) for c in children))
    if "not" in data:
        if len(data) != 1:
            raise InvalidFilter(f'"not" takes one filter, alone: {data!r}')
        return Not(_from_json(data["not"], depth + 1))
    field = data.get("field")
    if not isinstance(field, str):
        raise InvalidFilter(
            f'a condition needs "field" (a string) and one of eq, in, gt/gte/lt/lte, contains: {data!r}'
        )
    tests = set(data) - {"field"}
    if tests == {"eq"}:
        return Equals(field, data["eq"])
    if tests == {"in"}:
        values = data["in"]
        if not isinstance(values, list) or not values:
            raise InvalidFilter(f'"in" takes a non-empty list of values: {data!r}')
        return In(field, tuple(values))
    if tests == {"contains"}:
        value = data["contains"]
        if not isinstance(value, str):
            raise InvalidFilter(f'"contains" takes a keyword string: {data!r}')
        return Contains(field, value)
    if tests and tests <= set(_BOUNDS):
        bounds: dict[str, float] = {}
        for name in tests:
            bound = data[name]
            if isinstance(bound, bool) or not isinstance(bound, int | float):
                raise InvalidFilter(f"range bound {name} must be a number, got {bound!r}")
            bounds[name] = float(bound)
        return Range(field, **bounds)
    raise InvalidFilter(
        f"condition on {field!r} must have exactly one of eq, in, contains, "
        f"or range bounds gt/gte/lt/lte; got {sorted(tests)}"
    )


def to_json(node: Filter) -> dict[str, object]:
    """Return the JSON form of a filter (inverse of :func:`from_json`)."""
    if isinstance(node, And):
        return {"and": [to_json(c) for c in node.children]}
    if isinstance(node, Or):
        return {"or": [to_json(c) for c in node.children]}
    if isinstance(node, Not):
        return {"not": to_json(node.child)}
    if isinstance(node, Equals):
        return {"field": node.field, "eq": node.value}
    if isinstance(node, In):
        return {"field": node.field, "in": list(node.values)}
    if isinstance(node, Contains):
        return {"field": node.field, "contains": node.value}
    out: dict[str, object] = {"field": node.field}
    for name in _BOUNDS:
        bound = getattr(node, name)
        if bound is not None:
            out[name] = bound
    return out


def fields_of(node: Filter) -> set[str]:
    """Return the attribute names a filter refers to."""
    if isinstance(node, And | Or):
        return set().union(*(fields_of(c) for c in node.children))
    if isinstance(node, Not):
        return fields_of(node.child)
    return {node.field}


def conjunction(filters: Sequence[Filter | None]) -> Filter | None:
    """Return the And of the given filters (None entries skipped), or None if there are none."""
    present = tuple(f for f in filters if f is not None)
    if not present:
        return None
    return present[0] if len(present) == 1 else And(present)
