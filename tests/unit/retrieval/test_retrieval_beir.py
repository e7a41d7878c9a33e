"""BEIR collections: corpus, queries, qrels TSV, splits in both layouts, and vectors."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from retrieval.beir import Dataset, document_text, read_qrels
from retrieval.embeddings import Embeddings


def test_flat_layout_splits(fixtures: Path) -> None:
    dataset = Dataset.load(fixtures / "tiny")
    assert [d.doc_id for d in dataset.corpus] == ["d1", "d2", "d3", "d4", "d5"]
    assert document_text(dataset.corpus[3]) == dataset.corpus[3].text  # empty title: no space
    test = dataset.split("test")
    assert test.query_ids == ["q1", "q2", "q3"]  # q9 has no judgements
    assert test.qrels["q3"] == {"d4": 1, "d5": 1}
    assert dataset.split("train").query_ids == ["t1", "t2"]
    assert dataset.doc_vectors is None and test.query_vectors is None
    with pytest.raises(FileNotFoundError, match="no qrels for split 'dev'"):
        dataset.split("dev")


def test_beir_layout_and_vectors(fixtures: Path, tmp_path: Path) -> None:
    root = tmp_path / "beir"
    (root / "qrels").mkdir(parents=True)
    shutil.copy(fixtures / "tiny" / "corpus.jsonl", root)
    shutil.copy(fixtures / "tiny" / "queries.jsonl", root)
    shutil.copy(fixtures / "tiny" / "qrels.tsv", root / "qrels" / "test.tsv")
    vectors = np.arange(10, dtype=np.float32).reshape(5, 2)
    np.save(root / "docs.npy", vectors)
    (root / "doc_ids.txt").write_text("d1\nd2\nd3\nd4\nd5\n")
    dataset = Dataset.load(root)
    assert dataset.split("test").query_ids == ["q1", "q2", "q3"]
    assert dataset.doc_vectors is not None
    np.testing.assert_array_equal(dataset.doc_vectors.take(["d3", "d1"]), vectors[[2, 0]])
    assert read_qrels(root / "qrels" / "test.tsv")["q1"] == {"d3": 1, "d1": 1}


def test_embeddings_check_their_shape() -> None:
    with pytest.raises(ValueError, match="do not match 3 ids"):
        Embeddings(("a", "b", "c"), np.zeros((2, 4), dtype=np.float32))
    with pytest.raises(KeyError, match="no vector for id 'z'"):
        Embeddings(("a",), np.zeros((1, 2), dtype=np.float32)).take(["z"])
