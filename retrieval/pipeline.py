"""Retrieval pipelines: BM25, dense, their fusions, and dense PRF with interpolation around it.

A :class:`Pipeline` is a value: a kind and its parameters, written as a spec string
``kind[:key=value,...]`` (e.g. ``prf-both:alpha=0.4,depth=3,rocchio_beta=0.5``). The kinds:

============================  ===================================================================
``bm25``                      BM25 (``k1``, ``b``)
``dense``                     the query vector searched in vecdb
``interpolation``             ``alpha * norm(dense) + (1 - alpha) * norm(bm25)`` (``normalization``)
``rrf``                       reciprocal rank fusion of dense and BM25 (``rrf_k``)
``dense-prf``                 vector PRF (``prf`` = average | rocchio, ``depth``,
                              ``rocchio_alpha``, ``rocchio_beta``) on the dense run, re-searched
``prf-before``                PRF fed by the interpolation (interpolation *before* PRF)
``prf-after``                 dense PRF, then ``after_alpha * norm(prf) + (1 - after_alpha) *
                              norm(bm25)`` (interpolation *after* PRF)
``prf-both``                  PRF fed by the interpolation, then interpolated with BM25 again
                              with ``after_alpha`` (*both*)
``multi-vector-prf``          the interpolation's top ``depth`` documents each search vecdb
                              (``feedback_k`` deep); a document's best similarity to them is
                              fused: ``(1 - feedback_weight) * interpolation + feedback_weight *
                              norm(feedback)``
============================  ===================================================================

An :class:`Experiment` runs pipelines over one split's queries and caches what pipelines share
(the BM25 run for given ``k1``/``b``, the dense run, each PRF re-search), so a table of pipelines
or a parameter sweep searches vecdb only as often as it must.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np

from retrieval.analysis import Analyzer
from retrieval.beir import Dataset, Split, document_text
from retrieval.bm25 import BM25, BM25Parameters
from retrieval.dense import Searcher, search_rankings
from retrieval.embeddings import Embeddings, Matrix
from retrieval.fusion import NORMALIZATIONS, Normalization, fuse, maximum
from retrieval.fusion import reciprocal_rank_fusion_query as rrf_query
from retrieval.prf import PRF_METHODS, PRFMethod, VectorPRF, multi_vector_queries
from retrieval.ranking import DocIds, Ranking, to_run
from retrieval.records import Run

PipelineKind = Literal[
    "bm25",
    "dense",
    "interpolation",
    "rrf",
    "dense-prf",
    "prf-before",
    "prf-after",
    "prf-both",
    "multi-vector-prf",
]
PIPELINE_KINDS: tuple[str, ...] = get_args(PipelineKind)

_BM25_FIELDS = ("k1", "b")
_FUSION_FIELDS = (*_BM25_FIELDS, "alpha", "normalization")
_PRF_FIELDS = ("prf", "depth", "rocchio_alpha", "rocchio_beta")
RELEVANT_FIELDS: dict[str, tuple[str, ...]] = {
    "bm25": _BM25_FIELDS,
    "dense": (),
    "interpolation": _FUSION_FIELDS,
    "rrf": (*_BM25_FIELDS, "rrf_k"),
    "dense-prf": _PRF_FIELDS,
    "prf-before": (*_FUSION_FIELDS, *_PRF_FIELDS),
    "prf-after": (*_BM25_FIELDS, "normalization", *_PRF_FIELDS, "after_alpha"),
    "prf-both": (*_FUSION_FIELDS, *_PRF_FIELDS, "after_alpha"),
    "multi-vector-prf": (*_FUSION_FIELDS, "depth", "feedback_weight", "feedback_k"),
}
"""The parameters each kind of pipeline reads."""


@dataclass(frozen=True)
class Pipeline:
    """A retrieval pipeline: its kind and every parameter (each kind reads its own subset)."""

    kind: PipelineKind
    k1: float = 1.2
    b: float = 0.75
    alpha: float = 0.5
    """Interpolation weight of the dense side (1 - alpha goes to BM25)."""
    normalization: Normalization = "minmax"
    prf: PRFMethod = "rocchio"
    depth: int = 3
    """Feedback documents taken from the first pass."""
    rocchio_alpha: float = 1.0
    rocchio_beta: float = 1.0
    after_alpha: float = 0.5
    """Weight of the PRF dense run in the interpolation after PRF (prf-after, prf-both)."""
    feedback_weight: float = 0.3
    feedback_k: int = 100
    rrf_k: int = 60

    def __post_init__(self) -> None:
        if self.kind not in PIPELINE_KINDS:
            raise ValueError(
                f"unknown pipeline {self.kind!r}; use one of {', '.join(PIPELINE_KINDS)}"
            )
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(
                f"unknown normalization {self.normalization!r}; use one of {', '.join(NORMALIZATIONS)}"
            )
        if self.prf not in PRF_METHODS:
            raise ValueError(
                f"unknown PRF method {self.prf!r}; use one of {', '.join(PRF_METHODS)}"
            )
        for name in ("alpha", "after_alpha", "feedback_weight"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        for name in ("depth", "feedback_k"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        BM25Parameters(self.k1, self.b)  # validates

    @classmethod
    def parse(cls, spec: str) -> Pipeline:
        """Return the pipeline written as ``kind[:key=value,...]``."""
        kind, _, settings = spec.strip().partition(":")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        for item in filter(None, (part.strip() for part in settings.split(","))):
            key, equals, raw = item.partition("=")
            key = key.strip()
            if not equals or key not in fields or key == "kind":
                known = ", ".join(name for name in fields if name != "kind")
                raise ValueError(f"bad pipeline setting {item!r} in {spec!r}; settings: {known}")
            default: Any = fields[key].default
            try:
                values[key] = type(default)(raw.strip())
            except ValueError:
                raise ValueError(
                    f"pipeline setting {key} needs a {type(default).__name__}, got {raw.strip()!r}"
                ) from None
        return cls(kind, **values)  # type: ignore[arg-type]

    def spec(self) -> str:
        """Return the spec string of this pipeline (parameters that differ from the defaults)."""
        default = Pipeline(self.kind)
        settings = [
            f"{name}={getattr(self, name):g}"
            if isinstance(getattr(self, name), float)
            else f"{name}={getattr(self, name)}"
            for name in RELEVANT_FIELDS[self.kind]
            if getattr(self, name) != getattr(default, name)
        ]
        return self.kind + (":" + ",".join(settings) if settings else "")

    def settings(self) -> dict[str, Any]:
        """Return the parameters this kind reads, with their values."""
        return {name: getattr(self, name) for name in RELEVANT_FIELDS[self.kind]}

    def replace(self, **changes: Any) -> Pipeline:
        """Return a copy with some parameters changed."""
        return dataclasses.replace(self, **changes)

    @property
    def vector_prf(self) -> VectorPRF:
        """Return the vector-PRF setting of this pipeline."""
        return VectorPRF(self.prf, self.depth, self.rocchio_alpha, self.rocchio_beta)


class Experiment:
    """Runs pipelines over one set of queries, sharing first-stage runs and PRF searches."""

    def __init__(
        self,
        *,
        doc_ids: DocIds,
        bm25: BM25,
        searcher: Searcher,
        doc_vectors: Embeddings | None,
        query_ids: Sequence[str],
        query_texts: Sequence[str],
        query_vectors: Matrix | None,
        k: int = 1000,
    ) -> None:
        if len(query_ids) != len(query_texts) or (
            query_vectors is not None and len(query_vectors) != len(query_ids)
        ):
            raise ValueError(
                f"{len(query_ids)} query ids, {len(query_texts)} texts and "
                f"{'no' if query_vectors is None else len(query_vectors)} vectors: they must match"
            )
        self.doc_ids = doc_ids
        self.bm25 = bm25
        self.searcher = searcher
        # Row ``code`` is the vector of document ``code``: feedback lookups are plain indexing.
        self._vectors = None if doc_vectors is None else doc_vectors.take(doc_ids.ids.tolist())
        self.query_ids = list(query_ids)
        self.query_texts = list(query_texts)
        self._query_vectors = (
            None if query_vectors is None else np.ascontiguousarray(query_vectors, np.float32)
        )
        self.k = k
        self._cache: dict[tuple[Any, ...], list[Ranking]] = {}
        self.searched_queries = 0
        """How many query vectors this experiment has sent to the searcher."""

    @classmethod
    def from_split(
        cls,
        dataset: Dataset,
        split: Split,
        searcher: Searcher,
        *,
        analyzer: Analyzer | None = None,
        bm25: BM25 | None = None,
        k: int = 1000,
    ) -> Experiment:
        """Return an experiment over a BEIR split (BM25 built here unless given).

        Without document or query vectors only the BM25 pipeline can run.
        """
        doc_ids = [document.doc_id for document in dataset.corpus]
        if bm25 is None:
            bm25 = BM25(
                doc_ids, [document_text(document) for document in dataset.corpus], analyzer=analyzer
            )
        return cls(
            doc_ids=DocIds(doc_ids),
            bm25=bm25,
            searcher=searcher,
            doc_vectors=dataset.doc_vectors,
            query_ids=split.query_ids,
            query_texts=[query.text for query in split.queries],
            query_vectors=None
            if split.query_vectors is None
            else split.query_vectors.take(split.query_ids),
            k=k,
        )

    def subset(self, query_ids: Sequence[str]) -> Experiment:
        """Return an experiment over some of the queries (sharing the indexes, not the caches)."""
        position = {query_id: index for index, query_id in enumerate(self.query_ids)}
        rows = [position[query_id] for query_id in query_ids]
        other = object.__new__(Experiment)
        other.__dict__.update(self.__dict__)
        other.query_ids = [self.query_ids[row] for row in rows]
        other.query_texts = [self.query_texts[row] for row in rows]
        other._query_vectors = None if self._query_vectors is None else self._query_vectors[rows]
        other._cache = {}
        other.searched_queries = 0
        return other

    @property
    def vectors(self) -> Matrix:
        """Return the document vectors, row ``code`` for document ``code``."""
        if self._vectors is None:
            raise ValueError("this pipeline needs document vectors (docs.npy + doc_ids.txt)")
        return self._vectors

    @property
    def query_vectors(self) -> Matrix:
        """Return the query vectors, one row per query."""
        if self._query_vectors is None:
            raise ValueError("this pipeline needs query vectors (queries.npy + query_ids.txt)")
        return self._query_vectors

    # --- building blocks, cached -----------------------------------------------------------

    def _cached(self, key: tuple[Any, ...], compute: Any) -> list[Ranking]:
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def _search(self, vectors: Matrix, k: int) -> list[Ranking]:
        self.searched_queries += len(vectors)
        return search_rankings(self.searcher, vectors, self.doc_ids, k)

    def bm25_rankings(self, pipeline: Pipeline) -> list[Ranking]:
        """Return the BM25 rankings with the pipeline's ``k1``/``b``."""
        parameters = BM25Parameters(pipeline.k1, pipeline.b)

        def compute() -> list[Ranking]:
            index = self.bm25
            if parameters != index.parameters:
                index = index.with_parameters(parameters)
            return index.rankings(self.query_texts, self.doc_ids, self.k)

        return self._cached(("bm25", parameters), compute)

    def dense_rankings(self) -> list[Ranking]:
        """Return the dense rankings of the query vectors."""
        return self._cached(("dense",), lambda: self._search(self.query_vectors, self.k))

    def interpolation_rankings(self, pipeline: Pipeline) -> list[Ranking]:
        """Return the interpolation of the dense and BM25 rankings."""
        key = ("interpolation", pipeline.k1, pipeline.b, pipeline.alpha, pipeline.normalization)

        def compute() -> list[Ranking]:
            weights = (pipeline.alpha, 1.0 - pipeline.alpha)
            return [
                fuse([dense, sparse], weights, normalization=pipeline.normalization, k=self.k)
                for dense, sparse in zip(
                    self.dense_rankings(), self.bm25_rankings(pipeline), strict=True
                )
            ]

        return self._cached(key, compute)

    def _first_pass(
        self, pipeline: Pipeline, interpolated: bool
    ) -> tuple[tuple[Any, ...], list[Ranking]]:
        if interpolated:
            key = ("interpolation", pipeline.k1, pipeline.b, pipeline.alpha, pipeline.normalization)
            return key, self.interpolation_rankings(pipeline)
        return ("dense",), self.dense_rankings()

    def prf_rankings(self, pipeline: Pipeline, *, interpolated_first_pass: bool) -> list[Ranking]:
        """Return the dense rankings of the PRF query vectors (feedback from dense or interpolation)."""
        prf = pipeline.vector_prf
        first_key, first_pass = self._first_pass(pipeline, interpolated_first_pass)

        def compute() -> list[Ranking]:
            expanded = prf.expand(self.query_vectors, first_pass, self.vectors)
            return self._search(expanded, self.k)

        return self._cached(("prf", first_key, prf), compute)

    def feedback_rankings(self, pipeline: Pipeline) -> list[Ranking]:
        """Return, per query, each document's best similarity to the top ``depth`` interpolated docs."""
        first_key, first_pass = self._first_pass(pipeline, True)

        def compute() -> list[Ranking]:
            stacked, owners = multi_vector_queries(first_pass, self.vectors, pipeline.depth)
            found = self._search(stacked, pipeline.feedback_k)
            per_query: list[list[Ranking]] = [[] for _ in self.query_ids]
            for owner, ranking in zip(owners.tolist(), found, strict=True):
                per_query[owner].append(ranking)
            return [maximum(lists) for lists in per_query]

        return self._cached(("feedback", first_key, pipeline.depth, pipeline.feedback_k), compute)

    # --- pipelines ---------------------------------------------------------------------------

    def rankings(self, pipeline: Pipeline) -> list[Ranking]:
        """Return the pipeline's ranking of every query (best first, at most ``k`` each)."""
        kind = pipeline.kind
        if kind == "bm25":
            return self.bm25_rankings(pipeline)
        if kind == "dense":
            return self.dense_rankings()
        if kind == "interpolation":
            return self.interpolation_rankings(pipeline)
        if kind == "rrf":
            return [
                rrf_query([dense, sparse], rank_constant=pipeline.rrf_k, k=self.k)
                for dense, sparse in zip(
                    self.dense_rankings(), self.bm25_rankings(pipeline), strict=True
                )
            ]
        if kind in ("dense-prf", "prf-before"):
            return self.prf_rankings(pipeline, interpolated_first_pass=kind == "prf-before")
        if kind in ("prf-after", "prf-both"):
            prf = self.prf_rankings(pipeline, interpolated_first_pass=kind == "prf-both")
            pair = (pipeline.after_alpha, 1.0 - pipeline.after_alpha)
            return [
                fuse([dense, sparse], pair, normalization=pipeline.normalization, k=self.k)
                for dense, sparse in zip(prf, self.bm25_rankings(pipeline), strict=True)
            ]
        if kind == "multi-vector-prf":
            share = pipeline.feedback_weight
            weights = ((1 - share) * pipeline.alpha, (1 - share) * (1 - pipeline.alpha), share)
            return [
                fuse(
                    [dense, sparse, feedback],
                    weights,
                    normalization=pipeline.normalization,
                    k=self.k,
                )
                for dense, sparse, feedback in zip(
                    self.dense_rankings(),
                    self.bm25_rankings(pipeline),
                    self.feedback_rankings(pipeline),
                    strict=True,
                )
            ]
        raise AssertionError(f"unhandled pipeline kind {kind!r}")

    def run(self, pipeline: Pipeline) -> Run:
        """Return the pipeline's run: query id -> doc id -> score."""
        return to_run(dict(zip(self.query_ids, self.rankings(pipeline), strict=True)), self.doc_ids)
