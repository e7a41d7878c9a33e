"""Evaluation on the tiny checked-in qrels/run, paired tests, and the markdown table."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from retrieval.evaluation import (
    compare,
    evaluate,
    markdown_table,
    paired_t_test,
    per_query,
    randomization_test,
)
from retrieval.trec import read_qrels, read_run

Q1_NDCG = (1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
Q2_NDCG = (2 / math.log2(3)) / 2


def test_tiny_fixture_values(fixtures: Path) -> None:
    qrels = read_qrels(fixtures / "tiny.qrels")
    run = read_run(fixtures / "tiny.run")
    result = per_query(qrels, run)
    assert result.query_ids == ("q1", "q2", "q3")
    np.testing.assert_allclose(result.values["nDCG@10"], [Q1_NDCG, Q2_NDCG, 0.0])
    np.testing.assert_allclose(result.values["AP"], [(1 + 2 / 3) / 2, 0.5, 0.0])
    np.testing.assert_allclose(result.values["RR@10"], [1.0, 0.5, 0.0])
    np.testing.assert_allclose(result.values["R@100"], [1.0, 1.0, 0.0])
    means = evaluate(qrels, run)
    # q3 has no results and still counts (as 0) in every mean
    assert means["nDCG@10"] == pytest.approx((Q1_NDCG + Q2_NDCG) / 3)
    assert means["R@100"] == pytest.approx(2 / 3)


def test_queries_without_judgements_are_ignored(fixtures: Path) -> None:
    qrels = read_qrels(fixtures / "tiny.qrels")
    run = {**read_run(fixtures / "tiny.run"), "unjudged": {"d1": 1.0}}
    assert per_query(qrels, run).query_ids == ("q1", "q2", "q3")


def test_paired_tests() -> None:
    first = np.array([0.5, 0.6, 0.7, 0.8, 0.9, 0.4, 0.3, 0.6])
    assert paired_t_test(first, first) == 1.0
    assert randomization_test(first, first) == 1.0
    better = first + np.linspace(0.1, 0.3, len(first))
    assert paired_t_test(better, first) < 1e-3
    # all 8 differences have the same sign: only the all-same-sign flips reach the observed mean
    p_value = randomization_test(better, first, trials=20_000, seed=1)
    assert p_value == pytest.approx(2 / 2**8, abs=0.004)
    assert randomization_test(better, first, seed=3) == randomization_test(better, first, seed=3)
    assert paired_t_test(first + 0.25, first) == 0.0
    with pytest.raises(ValueError, match="same length"):
        paired_t_test(first, first[:3])


def test_markdown_table_marks_significance(fixtures: Path) -> None:
    rng = np.random.default_rng(0)
    qrels = {f"q{i}": {"d1": 1} for i in range(40)}
    good = {q: {"d1": 2.0, "d2": 1.0} for q in qrels}
    noisy = {
        q: ({"d1": 2.0, "d2": 1.0} if rng.random() < 0.3 else {"d2": 2.0, "d1": 1.0}) for q in qrels
    }
    results = {"good": per_query(qrels, good), "noisy": per_query(qrels, noisy)}
    table = markdown_table(compare(results, "good", trials=2000), ["nDCG@10"], baseline="good")
    lines = table.splitlines()
    assert lines[0] == "| pipeline | nDCG@10 |"
    assert lines[2] == "| good (baseline) | 1.0000 |"
    assert lines[3].startswith("| noisy | 0.") and lines[3].endswith(" -†‡ |")
