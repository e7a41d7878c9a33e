"""Attribute columns in memory: numpy arrays per field, so a filter is a few vectorized operations."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypeVar

import numpy as np
from numpy.typing import NDArray

from vecdb.engine.errors import InvalidFilter
from vecdb.engine.schema import AttributeType

Mask = NDArray[np.bool_]
Rows = NDArray[np.int64]
# Which rows a predicate looks at: the first n rows (a mask of length n comes back) or the given
# sorted rows (a mask over them comes back).
Where = int | Rows
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
# A numeric column's sorted index answers a range with rows when it matches at most this share
# of the rows; past it one vectorized pass over the column is cheaper than sorting the rows.
SORTED_RANGE_MAX_SHARE = 1 / 16
# Rows appended since the sorted index was built that are scanned before it is rebuilt.
SORTED_TAIL_SHARE = 1 / 8
# From this many rows an int column keeps a copy of its values in the narrowest integer type
# holding them, for passes over the column (see NumericColumn).
NARROW_MIN_ROWS = 1 << 16
NARROW_TYPES = (np.int8, np.int16, np.int32)
# An "in" condition on at most this many distinct values is one comparison per value (a
# vectorized pass each): on a million int rows np.isin (it sorts, or builds a table over the
# values' range) takes several milliseconds, as long as some 30 comparisons. A keyword column
# past its own limit looks each row's code up in a table over the dictionary instead (about
# the time of 8 comparisons).
IN_COMPARISONS_MAX = 32
KEYWORD_IN_COMPARISONS_MAX = 8


_Item = TypeVar("_Item", bound=np.generic)


def _at(array: NDArray[_Item], where: Where) -> NDArray[_Item]:
    return array[:where] if isinstance(where, int) else array[where]


def _size(where: Where) -> int:
    return where if isinstance(where, int) else len(where)


def _grown(array: NDArray[np.generic], capacity: int, fill: object) -> NDArray[np.generic]:
    if len(array) >= capacity:
        return array
    out = np.full(capacity, fill, dtype=array.dtype)
    out[: len(array)] = array
    return out


class Column(ABC):
    """One typed attribute field over all rows of a collection."""

    kind: AttributeType

    def __init__(self, name: str) -> None:
        self.name = name

    @abstractmethod
    def grow(self, capacity: int) -> None:
        """Make room for ``capacity`` rows."""

    @abstractmethod
    def set(self, rows: Rows, values: Sequence[object | None]) -> None:
        """Store ``values[i]`` at ``rows[i]`` (None: the point has no value)."""

    def clear(self, rows: Rows) -> None:
        """Forget the values of ``rows``."""
        self.set(rows, [None] * len(rows))

    @abstractmethod
    def get(self, row: int) -> object | None:
        """Return the value at ``row`` (None when absent)."""

    @abstractmethod
    def count_present(self, n: int) -> int:
        """Return how many of the first ``n`` rows have a value (for selectivity estimates)."""

    @abstractmethod
    def permuted(self, order: Rows) -> Column:
        """Return a copy whose row ``i`` is this column's row ``order[i]`` (distinct rows), for
        evaluating filters in another row order. Only filters read it: the copy takes no writes.
        """

    @abstractmethod
    def nbytes(self) -> int:
        """Return the bytes the column's arrays hold."""

    # predicates: each returns a mask over the first n rows, or over the given rows (Where)
    def equals(self, value: object, n: Where) -> Mask:
        raise self._unsupported("equals")

    def is_in(self, values: Sequence[object], n: Where) -> Mask:
        raise self._unsupported("in")

    def range(
        self,
        n: Where,
        gt: float | None = None,
        gte: float | None = None,
        lt: float | None = None,
        lte: float | None = None,
    ) -> Mask:
        raise self._unsupported("range")

    def contains(self, value: str, n: Where) -> Mask:
        raise self._unsupported("contains")

    def _unsupported(self, test: str) -> InvalidFilter:
        allowed = {
            AttributeType.INT: "equals, in, range",
            AttributeType.FLOAT: "equals, in, range",
            AttributeType.KEYWORD: "equals, in",
            AttributeType.BOOL: "equals",
            AttributeType.KEYWORD_LIST: "contains, in (any of)",
        }[self.kind]
        return InvalidFilter(
            f"{test} does not apply to attribute {self.name!r} of type {self.kind.value} "
            f"(allowed: {allowed})"
        )

    def _bad_value(self, value: object) -> InvalidFilter:
        return InvalidFilter(
            f"filter value {value!r} does not fit attribute {self.name!r} of type {self.kind.value}"
        )


