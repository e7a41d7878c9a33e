"""The result order (score desc, doc id desc: trec_eval's) and the TREC files written with it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from retrieval.ranking import DocIds, Ranking, ranked, to_rankings, to_run
from retrieval.records import Qrel, ScoredDoc
from retrieval.trec import iter_qrels, iter_run, read_qrels, read_run, write_qrels, write_run


def test_ties_break_by_doc_id_descending_like_trec_eval() -> None:
    scores = {"d1": 1.0, "d3": 2.0, "d2": 1.0, "d10": 1.0}
    # "d2" > "d10" > "d1" as strings (strcmp), so among the ties d2 comes first.
    assert [doc for doc, _ in ranked(scores)] == ["d3", "d2", "d10", "d1"]
    assert ranked(scores, 2) == [("d3", 2.0), ("d2", 1.0)]


def test_writer_ranks_in_trec_order_and_reads_back(tmp_path: Path) -> None:
    run = {"q2": {"b": 1.0, "a": 1.0, "c": 0.5}, "q1": {"x": -1.25}}
    path = tmp_path / "run.trec"
    write_run(run, path, tag="test")
    lines = path.read_text().splitlines()
    assert lines == [
        "q1 Q0 x 1 -1.25 test",
        "q2 Q0 b 1 1.0 test",
        "q2 Q0 a 2 1.0 test",
        "q2 Q0 c 3 0.5 test",
    ]
    assert read_run(path) == run
    assert next(iter_run(path)) == ScoredDoc("q1", "x", -1.25)


def test_writer_keeps_every_digit(tmp_path: Path) -> None:
    path = tmp_path / "run.trec"
    write_run({"q": {"a": 0.1 + 0.2, "b": 0.3}}, path)
    assert read_run(path)["q"]["a"] == 0.1 + 0.2  # not rounded into a tie with b
    assert [line.split()[2] for line in path.read_text().splitlines()] == ["a", "b"]


def test_qrels_round_trip(tmp_path: Path, fixtures: Path) -> None:
    qrels = read_qrels(fixtures / "tiny.qrels")
    assert qrels["q2"] == {"d2": 2, "d5": 0}
    assert next(iter_qrels(fixtures / "tiny.qrels")) == Qrel("q1", "d1", 1)
    write_qrels(qrels, tmp_path / "copy.qrels")
    assert read_qrels(tmp_path / "copy.qrels") == qrels


def test_doc_codes_compare_like_ids_and_rankings_round_trip() -> None:
    doc_ids = DocIds(["d2", "d10", "d1"])
    assert doc_ids.decode(doc_ids.encode(["d1", "d10", "d2"])) == ["d1", "d10", "d2"]
    assert doc_ids.encode(["d1", "d10", "d2"]).tolist() == sorted(
        doc_ids.encode(["d1", "d10", "d2"]).tolist()
    )
    run = {"q": {"d1": 1.0, "d2": 1.0, "d10": 3.0}}
    rankings = to_rankings(run, doc_ids)
    assert list(to_run(rankings, doc_ids)["q"]) == ["d10", "d2", "d1"]
    assert list(to_run(rankings, doc_ids, 2)["q"]) == ["d10", "d2"]


def test_best_keeps_ties_at_the_cut_in_order() -> None:
    ranking = Ranking(np.array([5, 1, 3, 2]), np.array([1.0, 2.0, 1.0, 1.0]))
    best = ranking.best(2)
    assert best.docs.tolist() == [1, 5]  # of the three tied at 1.0, the largest code wins
    assert Ranking.empty().best(3).size == 0
    assert ranking.best(0).size == 0
