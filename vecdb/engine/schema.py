"""Collection settings and attribute types: what a collection is, and what values it accepts."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum

from vecdb.engine.errors import InvalidArgument

AttributeValue = int | float | str | bool | list[str]
"""A single attribute value as the engine sees it (keyword lists as ``list[str]``)."""

NAME_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}$")
MAX_DIM = 65_536


class Metric(str, Enum):
    """How vectors are compared; scores are similarities except for l2 (squared distance)."""

    COSINE = "cosine"
    IP = "ip"
    L2 = "l2"

    @classmethod
    def parse(cls, value: str | Metric) -> Metric:
        """Return the metric named by ``value``, or raise naming the allowed ones."""
        if isinstance(value, Metric):
            return value
        try:
            return cls(str(value).lower())
        except ValueError:
            allowed = ", ".join(m.value for m in cls)
            raise InvalidArgument(f"unknown metric {value!r}: allowed are {allowed}") from None

    @property
    def higher_is_better(self) -> bool:
        """True for similarity metrics, False for distances."""
        return self is not Metric.L2


class AttributeType(str, Enum):
    """The typed attribute fields a collection schema may declare."""

    INT = "int"
    FLOAT = "float"
    KEYWORD = "keyword"
    BOOL = "bool"
    KEYWORD_LIST = "keyword_list"

    @classmethod
    def parse(cls, value: str | AttributeType) -> AttributeType:
        """Return the type named by ``value``, or raise naming the allowed ones."""
        if isinstance(value, AttributeType):
            return value
        try:
            return cls(str(value).lower().replace("-", "_"))
        except ValueError:
            allowed = ", ".join(t.value for t in cls)
            raise InvalidArgument(
                f"unknown attribute type {value!r}: allowed are {allowed}"
            ) from None


def check_name(kind: str, name: str) -> str:
    """Return ``name`` if it is a valid collection / attribute / tenant name, else raise."""
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise InvalidArgument(
            f"invalid {kind} name {name!r}: use 1-128 characters from A-Z a-z 0-9 _ . -, "
            "not starting with . or -"
        )
    return name


@dataclass(frozen=True)
class CollectionSettings:
    """What a collection is: its name, vector dimension, metric and attribute schema."""

    name: str
    dim: int
    metric: Metric
    schema: Mapping[str, AttributeType] = field(default_factory=dict)

    @classmethod
    def create(
        cls,
        name: str,
        dim: int,
        metric: str | Metric,
        schema: Mapping[str, str | AttributeType] | None = None,
    ) -> CollectionSettings:
        """Return validated settings, raising InvalidArgument on any bad value."""
        check_name("collection", name)
        if isinstance(dim, bool) or not isinstance(dim, int) or not 1 <= dim <= MAX_DIM:
            raise InvalidArgument(f"invalid dim {dim!r}: must be an integer in 1..{MAX_DIM}")
        parsed = {
            check_name("attribute", key): AttributeType.parse(kind)
            for key, kind in (schema or {}).items()
        }
        return cls(name=name, dim=dim, metric=Metric.parse(metric), schema=parsed)

    def to_json(self) -> dict[str, object]:
        """Return a JSON-serialisable form (for the store)."""
        return {
            "name": self.name,
            "dim": self.dim,
            "metric": self.metric.value,
            "schema": {k: v.value for k, v in self.schema.items()},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> CollectionSettings:
        """Return settings read back from :meth:`to_json` output."""
        schema = data.get("schema") or {}
        assert isinstance(schema, dict)
        dim = data["dim"]
        assert isinstance(dim, int)
        return cls.create(str(data["name"]), dim, str(data["metric"]), schema)

    def check_attributes(self, point_id: str, values: Mapping[str, object]) -> dict[str, object]:
        """Return ``values`` normalised to the schema's types, or raise naming the bad one."""
        out: dict[str, object] = {}
        for key, value in values.items():
            kind = self.schema.get(key)
            if kind is None:
                known = ", ".join(sorted(self.schema)) or "none"
                raise InvalidArgument(
                    f"point {point_id!r}: unknown attribute {key!r} for collection "
                    f"{self.name!r} (schema has: {known})"
                )
            out[key] = _coerce(point_id, key, kind, value)
        return out


def _coerce(point_id: str, key: str, kind: AttributeType, value: object) -> object:
    def bad() -> InvalidArgument:
        return InvalidArgument(
            f"point {point_id!r}: attribute {key!r} is {kind.value}, "
            f"got {type(value).__name__} {value!r}"
        )

    if kind is AttributeType.INT:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad()
        if not -(2**63) <= value < 2**63:
            raise bad()
        return value
    if kind is AttributeType.FLOAT:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad()
        try:
            as_float = float(value)
        except OverflowError:
            as_float = math.inf
        if not math.isfinite(as_float):
            raise InvalidArgument(
                f"point {point_id!r}: attribute {key!r} must be a finite float, got {value!r}"
            )
        return as_float
    if kind is AttributeType.KEYWORD:
        if not isinstance(value, str):
            raise bad()
        return value
    if kind is AttributeType.BOOL:
        if not isinstance(value, bool):
            raise bad()
        return value
    # keyword list
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise bad()
    if not all(isinstance(item, str) for item in value):
        raise bad()
    return list(dict.fromkeys(value))