class NumericColumn(Column):
    """An int, float or bool field: a value array and a presence mask.

    Int and float columns also keep, built on first need, a sorted index of the values (row order
    by value) over the rows present when it was built, so a selective range becomes rows with
    two binary searches instead of a pass over the column. Rows only ever get values once (an
    upsert writes new rows; a delete clears values), so rows appended later are scanned as a
    short tail, cleared rows are dropped by their presence flag, and the index is rebuilt once
    the tail grows past ``SORTED_TAIL_SHARE``.

    An int column of at least ``NARROW_MIN_ROWS`` rows also keeps, built on first need, a copy of
    its values in the narrowest of int8 / int16 / int32 that holds them, over the rows it had
    then: a range or equality pass over every row reads a half to an eighth of the bytes (a
    1M-row pass over int16 took 36 µs where int64 took 122 µs, and more than that once a search
    has pushed the column out of the caches). Rows appended later are compared from the int64
    values as a short tail; a write to a covered row drops the copy until next needed.
    """

    def __init__(self, name: str, kind: AttributeType) -> None:
        super().__init__(name)
        self.kind = kind
        dtype = {AttributeType.INT: np.int64, AttributeType.FLOAT: np.float64}.get(kind, np.bool_)
        self.values: NDArray[np.generic] = np.zeros(0, dtype=dtype)
        self.present: Mask = np.zeros(0, dtype=np.bool_)
        # (rows by value, their values, rows covered) or None until needed
        self._sorted: tuple[Rows, NDArray[np.generic], int] | None = None
        # whether a row the sorted index covers has lost its value since it was built (its
        # slices then need the presence check)
        self._cleared_since_sort = False
        # (the first rows' values in a narrower int type, or None when they need int64; rows
        # covered; whether every covered row has a value) or None until needed
        self._narrow: tuple[NDArray[Any] | None, int, bool] | None = None

    def grow(self, capacity: int) -> None:
        self.values = _grown(self.values, capacity, 0)
        self.present = _grown(self.present, capacity, False)  # type: ignore[assignment]

    def set(self, rows: Rows, values: Sequence[object | None]) -> None:
        has = np.fromiter((v is not None for v in values), dtype=np.bool_, count=len(values))
        self.present[rows] = has
        if self._narrow is not None and len(rows) and bool((rows < self._narrow[1]).any()):
            self._narrow = None  # a covered row changed: copy again when next needed
        if self._sorted is not None and not has.all():
            self._cleared_since_sort |= bool((rows[~has] < self._sorted[2]).any())
        if has.any():
            picked = [v for v in values if v is not None]
            self.values[rows[has]] = np.asarray(picked, dtype=self.values.dtype)
            if self._sorted is not None and bool((rows[has] < self._sorted[2]).any()):
                self._sorted = None  # a covered row got a new value: rebuild when next needed

    def get(self, row: int) -> object | None:
        if not self.present[row]:
            return None
        value: object = self.values[row].item()
        return value

    def count_present(self, n: int) -> int:
        return int(np.count_nonzero(self.present[:n]))

    def permuted(self, order: Rows) -> NumericColumn:
        out = NumericColumn(self.name, self.kind)
        out.values = self.values[order]
        out.present = self.present[order]
        return out

    def nbytes(self) -> int:
        return int(self.values.nbytes + self.present.nbytes)

    def _scalar(self, value: object) -> float | int | bool:
        if self.kind is AttributeType.BOOL:
            if not isinstance(value, bool):
                raise self._bad_value(value)
            return value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._bad_value(value)
        if isinstance(value, int) and not -(2**63) <= value < 2**63:
            raise InvalidFilter(
                f"filter value {value} is out of range for attribute {self.name!r} "
                "(64-bit integers and floats only)"
            )
        return value

    def equals(self, value: object, n: Where) -> Mask:
        mask = self._equal_values(self._scalar(value), n)
        if not self._every_present(n):  # absent rows hold 0 and must not match
            mask &= _at(self.present, n)
        return mask

    def _equal_values(self, scalar: float | int | bool, n: Where) -> Mask:
        """Return where the values of the rows ``n`` equal ``scalar``, absent rows included
        (they hold 0)."""
        if isinstance(scalar, float) and self.kind is AttributeType.INT:
            # an int equals a float only when the float is integral: compare ints with ints
            if not scalar.is_integer():
                return np.zeros(_size(n), dtype=np.bool_)
            scalar = int(scalar)
        return self._compare(np.equal, scalar, n)

    def _every_present(self, n: Where) -> bool:
        """Return whether each of the rows ``n`` has a value (known for the rows the narrow
        copy covers without a pass over them)."""
        current = self._narrow
        if isinstance(n, int) and current is not None and current[0] is not None:
            _, covered, complete = current
            return complete and bool(self.present[covered:n].all())
        return bool(_at(self.present, n).all())

    def _compare(self, compare: np.ufunc, value: float | int | bool, n: Where) -> Mask:
        """Return ``compare(values, value)`` over the rows ``n`` (a fresh mask), from the narrow
        copy of an int column where one applies (see the class notes)."""
        narrow, covered = None, 0
        if isinstance(n, int) and isinstance(value, int) and not isinstance(value, bool):
            narrow, covered, _ = self._narrow_values(n)
        if narrow is None or not isinstance(n, int):
            result: Mask = compare(_at(self.values, n), value)
            return result
        mask = np.empty(n, dtype=np.bool_)
        head = min(covered, n)
        # numpy compares a Python int beyond the narrow type's range exactly
        compare(narrow[:head], value, out=mask[:head])
        if head < n:
            compare(self.values[head:n], value, out=mask[head:])
        return mask

    def _narrow_values(self, n: int) -> tuple[NDArray[Any] | None, int, bool]:
        """Return the cached narrow copy of the values (None: none holds them), the rows it
        covers and whether each of them has a value, copying them first when there is none or
        too many rows came since."""
        if self.kind is not AttributeType.INT or n < NARROW_MIN_ROWS:
            return None, 0, False
        current = self._narrow
        if current is None or n - current[1] > max(1024, current[1] * SORTED_TAIL_SHARE):
            values = self.values[:n]
            low, high = int(values.min()), int(values.max())
            narrow = None
            for kind in NARROW_TYPES:
                info = np.iinfo(kind)
                if info.min <= low and high <= info.max:
                    narrow = values.astype(kind)
                    break
            current = self._narrow = (narrow, n, bool(self.present[:n].all()))
        return current

    def is_in(self, values: Sequence[object], n: Where) -> Mask:
        if self.kind is AttributeType.BOOL:
            raise self._unsupported("in")
        scalars = [self._scalar(v) for v in values]
        distinct = list(dict.fromkeys(scalars))
        if len(distinct) <= IN_COMPARISONS_MAX:
            mask = np.zeros(_size(n), dtype=np.bool_)
            for scalar in distinct:
                mask |= self._equal_values(scalar, n)
            if not self._every_present(n):  # once for every value
                mask &= _at(self.present, n)
            return mask
        # ints compare as int64 (float64 would merge values above 2**53)
        exact_ints = self.kind is AttributeType.INT and all(isinstance(v, int) for v in scalars)
        wanted = np.asarray(scalars, dtype=np.int64 if exact_ints else np.float64)
        found: Mask = _at(self.present, n) & np.isin(_at(self.values, n), wanted)
        return found

    def _bounds(
        self, gt: float | None, gte: float | None, lt: float | None, lte: float | None
    ) -> tuple[list[tuple[int | float, bool]], list[tuple[int | float, bool]]] | None:
        """Return (lower, upper) bounds as (value, inclusive), integral for int columns; None
        when no value can match."""
        lower: list[tuple[int | float, bool]] = []
        upper: list[tuple[int | float, bool]] = []
        integral = self.kind is AttributeType.INT
        for bound, inclusive, is_lower in (
            (gt, False, True),
            (gte, True, True),
            (lt, False, False),
            (lte, True, False),
        ):
            if bound is None:
                continue
            value: int | float = bound
            if integral:
                # v > 2.5 is v >= 3 and v < 2.5 is v <= 2: compare ints with ints (no float
                # copy of the column, exact beyond 2**53)
                if isinstance(bound, float) and math.isinf(bound):
                    if (bound > 0) == is_lower:
                        return None
                    continue
                value = math.floor(bound) if is_lower != inclusive else math.ceil(bound)
                if value != bound:
                    inclusive = True
                    value = math.ceil(bound) if is_lower else math.floor(bound)
                if value > INT64_MAX:
                    if is_lower:
                        return None
                    continue
                if value < INT64_MIN:
                    if not is_lower:
                        return None
                    continue
            (lower if is_lower else upper).append((value, inclusive))
        return lower, upper

    def range(
        self,
        n: Where,
        gt: float | None = None,
        gte: float | None = None,
        lt: float | None = None,
        lte: float | None = None,
    ) -> Mask:
        if self.kind is AttributeType.BOOL:
            raise self._unsupported("range")
        bounds = self._bounds(gt, gte, lt, lte)
        if bounds is None:
            return np.zeros(_size(n), dtype=np.bool_)
        lower, upper = bounds
        tests = [(value, inclusive, True) for value, inclusive in lower] + [
            (value, inclusive, False) for value, inclusive in upper
        ]
        mask: Mask | None = None
        for value, inclusive, is_lower in tests:
            # the first comparison makes the fresh mask; the others narrow it in place
            compare = (
                (np.greater_equal if inclusive else np.greater)
                if is_lower
                else (np.less_equal if inclusive else np.less)
            )
            if mask is None:
                mask = self._compare(compare, value, n)
            else:
                mask &= self._compare(compare, value, n)
        if mask is None:
            return _at(self.present, n).copy()
        if not self._every_present(n):  # absent rows hold 0 and must not match
            mask &= _at(self.present, n)
        return mask

    def range_rows(
        self,
        n: int,
        gt: float | None = None,
        gte: float | None = None,
        lt: float | None = None,
        lte: float | None = None,
        *,
        limit: int,
        ordered: bool = True,
    ) -> Rows | None:
        """Return the rows among the first ``n`` within the bounds, from the sorted index, or
        None when more than about ``limit`` rows match (a mask pass is cheaper).

        The rows are ascending when ``ordered``; otherwise they come in the index's order
        (by value), which saves sorting them when the caller only gathers or counts them.
        """
        if self.kind is AttributeType.BOOL:
            raise self._unsupported("range")
        bounds = self._bounds(gt, gte, lt, lte)
        if bounds is None:
            return np.zeros(0, dtype=np.int64)
        order, sorted_generic, covered = self._sorted_index(n)
        sorted_values: NDArray[np.float64] = sorted_generic  # type: ignore[assignment]
        lower, upper = bounds
        start, stop = 0, len(sorted_values)
        for value, inclusive in lower:
            side: Literal["left", "right"] = "left" if inclusive else "right"
            start = max(start, int(np.searchsorted(sorted_values, value, side=side)))
        for value, inclusive in upper:
            side = "right" if inclusive else "left"
            stop = min(stop, int(np.searchsorted(sorted_values, value, side=side)))
        if stop - start > limit:
            return None
        # equal values list their rows ascending (the index is a stable argsort): when values
        # repeat, the slice is a few ascending runs, which a merging sort orders much faster
        # (one pass counts them); distinct values sort faster with the default
        rows = order[start:stop]
        if ordered:
            runs = int(np.count_nonzero(rows[1:] < rows[:-1])) + 1
            rows = np.sort(rows, kind="stable" if runs * RUNS_PER_MERGE_SORT <= len(rows) else None)
        # the index holds the rows present when it was built: only rows cleared since (or
        # beyond a smaller n) need dropping, which saves a gather per query
        if n < covered:
            rows = rows[rows < n]
        if self._cleared_since_sort:
            rows = rows[self.present[rows]]
        covered = min(covered, n)
        if covered < n:  # rows appended since the index was built
            tail = self.range(n, gt=gt, gte=gte, lt=lt, lte=lte)[covered:]
            rows = np.concatenate([rows, np.flatnonzero(tail).astype(np.int64) + covered])
        return rows

    def _sorted_index(self, n: int) -> tuple[Rows, NDArray[np.generic], int]:
        current = self._sorted
        if current is None or n - current[2] > max(1024, current[2] * SORTED_TAIL_SHARE):
            present = np.flatnonzero(self.present[:n]).astype(np.int64)
            values = self.values[present]
            by_value = np.argsort(values, kind="stable")
            current = (present[by_value], values[by_value], n)
            self._sorted = current
            self._cleared_since_sort = False
        return current

    def sorted_share_limit(self, n: int) -> int:
        """Return the most matching rows a range may have to be answered from the index."""
        return max(1, int(n * SORTED_RANGE_MAX_SHARE))


