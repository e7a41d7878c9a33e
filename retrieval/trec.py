"""TREC run and qrels files: ``qid Q0 docid rank score tag`` and ``qid iter docid relevance``.

Runs are written in the order of :mod:`retrieval.ranking` (score descending, ties by doc id
descending, trec_eval's own order), so the rank column is the rank trec_eval evaluates.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from retrieval.ranking import ranked
from retrieval.records import Qrel, Qrels, Run, ScoredDoc


def iter_run(path: str | Path) -> Iterator[ScoredDoc]:
    """Yield the lines of a TREC run file as ``ScoredDoc`` records (the rank column is ignored)."""
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 6:
                raise ValueError(
                    f"{path}:{number}: a run line has 6 fields (qid Q0 docid rank score tag), "
                    f"got {len(fields)}"
                )
            yield ScoredDoc(fields[0], fields[2], float(fields[4]))


def read_run(path: str | Path) -> Run:
    """Return a TREC run file as query id -> doc id -> score."""
    return to_run(iter_run(path))


def to_run(scored_docs: Iterable[ScoredDoc]) -> Run:
    """Return ``ScoredDoc`` records as query id -> doc id -> score (a later duplicate wins)."""
    run: Run = {}
    for query_id, doc_id, score in scored_docs:
        run.setdefault(query_id, {})[doc_id] = score
    return run


def iter_scored_docs(run: Mapping[str, Mapping[str, float]]) -> Iterator[ScoredDoc]:
    """Yield a run's records query by query (query ids sorted), each query best first."""
    for query_id in sorted(run):
        for doc_id, score in ranked(run[query_id]):
            yield ScoredDoc(query_id, doc_id, score)


def write_run(
    run: Mapping[str, Mapping[str, float]], path: str | Path, *, tag: str = "retrieval"
) -> None:
    """Write ``run`` as a TREC run file, ranks 1.. in trec_eval's order."""
    if not tag or any(character.isspace() for character in tag):
        raise ValueError(f"run tag {tag!r} must be non-empty and contain no whitespace")
    with open(path, "w", encoding="utf-8") as out:
        for query_id in sorted(run):
            for rank, (doc_id, score) in enumerate(ranked(run[query_id]), start=1):
                # repr keeps every digit, so a reader sees exactly the ties we ranked.
                out.write(f"{query_id} Q0 {doc_id} {rank} {score!r} {tag}\n")


def iter_qrels(path: str | Path) -> Iterator[Qrel]:
    """Yield the lines of a TREC qrels file (``qid iter docid relevance``) as ``Qrel`` records."""
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 4:
                raise ValueError(
                    f"{path}:{number}: a qrels line has 4 fields (qid iter docid relevance), "
                    f"got {len(fields)}"
                )
            yield Qrel(fields[0], fields[2], int(fields[3]))


def to_qrels(judgements: Iterable[Qrel]) -> Qrels:
    """Return ``Qrel`` records as query id -> doc id -> relevance."""
    qrels: Qrels = {}
    for query_id, doc_id, relevance in judgements:
        qrels.setdefault(query_id, {})[doc_id] = relevance
    return qrels


def read_qrels(path: str | Path) -> Qrels:
    """Return a TREC qrels file as query id -> doc id -> relevance."""
    return to_qrels(iter_qrels(path))


def write_qrels(qrels: Mapping[str, Mapping[str, int]], path: str | Path) -> None:
    """Write ``qrels`` as a TREC qrels file (queries and docs in sorted order)."""
    with open(path, "w", encoding="utf-8") as out:
        for query_id in sorted(qrels):
            for doc_id in sorted(qrels[query_id]):
                out.write(f"{query_id} 0 {doc_id} {qrels[query_id][doc_id]}\n")
