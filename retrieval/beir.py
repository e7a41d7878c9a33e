"""BEIR-format collections: ``corpus.jsonl``, ``queries.jsonl`` and qrels TSV, plus their vectors.

Two layouts of a split are understood:

* the BEIR one: ``queries.jsonl`` with every query, ``qrels/<split>.tsv``;
* the flat one of ``../shared/data``: test at the top (``queries.jsonl``, ``qrels.tsv``,
  ``queries.npy`` + ``query_ids.txt``) and other splits in a sub-directory named after the split
  (``train/queries.jsonl``, ``train/qrels.tsv``, ``train/queries.npy``...).

Document vectors are ``docs.npy`` + ``doc_ids.txt``. A split's queries are those with qrels, in file
order, as BEIR evaluates them.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from retrieval.embeddings import Embeddings
from retrieval.records import Document, Qrel, Qrels, Query
from retrieval.trec import to_qrels


def iter_corpus(path: str | Path) -> Iterator[Document]:
    """Yield the documents of a BEIR ``corpus.jsonl``."""
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                record = json.loads(line)
                yield Document(str(record["_id"]), record.get("title") or "", record["text"])


def read_corpus(path: str | Path) -> list[Document]:
    """Return the documents of a BEIR ``corpus.jsonl`` in file order."""
    return list(iter_corpus(path))


def read_queries(path: str | Path) -> list[Query]:
    """Return the queries of a BEIR ``queries.jsonl`` in file order."""
    with open(path, encoding="utf-8") as lines:
        return [
            Query(str(record["_id"]), record["text"])
            for record in map(json.loads, filter(str.strip, lines))
        ]


def iter_qrels(path: str | Path) -> Iterator[Qrel]:
    """Yield the judgements of a BEIR qrels TSV (``query-id corpus-id score``, header optional)."""
    with open(path, encoding="utf-8", newline="") as lines:
        for number, fields in enumerate(csv.reader(lines, delimiter="\t"), start=1):
            if not fields or (number == 1 and fields[0] == "query-id"):
                continue
            if len(fields) != 3:
                raise ValueError(
                    f"{path}:{number}: a BEIR qrels line has 3 tab-separated fields "
                    f"(query-id, corpus-id, score), got {len(fields)}"
                )
            yield Qrel(fields[0], fields[1], int(fields[2]))


def read_qrels(path: str | Path) -> Qrels:
    """Return a BEIR qrels TSV as query id -> doc id -> relevance."""
    return to_qrels(iter_qrels(path))


def document_text(document: Document) -> str:
    """Return the text a document is indexed and embedded by: ``(title + " " + text).strip()``."""
    return f"{document.title} {document.text}".strip()


@dataclass(frozen=True)
class Split:
    """The queries of one split with their judgements and (when present) their vectors."""

    name: str
    queries: list[Query]
    qrels: Qrels
    query_vectors: Embeddings | None

    @property
    def query_ids(self) -> list[str]:
        """Return the query ids in file order."""
        return [query.query_id for query in self.queries]


@dataclass(frozen=True)
class Dataset:
    """A BEIR collection on disk: its corpus, its document vectors, and its splits."""

    root: Path
    corpus: list[Document]
    doc_vectors: Embeddings | None

    @classmethod
    def load(cls, root: str | Path) -> Dataset:
        """Return the collection in directory ``root`` (corpus and document vectors)."""
        root = Path(root)
        corpus_path = root / "corpus.jsonl"
        if not corpus_path.is_file():
            raise FileNotFoundError(f"no corpus.jsonl in {root}: not a BEIR collection")
        doc_vectors = None
        if (root / "docs.npy").is_file() and (root / "doc_ids.txt").is_file():
            doc_vectors = Embeddings.load(root / "docs.npy", root / "doc_ids.txt")
        return cls(root, read_corpus(corpus_path), doc_vectors)

    def split(self, name: str = "test") -> Split:
        """Return split ``name`` ("test", "train", "dev"...) with queries that have qrels."""
        sub = self.root / name
        candidates = [
            (sub / "qrels.tsv", sub / "queries.jsonl", sub),
            (self.root / "qrels" / f"{name}.tsv", self.root / "queries.jsonl", self.root),
        ]
        if name == "test":
            candidates.append((self.root / "qrels.tsv", self.root / "queries.jsonl", self.root))
        found = [paths for paths in candidates if paths[0].is_file() and paths[1].is_file()]
        if not found:
            tried = ", ".join(str(qrels) for qrels, _, _ in candidates)
            raise FileNotFoundError(f"no qrels for split {name!r} in {self.root} (tried {tried})")
        qrels_path, queries_path, vectors_dir = found[0]
        qrels = read_qrels(qrels_path)
        queries = [query for query in read_queries(queries_path) if query.query_id in qrels]
        query_vectors = None
        if (vectors_dir / "queries.npy").is_file() and (vectors_dir / "query_ids.txt").is_file():
            query_vectors = Embeddings.load(
                vectors_dir / "queries.npy", vectors_dir / "query_ids.txt"
            )
        return Split(name, queries, qrels, query_vectors)