# a sorted-index slice with at most one ascending run per this many rows is merge-sorted (its
# runs merged) rather than quicksorted: with values repeating (an int level, a year) merging
# the runs is the faster, with every value distinct quicksort is
RUNS_PER_MERGE_SORT = 8


class KeywordColumn(Column):
    """A keyword field: dictionary codes per row (-1 when absent)."""

    kind = AttributeType.KEYWORD

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.codes: NDArray[np.int32] = np.zeros(0, dtype=np.int32)
        self.vocabulary: dict[str, int] = {}
        self.words: list[str] = []

    def grow(self, capacity: int) -> None:
        self.codes = _grown(self.codes, capacity, -1)  # type: ignore[assignment]

    def _code(self, word: str) -> int:
        code = self.vocabulary.get(word)
        if code is None:
            code = len(self.words)
            self.vocabulary[word] = code
            self.words.append(word)
        return code

    def set(self, rows: Rows, values: Sequence[object | None]) -> None:
        codes = [-1 if v is None else self._code(str(v)) for v in values]
        self.codes[rows] = np.asarray(codes, dtype=np.int32)

    def get(self, row: int) -> object | None:
        code = int(self.codes[row])
        return None if code < 0 else self.words[code]

    def count_present(self, n: int) -> int:
        return int(np.count_nonzero(self.codes[:n] >= 0))

    def permuted(self, order: Rows) -> KeywordColumn:
        out = KeywordColumn(self.name)
        out.codes = self.codes[order]
        # shared: the dictionary only grows, and words added later are on no row of the copy
        out.vocabulary, out.words = self.vocabulary, self.words
        return out

    def nbytes(self) -> int:
        return int(self.codes.nbytes)

    def _word(self, value: object) -> str:
        if not isinstance(value, str):
            raise self._bad_value(value)
        return value

    def equals(self, value: object, n: Where) -> Mask:
        code = self.vocabulary.get(self._word(value))
        if code is None:
            return np.zeros(_size(n), dtype=np.bool_)
        mask: Mask = _at(self.codes, n) == code
        return mask

    def is_in(self, values: Sequence[object], n: Where) -> Mask:
        found = {self.vocabulary.get(self._word(v)) for v in values}
        wanted = sorted(code for code in found if code is not None)
        column = _at(self.codes, n)
        if len(wanted) <= KEYWORD_IN_COMPARISONS_MAX:
            mask = np.zeros(len(column), dtype=np.bool_)
            for code in wanted:
                mask |= column == code
            return mask
        # one lookup per row in a table over the dictionary (absent rows hold -1)
        table = np.zeros(len(self.words) + 1, dtype=np.bool_)
        table[np.asarray(wanted, dtype=np.int64) + 1] = True
        looked_up: Mask = np.take(table, column + 1)
        return looked_up

    def value_count(self, value: str, n: int) -> int:
        """Return how many of the first ``n`` rows hold ``value`` (for estimates)."""
        return int(np.count_nonzero(self.equals(value, n)))


