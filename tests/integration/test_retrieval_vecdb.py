"""Dense retrieval and PRF pipelines through a real vecdb server, against exact numpy search.

A congruence test in the qdrant-client sense: the same pipelines run once with vecdb as the
searcher (the ``vecdb_server`` fixture: a real server process on loopback) and once with exact
numpy search as the oracle, on SciFact from ``../shared/data``; the rankings must agree.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from retrieval.beir import Dataset, document_text
from retrieval.bm25 import BM25
from retrieval.cli import main
from retrieval.dense import Hits, VecdbSearcher, index_documents
from retrieval.evaluation import evaluate
from retrieval.pipeline import Experiment, Pipeline
from retrieval.ranking import ranked

SCIFACT = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "scifact"
COLLECTION = "retrieval_it_scifact"
QUERIES = 40

pytestmark = pytest.mark.skipif(
    not (SCIFACT / "docs.npy").is_file(),
    reason=f"SciFact evaluation data not found at {SCIFACT} (the sibling ../shared/data folder)",
)


class NumpyExact:
    """Exact cosine search: the oracle."""

    def __init__(self, ids: tuple[str, ...], vectors: npt.NDArray[np.float32]) -> None:
        self.ids = np.asarray(ids)
        self.vectors = vectors

    def search_batch(self, vectors: npt.NDArray[np.float32], k: int) -> list[Hits]:
        queries = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        scores = queries @ self.vectors.T
        best = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        return [
            Hits(self.ids[row].tolist(), scores[i, row].astype(np.float64))
            for i, row in enumerate(best)
        ]


@pytest.fixture(scope="module")
def scifact() -> Dataset:
    return Dataset.load(SCIFACT)


@pytest.fixture(scope="module")
def experiments(vecdb_server: str, scifact: Dataset) -> tuple[Experiment, Experiment]:
    from vecdb import Client

    assert scifact.doc_vectors is not None
    client = Client(vecdb_server)
    client.wait_ready()
    index_documents(client, COLLECTION, scifact.doc_vectors, replace=True)
    split = scifact.split("test")
    bm25 = BM25([d.doc_id for d in scifact.corpus], [document_text(d) for d in scifact.corpus])
    through_vecdb = Experiment.from_split(
        scifact, split, VecdbSearcher(client, COLLECTION, exact=True), bm25=bm25
    ).subset(split.query_ids[:QUERIES])
    oracle = Experiment.from_split(
        scifact, split, NumpyExact(scifact.doc_vectors.ids, scifact.doc_vectors.vectors), bm25=bm25
    ).subset(split.query_ids[:QUERIES])
    return through_vecdb, oracle


PIPELINES = [
    "dense",
    "dense-prf:prf=average,depth=3",
    "dense-prf:depth=3,rocchio_beta=0.5",
    "prf-both:normalization=zscore,depth=1,rocchio_beta=0.5,after_alpha=0.6",
    "multi-vector-prf:normalization=zscore,depth=2,feedback_weight=0.3",
]


@pytest.mark.parametrize("spec", PIPELINES)
def test_pipeline_through_vecdb_agrees_with_exact_search(
    spec: str, experiments: tuple[Experiment, Experiment], scifact: Dataset
) -> None:
    through_vecdb, oracle = experiments
    pipeline = Pipeline.parse(spec)
    got, expected = through_vecdb.run(pipeline), oracle.run(pipeline)
    assert list(got) == list(expected)
    for query_id in got:
        top_got = [doc for doc, _ in ranked(got[query_id], 10)]
        top_expected = [doc for doc, _ in ranked(expected[query_id], 10)]
        assert top_got == top_expected, query_id
        shared = [doc for doc in top_expected if doc in got[query_id]]
        np.testing.assert_allclose(
            [got[query_id][d] for d in shared], [expected[query_id][d] for d in shared], atol=1e-4
        )
    qrels = scifact.split("test").qrels
    judged = {q: qrels[q] for q in got}
    assert evaluate(judged, got)["nDCG@10"] == pytest.approx(
        evaluate(judged, expected)["nDCG@10"], abs=1e-6
    )


def test_dense_prf_moves_the_query(experiments: tuple[Experiment, Experiment]) -> None:
    through_vecdb, _ = experiments
    dense = through_vecdb.run(Pipeline("dense"))
    prf = through_vecdb.run(Pipeline.parse("dense-prf:prf=average,depth=3"))
    changed = sum(list(dense[q])[:10] != list(prf[q])[:10] for q in dense)
    assert changed > QUERIES // 4  # feedback changes most top-10s; a no-op would change none


def test_cli_runs_dense_pipelines_against_the_server(
    vecdb_server: str, scifact: Dataset, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # a small BEIR collection cut from SciFact: 300 documents, the queries judged on them
    assert scifact.doc_vectors is not None
    root = tmp_path / "small"
    root.mkdir()
    documents = scifact.corpus[:300]
    keep = {d.doc_id for d in documents}
    with open(root / "corpus.jsonl", "w") as out:
        for d in documents:
            out.write(json.dumps({"_id": d.doc_id, "title": d.title, "text": d.text}) + "\n")
    np.save(root / "docs.npy", scifact.doc_vectors.take([d.doc_id for d in documents]))
    (root / "doc_ids.txt").write_text("\n".join(d.doc_id for d in documents) + "\n")
    test = scifact.split("test")
    queries = [q for q in test.queries if set(test.qrels[q.query_id]) & keep]
    assert queries
    with open(root / "queries.jsonl", "w") as out:
        for q in queries:
            out.write(json.dumps({"_id": q.query_id, "text": q.text}) + "\n")
    assert test.query_vectors is not None
    np.save(root / "queries.npy", test.query_vectors.take([q.query_id for q in queries]))
    (root / "query_ids.txt").write_text("\n".join(q.query_id for q in queries) + "\n")
    with open(root / "qrels.tsv", "w") as out:
        out.write("query-id\tcorpus-id\tscore\n")
        for q in queries:
            for doc_id, relevance in test.qrels[q.query_id].items():
                out.write(f"{q.query_id}\t{doc_id}\t{relevance}\n")

    code = main(
        [
            "run", "--dataset", str(root), "--vecdb", vecdb_server,
            "--collection", "retrieval_it_small", "--exact",
            "--pipeline", "dense", "--pipeline", "prf-both:rocchio_beta=0.5",
            "--output-dir", str(tmp_path / "runs"), "--baseline", "dense", "--trials", "500",
        ]
    )  # fmt: skip
    assert code == 0
    table = capsys.readouterr().out.splitlines()
    assert table[2].startswith("| dense (baseline) | ")
    assert table[3].startswith("| prf-both:rocchio_beta=0.5 | ")
    dense_run = (tmp_path / "runs" / "dense.trec").read_text().splitlines()
    assert {line.split()[0] for line in dense_run} == {q.query_id for q in queries}
    assert all(line.split()[2] in keep for line in dense_run)
