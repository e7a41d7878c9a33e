"""Embeddings: a float32 matrix whose row i is the vector of id i, with lookup by id."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

Matrix = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Embeddings:
    """Vectors of documents or queries: ``vectors[i]`` belongs to ``ids[i]``."""

    ids: tuple[str, ...]
    vectors: Matrix
    _row: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.vectors.ndim != 2 or self.vectors.shape[0] != len(self.ids):
            raise ValueError(
                f"vectors of shape {self.vectors.shape} do not match {len(self.ids)} ids "
                "(expected a 2-d array with one row per id)"
            )
        row = {identifier: index for index, identifier in enumerate(self.ids)}
        if len(row) != len(self.ids):
            raise ValueError("ids must be unique")
        object.__setattr__(self, "_row", row)

    @classmethod
    def load(cls, vectors_path: str | Path, ids_path: str | Path) -> Embeddings:
        """Return the embeddings in a ``.npy`` file whose row i has the id on line i of ``ids_path``."""
        vectors = np.load(vectors_path).astype(np.float32, copy=False)
        ids = tuple(Path(ids_path).read_text(encoding="utf-8").split())
        return cls(ids, vectors)

    @property
    def dim(self) -> int:
        """Return the vector dimension."""
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, identifier: object) -> bool:
        return identifier in self._row

    def rows(self, ids: Sequence[str]) -> npt.NDArray[np.intp]:
        """Return the row numbers of ``ids``; a KeyError names the first unknown id."""
        try:
            return np.fromiter((self._row[i] for i in ids), dtype=np.intp, count=len(ids))
        except KeyError as error:
            raise KeyError(f"no vector for id {error.args[0]!r}") from None

    def take(self, ids: Sequence[str]) -> Matrix:
        """Return the vectors of ``ids`` as an ``(len(ids), dim)`` matrix."""
        return self.vectors[self.rows(ids)]
