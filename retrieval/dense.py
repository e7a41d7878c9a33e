"""Dense retrieval: query vectors searched through a running vecdb server.

Retrieval code talks to a :class:`Searcher` (a batch of vectors in, ranked hits out).
:class:`VecdbSearcher` is the real one: it calls ``vecdb.Client.search_batch`` on a collection.
:func:`index_documents` loads a collection from document embeddings.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Protocol

import numpy as np
import numpy.typing as npt

from retrieval.embeddings import Embeddings, Matrix
from retrieval.ranking import DocIds, Ranking, to_run
from retrieval.records import Run


class Hits(NamedTuple):
    """The nearest documents of one query, best first."""

    doc_ids: list[str]
    scores: npt.NDArray[np.float64]


class Searcher(Protocol):
    """Anything that returns the ``k`` nearest documents of each query vector."""

    def search_batch(self, vectors: Matrix, k: int) -> list[Hits]:
        """Return one :class:`Hits` per row of ``vectors``."""
        ...


class VecdbMatches(Protocol):
    """What this module reads from ``vecdb.Matches``."""

    @property
    def ids(self) -> Sequence[str]: ...

    @property
    def scores(self) -> npt.NDArray[Any]: ...


class VecdbClient(Protocol):
    """The part of ``vecdb.Client`` this module uses."""

    def search_batch(
        self, collection: str, vectors: npt.NDArray[np.float32], k: int = 10, *, exact: bool = False
    ) -> Sequence[VecdbMatches]: ...

    def create_collection(
        self, name: str, dim: int, metric: str = "cosine", schema: Any = None
    ) -> Any: ...

    def drop_collection(self, name: str) -> Any: ...

    def list_collections(self) -> Sequence[Any]: ...

    def upsert_many(
        self,
        collection: str,
        ids: Sequence[str],
        vectors: npt.NDArray[np.float32],
        attributes: Any = None,
        tenants: Any = None,
        *,
        batch_size: int = 2000,
    ) -> int: ...


class VecdbSearcher:
    """Searches one collection of a vecdb server through ``vecdb.Client``.

    ``exact=True`` asks the server for exact search (the reference for an approximate index).
    Queries go to the server ``batch_size`` at a time; ``progress`` (if given) is told how many
    queries each finished batch held.
    """

    def __init__(
        self,
        client: VecdbClient,
        collection: str,
        *,
        exact: bool = False,
        batch_size: int = 256,
        progress: Callable[[int], object] | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.client = client
        self.collection = collection
        self.exact = exact
        self.batch_size = batch_size
        self.progress = progress

    def search_batch(self, vectors: Matrix, k: int) -> list[Hits]:
        """Return the ``k`` nearest documents of each row of ``vectors``."""
        queries = np.ascontiguousarray(vectors, dtype=np.float32)
        if queries.ndim != 2:
            raise ValueError(f"query vectors must be a 2-d array, got shape {queries.shape}")
        hits: list[Hits] = []
        for start in range(0, len(queries), self.batch_size):
            block = queries[start : start + self.batch_size]
            matches = self.client.search_batch(self.collection, block, k=k, exact=self.exact)
            hits.extend(
                Hits(list(match.ids), np.asarray(match.scores, dtype=np.float64))
                for match in matches
            )
            if self.progress is not None:
                self.progress(len(block))
        return hits


def search_rankings(
    searcher: Searcher, vectors: Matrix, doc_ids: DocIds, k: int = 1000
) -> list[Ranking]:
    """Return the ``k`` nearest documents of each query vector as codes of ``doc_ids``."""
    hits = searcher.search_batch(vectors, k)
    if len(hits) != len(vectors):
        raise RuntimeError(f"searcher answered {len(hits)} of {len(vectors)} queries")
    return [Ranking(doc_ids.encode(found.doc_ids), found.scores).best(k) for found in hits]


def search(searcher: Searcher, query_ids: Sequence[str], vectors: Matrix, k: int = 1000) -> Run:
    """Return the dense run of the queries: query id -> doc id -> similarity."""
    if len(query_ids) != len(vectors):
        raise ValueError(f"{len(query_ids)} query ids but {len(vectors)} query vectors")
    hits = searcher.search_batch(vectors, k)
    if len(hits) != len(query_ids):
        raise RuntimeError(f"searcher answered {len(hits)} of {len(query_ids)} queries")
    doc_ids = DocIds(doc_id for found in hits for doc_id in found.doc_ids)
    rankings = {
        query_id: Ranking(doc_ids.encode(found.doc_ids), found.scores)
        for query_id, found in zip(query_ids, hits, strict=True)
    }
    return to_run(rankings, doc_ids, k)


def collection_names(client: VecdbClient) -> set[str]:
    """Return the names of the server's collections."""
    return {str(info.name) for info in client.list_collections()}


def index_documents(
    client: VecdbClient,
    collection: str,
    documents: Embeddings,
    *,
    metric: str = "cosine",
    replace: bool = False,
    batch_size: int = 2000,
) -> bool:
    """Create ``collection`` holding ``documents`` unless it exists; return True if it was loaded.

    With ``replace=True`` an existing collection of that name is dropped and loaded again.
    """
    if collection in collection_names(client):
        if not replace:
            return False
        client.drop_collection(collection)
    client.create_collection(collection, dim=documents.dim, metric=metric)
    client.upsert_many(collection, list(documents.ids), documents.vectors, batch_size=batch_size)
    return True