class KeywordListColumn(Column):
    """A keyword-list field: per-keyword posting sets of rows, with cached row arrays."""

    kind = AttributeType.KEYWORD_LIST

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.per_row: list[tuple[str, ...] | None] = []
        self.postings: dict[str, set[int]] = {}
        self._cache: dict[str, Rows] = {}

    def grow(self, capacity: int) -> None:
        if len(self.per_row) < capacity:
            self.per_row.extend([None] * (capacity - len(self.per_row)))

    def set(self, rows: Rows, values: Sequence[object | None]) -> None:
        for row, value in zip(rows.tolist(), values, strict=True):
            old = self.per_row[row]
            if old:
                for word in old:
                    self.postings[word].discard(row)
                    self._cache.pop(word, None)
            if value is None:
                self.per_row[row] = None
                continue
            assert isinstance(value, list | tuple)
            words = tuple(str(v) for v in value)
            self.per_row[row] = words
            for word in words:
                self.postings.setdefault(word, set()).add(row)
                self._cache.pop(word, None)

    def get(self, row: int) -> object | None:
        words = self.per_row[row]
        return None if words is None else list(words)

    def count_present(self, n: int) -> int:
        return sum(1 for words in self.per_row[:n] if words is not None)

    def permuted(self, order: Rows) -> KeywordListColumn:
        return _PermutedKeywordList(self, order)

    def nbytes(self) -> int:
        return sum(int(rows.nbytes) for rows in self._cache.values())

    def rows_with(self, word: str) -> Rows:
        """Return the sorted rows whose list contains ``word``."""
        cached = self._cache.get(word)
        if cached is None:
            rows = self.postings.get(word, set())
            cached = np.fromiter(sorted(rows), dtype=np.int64, count=len(rows))
            self._cache[word] = cached
        return cached

    def contains(self, value: str, n: Where) -> Mask:
        if not isinstance(value, str):
            raise self._bad_value(value)
        rows = self.rows_with(value)
        if not isinstance(n, int):  # which of the given rows are in the posting list
            if len(rows) == 0:
                return np.zeros(len(n), dtype=np.bool_)
            position = np.minimum(np.searchsorted(rows, n), len(rows) - 1)
            found: Mask = rows[position] == n
            return found
        mask = np.zeros(n, dtype=np.bool_)
        mask[rows[rows < n]] = True
        return mask

    def is_in(self, values: Sequence[object], n: Where) -> Mask:
        mask = np.zeros(_size(n), dtype=np.bool_)
        for value in values:
            mask |= self.contains(value, n)  # type: ignore[arg-type]
        return mask


