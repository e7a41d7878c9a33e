"""Hypothesis strategies for the engine's property tests, and the pure-Python oracles they use.

Values are drawn from small pools on purpose: equal attribute values and equal scores are where
filters and rankings go wrong, and a pool of four keywords makes them common.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from hypothesis import strategies as st
from numpy.typing import NDArray

from vecdb.engine import filters as flt
from vecdb.engine.schema import AttributeType, Metric

Schema = dict[str, AttributeType]
Attributes = dict[str, object]

KEYWORDS = ("red", "green", "blue", "white")
TENANTS = ("acme", "globex", "initech")
POINT_IDS = tuple(f"p{i}" for i in range(12))
FLOAT_POOL = (-2.5, -1.0, 0.0, 0.25, 1.0, 3.5)


# --- schemas and attributes ------------------------------------------------------------------


def schemas() -> st.SearchStrategy[Schema]:
    """Return schemas of one to five fields of random types (every type appears often)."""
    kinds = st.sampled_from(list(AttributeType))
    return st.lists(kinds, min_size=1, max_size=5).map(
        lambda types: {f"{kind.value}_{i}": kind for i, kind in enumerate(types)}
    )


def attribute_value(kind: AttributeType) -> st.SearchStrategy[object]:
    """Return values a field of type ``kind`` accepts, from a small pool so they collide."""
    if kind is AttributeType.INT:
        return st.integers(-3, 3)
    if kind is AttributeType.FLOAT:
        return st.sampled_from(FLOAT_POOL)
    if kind is AttributeType.KEYWORD:
        return st.sampled_from(KEYWORDS)
    if kind is AttributeType.BOOL:
        return st.booleans()
    return st.lists(st.sampled_from(KEYWORDS), max_size=3, unique=True)


def attributes_for(schema: Mapping[str, AttributeType]) -> st.SearchStrategy[Attributes]:
    """Return attribute dicts for ``schema``; any field may be absent."""
    return _attributes_for(tuple(schema.items()))


@functools.cache
def _attributes_for(fields: tuple[tuple[str, AttributeType], ...]) -> st.SearchStrategy[Attributes]:
    # built once per schema: building strategies costs more than drawing from them
    return st.fixed_dictionaries(
        {}, optional={name: attribute_value(kind) for name, kind in fields}
    )


# --- filters ---------------------------------------------------------------------------------


def _number(kind: AttributeType) -> st.SearchStrategy[float | int]:
    # an int field is also compared with floats (2.0 equals 2, 2.5 equals nothing)
    if kind is AttributeType.INT:
        return st.one_of(st.integers(-4, 4), st.sampled_from([-1.5, 0.0, 2.0, 2.5]))
    return st.one_of(st.sampled_from(FLOAT_POOL), st.integers(-3, 3))


def _range(name: str, kind: AttributeType) -> st.SearchStrategy[flt.Filter]:
    # bounds mostly from the values points hold, so "equal to the bound" is common
    pool = st.integers(-3, 3) if kind is AttributeType.INT else st.sampled_from(FLOAT_POOL)
    bound = st.one_of(st.none(), pool.map(float), pool.map(float), _number(kind).map(float))
    return (
        st.tuples(bound, bound, bound, bound)
        .filter(lambda b: any(x is not None for x in b))
        .map(lambda b: flt.Range(name, gt=b[0], gte=b[1], lt=b[2], lte=b[3]))
    )


def conditions(name: str, kind: AttributeType) -> st.SearchStrategy[flt.Filter]:
    """Return the leaf filters that apply to a field of type ``kind``."""
    if kind in (AttributeType.INT, AttributeType.FLOAT):
        number = _number(kind)
        # ranges twice as often: four optional bounds make more cases to cover
        return st.one_of(
            number.map(lambda v: flt.Equals(name, v)),
            st.lists(number, min_size=1, max_size=3).map(lambda v: flt.In(name, tuple(v))),
            _range(name, kind),
            _range(name, kind),
        )
    if kind is AttributeType.KEYWORD:
        # "black" is in no point: a value the column has never seen
        word = st.sampled_from((*KEYWORDS, "black"))
        return st.one_of(
            word.map(lambda v: flt.Equals(name, v)),
            st.lists(word, min_size=1, max_size=3).map(lambda v: flt.In(name, tuple(v))),
        )
    if kind is AttributeType.BOOL:
        return st.booleans().map(lambda v: flt.Equals(name, v))
    word = st.sampled_from((*KEYWORDS, "black"))
    return st.one_of(
        word.map(lambda v: flt.Contains(name, v)),
        st.lists(word, min_size=1, max_size=3).map(lambda v: flt.In(name, tuple(v))),
    )


def filters_for(schema: Mapping[str, AttributeType]) -> st.SearchStrategy[flt.Filter]:
    """Return valid filter trees (and / or / not over every kind of condition) for ``schema``."""
    return _filters_for(tuple(schema.items()))


def conditions_for(schema: Mapping[str, AttributeType]) -> st.SearchStrategy[flt.Filter]:
    """Return single conditions on any field of ``schema``."""
    return _conditions_for(tuple(schema.items()))


@functools.cache
def _conditions_for(
    fields: tuple[tuple[str, AttributeType], ...],
) -> st.SearchStrategy[flt.Filter]:
    return st.one_of(*(conditions(name, kind) for name, kind in fields))


@functools.cache
def _filters_for(fields: tuple[tuple[str, AttributeType], ...]) -> st.SearchStrategy[flt.Filter]:
    leaves = _conditions_for(fields)

    def extend(children: st.SearchStrategy[flt.Filter]) -> st.SearchStrategy[flt.Filter]:
        group = st.lists(children, min_size=1, max_size=3).map(tuple)
        return st.one_of(
            group.map(flt.And),
            group.map(flt.Or),
            children.map(flt.Not),
        )

    return st.recursive(leaves, extend, max_leaves=8)


def matches(node: flt.Filter, attributes: Mapping[str, object]) -> bool:
    """Return whether a point with ``attributes`` matches ``node``, evaluated in plain Python.

    An absent field matches no condition (so ``not`` of a condition on it matches).
    """
    if isinstance(node, flt.And):
        return all(matches(child, attributes) for child in node.children)
    if isinstance(node, flt.Or):
        return any(matches(child, attributes) for child in node.children)
    if isinstance(node, flt.Not):
        return not matches(node.child, attributes)
    if node.field not in attributes:
        return False
    value = attributes[node.field]
    if isinstance(node, flt.Contains):
        assert isinstance(value, list)
        return node.value in value
    if isinstance(node, flt.In):
        if isinstance(value, list):
            return any(v in value for v in node.values)
        return any(value == v for v in node.values)
    if isinstance(node, flt.Equals):
        return bool(value == node.value)
    assert isinstance(value, int | float)
    checks = (
        node.gt is None or value > node.gt,
        node.gte is None or value >= node.gte,
        node.lt is None or value < node.lt,
        node.lte is None or value <= node.lte,
    )
    return all(checks)


# --- vectors ---------------------------------------------------------------------------------


def grid_vectors(count: int, dim: int) -> st.SearchStrategy[NDArray[np.float32]]:
    """Return (count, dim) matrices of multiples of 1/4 in [-2, 2]: exact dot products, many ties.

    Rows are never all zero (cosine refuses those), so the same data serves every metric. Small
    matrices are drawn element by element (they shrink well); large ones from a seeded generator.
    """

    def fix(matrix: NDArray[np.float32]) -> NDArray[np.float32]:
        matrix = matrix.astype(np.float32).reshape(count, dim) / 4
        matrix[~matrix.any(axis=1), 0] = 1.0
        return matrix

    size = count * dim
    if size <= 64:
        return st.lists(st.integers(-8, 8), min_size=size, max_size=size).map(
            lambda flat: fix(np.asarray(flat))
        )
    return st.integers(0, 2**32 - 1).map(
        lambda seed: fix(np.random.default_rng(seed).integers(-8, 9, size))
    )


def gaussian_vectors(count: int, dim: int) -> st.SearchStrategy[NDArray[np.float32]]:
    """Return seeded standard-normal (count, dim) matrices (no ties, realistic rounding)."""
    return st.integers(0, 2**32 - 1).map(
        lambda seed: np.random.default_rng(seed).standard_normal((count, dim)).astype(np.float32)
    )


def vectors(count: int, dim: int) -> st.SearchStrategy[NDArray[np.float32]]:
    """Return matrices from either the tie-heavy grid or the Gaussian generator."""
    return st.one_of(grid_vectors(count, dim), gaussian_vectors(count, dim))


def brute_force_scores(
    metric: Metric, queries: NDArray[np.float32], points: NDArray[np.float32]
) -> NDArray[np.float64]:
    """Return (m, n) scores in float64 as the engine reports them (l2: squared distance)."""
    q = queries.astype(np.float64)
    x = points.astype(np.float64)
    if metric is Metric.IP:
        return q @ x.T
    if metric is Metric.COSINE:
        qn = np.linalg.norm(q, axis=1, keepdims=True)
        xn = np.linalg.norm(x, axis=1)
        return (q @ x.T) / (qn * xn[None, :])
    diff = q[:, None, :] - x[None, :, :]
    return np.einsum("mnd,mnd->mn", diff, diff)


# --- operation sequences ---------------------------------------------------------------------


@dataclass(frozen=True)
class Upsert:
    """Upsert these points (ids may repeat: the last one wins)."""

    ids: tuple[str, ...]
    vectors: NDArray[np.float32] = field(compare=False)
    attributes: tuple[Attributes, ...]
    tenants: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Delete:
    """Delete these ids (unknown ones are ignored)."""

    ids: tuple[str, ...]


Operation = Upsert | Delete


def upserts(dim: int, schema: Mapping[str, AttributeType]) -> st.SearchStrategy[Upsert]:
    """Return upserts of one to five points with ids from a small pool (so they get replaced)."""

    @st.composite
    def build(draw: st.DrawFn) -> Upsert:
        ids = draw(st.lists(st.sampled_from(POINT_IDS), min_size=1, max_size=5))
        matrix = draw(grid_vectors(len(ids), dim))
        attrs = [draw(attributes_for(schema)) for _ in ids]
        access = [
            tuple(draw(st.lists(st.sampled_from(TENANTS), max_size=2, unique=True))) for _ in ids
        ]
        return Upsert(tuple(ids), matrix, tuple(attrs), tuple(access))

    return build()


def deletes() -> st.SearchStrategy[Delete]:
    """Return deletes of one to four ids from the pool."""
    return st.lists(st.sampled_from(POINT_IDS), min_size=1, max_size=4).map(
        lambda ids: Delete(tuple(ids))
    )


def operations(
    dim: int, schema: Mapping[str, AttributeType], max_size: int = 12
) -> st.SearchStrategy[list[Operation]]:
    """Return sequences of upserts and deletes that start with an upsert."""
    op = st.one_of(upserts(dim, schema), deletes())
    return st.tuples(upserts(dim, schema), st.lists(op, max_size=max_size - 1)).map(
        lambda pair: [pair[0], *pair[1]]
    )


@dataclass
class ModelPoint:
    """What the engine should hold for one id."""

    vector: NDArray[np.float32]
    attributes: Attributes
    tenants: tuple[str, ...]


def apply_to_model(model: dict[str, ModelPoint], operation: Operation) -> None:
    """Apply an operation to a plain dict model of the collection."""
    if isinstance(operation, Delete):
        for point_id in operation.ids:
            model.pop(point_id, None)
        return
    for i, point_id in enumerate(operation.ids):
        # re-inserting moves the id to the end, like the engine's new row
        model.pop(point_id, None)
        model[point_id] = ModelPoint(
            operation.vectors[i].copy(),
            dict(operation.attributes[i]),
            tuple(dict.fromkeys(operation.tenants[i])),
        )
