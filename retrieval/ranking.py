"""The one order of results used everywhere: score descending, ties by doc id descending.

trec_eval ignores the rank column of a run and re-sorts each query by score, breaking ties with
``strcmp(b.docno, a.docno)`` (``comp_sim_docno`` in ``form_res_rels.c``), i.e. by doc id in
*descending* order. Cutting lists at ``k``, choosing feedback documents and writing run files all
use that same order, so a written rank column always agrees with what trec_eval (and
``ir_measures`` through ``pytrec_eval``) evaluates.

Inside pipelines one query's results are a :class:`Ranking`: parallel arrays of integer document
codes and scores. Codes come from :class:`DocIds`, which numbers the collection's ids in sorted
order, so comparing codes compares ids and ranking, fusion and feedback are plain numpy on
integers. :data:`~retrieval.records.Run` dicts are the format at the edges (files, evaluation).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from retrieval.records import Run

FloatArray = npt.NDArray[np.float64]
CodeArray = npt.NDArray[np.int64]


def order(
    doc_ids: Sequence[str] | npt.NDArray[np.str_], scores: FloatArray
) -> npt.NDArray[np.intp]:
    """Return the permutation that ranks ``doc_ids`` best first (score desc, doc id desc)."""
    ids = np.asarray(doc_ids, dtype=np.str_)
    values = np.asarray(scores, dtype=np.float64)
    if ids.shape != values.shape:
        raise ValueError(f"{ids.shape[0]} doc ids but {values.shape[0]} scores")
    # lexsort sorts ascending on the last key first; reversing gives score desc, then id desc.
    return np.lexsort((ids, values))[::-1]


def ranked(scores: Mapping[str, float], k: int | None = None) -> list[tuple[str, float]]:
    """Return ``(doc_id, score)`` pairs of one query's results, best first, cut at ``k``."""
    if not scores:
        return []
    ids = np.asarray(list(scores.keys()), dtype=np.str_)
    values = np.fromiter(scores.values(), dtype=np.float64, count=len(scores))
    permutation = order(ids, values)[:k]
    return list(zip(ids[permutation].tolist(), values[permutation].tolist(), strict=True))


def truncate(run: Mapping[str, Mapping[str, float]], k: int) -> Run:
    """Return ``run`` with each query cut to its best ``k`` documents."""
    return {query_id: dict(ranked(scores, k)) for query_id, scores in run.items()}


class DocIds:
    """A collection's doc ids numbered in sorted order: ``codes`` compare as the ids do."""

    def __init__(self, ids: Iterable[str]) -> None:
        self.ids: npt.NDArray[np.str_] = np.asarray(sorted(set(ids)), dtype=np.str_)
        self._code = {doc_id: code for code, doc_id in enumerate(self.ids.tolist())}

    def __len__(self) -> int:
        return len(self._code)

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self._code

    def encode(self, ids: Sequence[str]) -> CodeArray:
        """Return the codes of ``ids``; a KeyError names the first unknown id."""
        try:
            return np.fromiter((self._code[i] for i in ids), dtype=np.int64, count=len(ids))
        except KeyError as error:
            raise KeyError(f"unknown doc id {error.args[0]!r}") from None

    def decode(self, codes: CodeArray) -> list[str]:
        """Return the ids of ``codes``."""
        decoded: list[str] = self.ids[codes].tolist()
        return decoded


class Ranking(NamedTuple):
    """One query's results: document codes and their scores (any order unless from :meth:`best`)."""

    docs: CodeArray
    scores: FloatArray

    @classmethod
    def empty(cls) -> Ranking:
        """Return a ranking with no documents."""
        return cls(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64))

    @property
    def size(self) -> int:
        """Return the number of documents."""
        return int(self.docs.shape[0])

    def best(self, k: int | None = None) -> Ranking:
        """Return the best ``k`` documents (all when None), best first."""
        docs, scores = self.docs, self.scores
        if k is not None and k < len(scores):
            if k <= 0:
                return Ranking.empty()
            # Keep every document tied with the k-th score so the tie-break decides, not partition.
            threshold = np.partition(scores, len(scores) - k)[len(scores) - k]
            keep = np.flatnonzero(scores >= threshold)
            docs, scores = docs[keep], scores[keep]
        permutation = np.lexsort((docs, scores))[::-1][:k]
        return Ranking(docs[permutation], scores[permutation])


def to_rankings(run: Mapping[str, Mapping[str, float]], doc_ids: DocIds) -> dict[str, Ranking]:
    """Return a run as query id -> :class:`Ranking` over ``doc_ids``."""
    return {
        query_id: Ranking(
            doc_ids.encode(list(scores.keys())),
            np.fromiter(scores.values(), dtype=np.float64, count=len(scores)),
        )
        for query_id, scores in run.items()
    }


def to_run(rankings: Mapping[str, Ranking], doc_ids: DocIds, k: int | None = None) -> Run:
    """Return rankings as a run (each query's best ``k``, inserted best first)."""
    run: Run = {}
    for query_id, ranking in rankings.items():
        top = ranking.best(k)
        run[query_id] = dict(zip(doc_ids.decode(top.docs), top.scores.tolist(), strict=True))
    return run