class _PermutedKeywordList(KeywordListColumn):
    """A keyword-list column seen through a permutation of its rows: row ``i`` here is row
    ``order[i]`` of the source. Posting lists are mapped (and sorted) per keyword on first use;
    rows the source gains or loses later are not reflected (callers mask out deleted rows)."""

    def __init__(self, source: KeywordListColumn, order: Rows) -> None:
        super().__init__(source.name)
        self.source = source
        self.order = order
        self.inverse = np.full(int(order.max()) + 1 if len(order) else 0, -1, np.int64)
        self.inverse[order] = np.arange(len(order), dtype=np.int64)

    def set(self, rows: Rows, values: Sequence[object | None]) -> None:
        raise TypeError("a permuted column is read-only")

    def get(self, row: int) -> object | None:
        return self.source.get(int(self.order[row]))

    def count_present(self, n: int) -> int:
        return sum(1 for row in self.order[:n].tolist() if self.source.per_row[row] is not None)

    def rows_with(self, word: str) -> Rows:
        cached = self._cache.get(word)
        if cached is None:
            rows = self.source.rows_with(word)
            positions = self.inverse[rows[: np.searchsorted(rows, len(self.inverse))]]
            cached = np.sort(positions[positions >= 0])
            self._cache[word] = cached
        return cached

    def nbytes(self) -> int:
        return int(self.inverse.nbytes) + super().nbytes()


