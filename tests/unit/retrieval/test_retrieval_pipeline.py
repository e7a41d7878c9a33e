"""Pipelines over a seeded synthetic collection, with exact numpy search as the oracle."""

from __future__ import annotations

import numpy as np
import pytest
from retrieval_oracle import make_experiment

from retrieval.pipeline import PIPELINE_KINDS, Experiment, Pipeline
from retrieval.ranking import ranked


def order(run: dict[str, dict[str, float]], query_id: str) -> list[str]:
    return [doc for doc, _ in ranked(run[query_id])]


def test_spec_round_trip_and_errors() -> None:
    pipeline = Pipeline.parse(
        "prf-both: alpha=0.4, depth=5, rocchio_beta=0.25, normalization=zscore"
    )
    assert pipeline.alpha == 0.4 and pipeline.depth == 5 and pipeline.normalization == "zscore"
    assert Pipeline.parse(pipeline.spec()) == pipeline
    assert Pipeline.parse("dense").spec() == "dense"
    # parameters a kind does not read are left out of its spec
    assert Pipeline.parse("dense:alpha=0.2").spec() == "dense"
    for kind in PIPELINE_KINDS:
        assert Pipeline.parse(kind).kind == kind
    with pytest.raises(ValueError, match="unknown pipeline"):
        Pipeline.parse("colbert")
    with pytest.raises(ValueError, match="bad pipeline setting"):
        Pipeline.parse("bm25:k3=1")
    with pytest.raises(ValueError, match="needs a int"):
        Pipeline.parse("dense-prf:depth=three")
    with pytest.raises(ValueError, match="alpha must be in"):
        Pipeline.parse("interpolation:alpha=2")


def test_dense_is_the_exact_nearest_neighbours() -> None:
    experiment = make_experiment()
    run = experiment.run(Pipeline("dense"))
    vectors = experiment.vectors
    for row, query_id in enumerate(experiment.query_ids):
        query = experiment.query_vectors[row] / np.linalg.norm(experiment.query_vectors[row])
        scores = vectors @ query
        expected = experiment.doc_ids.decode(np.argsort(-scores, kind="stable"))
        assert order(run, query_id) == expected


def test_interpolation_extremes_are_the_single_retrievers() -> None:
    experiment = make_experiment()
    dense = experiment.run(Pipeline("dense"))
    bm25 = experiment.run(Pipeline("bm25"))
    only_dense = experiment.run(Pipeline("interpolation", alpha=1.0))
    only_bm25 = experiment.run(Pipeline("interpolation", alpha=0.0))
    for query_id in experiment.query_ids:
        # the dense list holds every document here, so alpha = 1 is exactly the dense order
        assert order(only_dense, query_id) == order(dense, query_id)
        top = [d for d in order(bm25, query_id) if bm25[query_id][d] > min(bm25[query_id].values())]
        assert order(only_bm25, query_id)[: len(top)] == top


def test_dense_prf_searches_the_expanded_vector() -> None:
    experiment = make_experiment()
    pipeline = Pipeline("dense-prf", prf="rocchio", depth=2, rocchio_alpha=1.0, rocchio_beta=0.5)
    run = experiment.run(pipeline)
    dense = experiment.run(Pipeline("dense"))
    for row, query_id in enumerate(experiment.query_ids):
        top = experiment.doc_ids.encode(order(dense, query_id)[:2])
        expanded = experiment.query_vectors[row] + 0.5 * experiment.vectors[top].mean(axis=0)
        scores = experiment.vectors @ (expanded / np.linalg.norm(expanded))
        assert order(run, query_id) == experiment.doc_ids.decode(np.argsort(-scores, kind="stable"))


def test_interpolation_around_prf() -> None:
    experiment = make_experiment()
    prf = {"prf": "average", "depth": 3}
    after = experiment.run(Pipeline("prf-after", after_alpha=1.0, **prf))  # type: ignore[arg-type]
    dense_prf = experiment.run(Pipeline("dense-prf", **prf))  # type: ignore[arg-type]
    both = experiment.run(Pipeline("prf-both", alpha=0.3, after_alpha=1.0, **prf))  # type: ignore[arg-type]
    before = experiment.run(Pipeline("prf-before", alpha=0.3, **prf))  # type: ignore[arg-type]
    for query_id in experiment.query_ids:
        assert order(after, query_id) == order(dense_prf, query_id)
        assert order(both, query_id) == order(before, query_id)
    # feedback from the interpolation differs from feedback from the dense run somewhere
    assert any(order(before, q) != order(dense_prf, q) for q in experiment.query_ids)


def test_multi_vector_feedback_is_the_best_similarity_to_a_feedback_document() -> None:
    experiment = make_experiment()
    pipeline = Pipeline(
        "multi-vector-prf",
        alpha=0.5,
        depth=2,
        feedback_weight=1.0,
        feedback_k=60,
        normalization="none",
    )
    run = experiment.run(pipeline)
    interpolation = experiment.run(Pipeline("interpolation", alpha=0.5, normalization="none"))
    for query_id in experiment.query_ids:
        feedback = experiment.doc_ids.encode(order(interpolation, query_id)[:2])
        expected = (experiment.vectors @ experiment.vectors[feedback].T).max(axis=1)
        got = np.array([run[query_id][doc] for doc in experiment.doc_ids.ids.tolist()])
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    # with no weight on feedback it is the interpolation
    plain = experiment.run(pipeline.replace(feedback_weight=0.0))
    for query_id in experiment.query_ids:
        assert order(plain, query_id) == order(interpolation, query_id)


def test_first_stage_runs_and_prf_searches_are_shared() -> None:
    experiment = make_experiment()
    experiment.run(Pipeline("dense-prf", rocchio_beta=0.5))
    searched = experiment.searched_queries
    assert searched == 2 * len(experiment.query_ids)  # dense, then one PRF re-search
    experiment.run(Pipeline("prf-after", rocchio_beta=0.5, after_alpha=0.3))
    experiment.run(Pipeline("interpolation", alpha=0.7))
    assert experiment.searched_queries == searched


def test_subset_runs_only_those_queries() -> None:
    experiment = make_experiment()
    subset = experiment.subset(["q3", "q1"])
    run = subset.run(Pipeline("dense"))
    assert list(run) == ["q3", "q1"]
    full = experiment.run(Pipeline("dense"))["q1"]
    assert list(run["q1"]) == list(full)
    assert run["q1"] == pytest.approx(full, rel=1e-5)


def test_bm25_only_experiment_needs_no_vectors() -> None:
    experiment = make_experiment()
    bare = Experiment(
        doc_ids=experiment.doc_ids,
        bm25=experiment.bm25,
        searcher=experiment.searcher,
        doc_vectors=None,
        query_ids=experiment.query_ids,
        query_texts=experiment.query_texts,
        query_vectors=None,
    )
    assert bare.run(Pipeline("bm25")) == experiment.run(Pipeline("bm25"))
    with pytest.raises(ValueError, match="query vectors"):
        bare.run(Pipeline("dense"))
