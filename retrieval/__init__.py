"""vecdb's retrieval layer: BM25, dense retrieval through vecdb, fusion, vector PRF, evaluation.

Modules, one concept each:

* :mod:`retrieval.records` - ``Document``, ``Query``, ``Qrel``, ``ScoredDoc``; ``Run``, ``Qrels``
* :mod:`retrieval.beir` - BEIR collections (corpus, queries, qrels TSV, vectors)
* :mod:`retrieval.trec` - TREC run and qrels files
* :mod:`retrieval.ranking` - the result order (score desc, doc id desc) and ``Ranking`` arrays
* :mod:`retrieval.analysis` - the BM25 analyzer (lowercase, stopwords, Snowball stemming)
* :mod:`retrieval.bm25` - Lucene's BM25 on scipy sparse matrices
* :mod:`retrieval.dense` - dense search through ``vecdb.Client``
* :mod:`retrieval.fusion` - interpolation (min-max, centred min-max, z-score) and RRF
* :mod:`retrieval.prf` - vector PRF (Average, Rocchio) and multi-vector feedback
* :mod:`retrieval.pipeline` - pipelines as values, run over a split by an ``Experiment``
* :mod:`retrieval.tuning` - grid tuning on a training split
* :mod:`retrieval.evaluation` - ``ir_measures`` metrics, paired tests, markdown tables
* :mod:`retrieval.cli` - the ``retrieval`` command

The names below are importable from ``retrieval`` directly; each module (and numpy, scipy,
ir_measures, PyStemmer behind it) is imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from retrieval.records import Document, Qrel, Qrels, Query, Run, ScoredDoc

if TYPE_CHECKING:
    from retrieval.analysis import Analyzer
    from retrieval.beir import Dataset, Split, read_corpus, read_queries
    from retrieval.beir import read_qrels as read_beir_qrels
    from retrieval.bm25 import BM25, BM25Parameters
    from retrieval.dense import Hits, Searcher, VecdbSearcher, index_documents
    from retrieval.embeddings import Embeddings
    from retrieval.evaluation import evaluate, markdown_table, per_query
    from retrieval.fusion import interpolate, reciprocal_rank_fusion
    from retrieval.pipeline import Experiment, Pipeline
    from retrieval.prf import VectorPRF
    from retrieval.ranking import DocIds, Ranking
    from retrieval.trec import read_qrels, read_run, write_run
    from retrieval.tuning import tune

_LAZY: dict[str, tuple[str, str]] = {
    "Analyzer": ("retrieval.analysis", "Analyzer"),
    "BM25": ("retrieval.bm25", "BM25"),
    "BM25Parameters": ("retrieval.bm25", "BM25Parameters"),
    "Dataset": ("retrieval.beir", "Dataset"),
    "DocIds": ("retrieval.ranking", "DocIds"),
    "Embeddings": ("retrieval.embeddings", "Embeddings"),
    "Experiment": ("retrieval.pipeline", "Experiment"),
    "Hits": ("retrieval.dense", "Hits"),
    "Pipeline": ("retrieval.pipeline", "Pipeline"),
    "Ranking": ("retrieval.ranking", "Ranking"),
    "Searcher": ("retrieval.dense", "Searcher"),
    "Split": ("retrieval.beir", "Split"),
    "VecdbSearcher": ("retrieval.dense", "VecdbSearcher"),
    "VectorPRF": ("retrieval.prf", "VectorPRF"),
    "evaluate": ("retrieval.evaluation", "evaluate"),
    "index_documents": ("retrieval.dense", "index_documents"),
    "interpolate": ("retrieval.fusion", "interpolate"),
    "markdown_table": ("retrieval.evaluation", "markdown_table"),
    "per_query": ("retrieval.evaluation", "per_query"),
    "read_beir_qrels": ("retrieval.beir", "read_qrels"),
    "read_corpus": ("retrieval.beir", "read_corpus"),
    "read_qrels": ("retrieval.trec", "read_qrels"),
    "read_queries": ("retrieval.beir", "read_queries"),
    "read_run": ("retrieval.trec", "read_run"),
    "reciprocal_rank_fusion": ("retrieval.fusion", "reciprocal_rank_fusion"),
    "tune": ("retrieval.tuning", "tune"),
    "write_run": ("retrieval.trec", "write_run"),
}

__all__ = [
    "BM25",
    "Analyzer",
    "BM25Parameters",
    "Dataset",
    "DocIds",
    "Document",
    "Embeddings",
    "Experiment",
    "Hits",
    "Pipeline",
    "Qrel",
    "Qrels",
    "Query",
    "Ranking",
    "Run",
    "ScoredDoc",
    "Searcher",
    "Split",
    "VecdbSearcher",
    "VectorPRF",
    "evaluate",
    "index_documents",
    "interpolate",
    "markdown_table",
    "per_query",
    "read_beir_qrels",
    "read_corpus",
    "read_qrels",
    "read_queries",
    "read_run",
    "reciprocal_rank_fusion",
    "tune",
    "write_run",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attribute = _LAZY[name]
        value = getattr(importlib.import_module(module), attribute)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'retrieval' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