def make_column(name: str, kind: AttributeType) -> Column:
    """Return an empty column for a field of the given type."""
    if kind is AttributeType.KEYWORD:
        return KeywordColumn(name)
    if kind is AttributeType.KEYWORD_LIST:
        return KeywordListColumn(name)
    return NumericColumn(name, kind)


class AttributeTable:
    """All attribute columns of a collection."""

    def __init__(self, schema: Mapping[str, AttributeType]) -> None:
        self.columns: dict[str, Column] = {name: make_column(name, k) for name, k in schema.items()}

    def grow(self, capacity: int) -> None:
        """Make room for ``capacity`` rows."""
        for column in self.columns.values():
            column.grow(capacity)

    def set_rows(self, rows: Rows, values: Sequence[Mapping[str, object]]) -> None:
        """Store each row's attribute dict (fields it lacks become absent)."""
        for name, column in self.columns.items():
            column.set(rows, [v.get(name) for v in values])

    def clear_rows(self, rows: Rows) -> None:
        """Forget every attribute of ``rows``."""
        for column in self.columns.values():
            column.clear(rows)

    def permuted(self, order: Rows) -> AttributeTable:
        """Return a read-only copy whose row ``i`` is row ``order[i]`` of this table (distinct
        rows), so filters evaluate to masks in that order."""
        out = AttributeTable({})
        out.columns = {name: column.permuted(order) for name, column in self.columns.items()}
        return out

    def nbytes(self) -> int:
        """Return the bytes the columns' arrays hold."""
        return sum(column.nbytes() for column in self.columns.values())

    def row_values(self, row: int) -> dict[str, object]:
        """Return the attribute dict of one row (absent fields left out)."""
        out: dict[str, object] = {}
        for name, column in self.columns.items():
            value = column.get(row)
            if value is not None:
                out[name] = value
        return out
