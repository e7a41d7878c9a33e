"""Tuning: sweeps pick the best candidate on the training queries; staged tuning covers every kind."""

from __future__ import annotations

from retrieval_oracle import make_experiment

from retrieval.pipeline import Experiment, Pipeline
from retrieval.tuning import Grid, objective, significantly_better, sweep, tune


def judged(experiment_seed: int = 0) -> tuple[Experiment, dict[str, dict[str, int]]]:
    experiment = make_experiment(seed=experiment_seed)
    # judge each query's third dense document relevant: alpha = 1 ranks it third, others differ
    dense = experiment.run(Pipeline("dense"))
    qrels = {q: {list(dense[q])[2]: 1} for q in experiment.query_ids}
    return experiment, qrels


def test_sweep_orders_trials_and_prefers_earlier_candidates_on_ties() -> None:
    experiment, qrels = judged()
    candidates = [Pipeline("interpolation", alpha=a) for a in (0.0, 1.0, 1.0)]
    result = sweep("interpolation", experiment, qrels, candidates)
    values = [trial.value for trial in result.trials]
    assert values == sorted(values, reverse=True)
    assert result.value == objective(experiment, qrels, Pipeline("interpolation", alpha=1.0))
    # nDCG@10 of a single relevant document at rank 3
    assert abs(result.value - 0.5) < 1e-9
    assert result.best is candidates[1]


def test_tune_covers_every_pipeline_with_the_quick_grid() -> None:
    experiment, qrels = judged()
    tuned = tune(experiment, qrels, grid=Grid.quick())
    assert set(tuned) == {
        "bm25",
        "interpolation",
        "rrf",
        "dense-prf-average",
        "dense-prf-rocchio",
        "prf-before",
        "prf-after",
        "prf-both",
        "multi-vector-prf",
    }
    best_alpha = tuned["interpolation"].best.alpha
    assert tuned["prf-both"].best.alpha == best_alpha  # later stages build on earlier ones
    # the BM25 sweep's winner is only adopted downstream when significantly better than
    # Lucene's defaults; on 7 queries nothing is significant
    assert tuned["multi-vector-prf"].best.k1 == 1.2
    assert tuned["multi-vector-prf"].best.b == 0.75


def test_significance_rule() -> None:
    experiment = make_experiment(n_queries=20)
    dense = experiment.run(Pipeline("dense"))
    qrels = {q: {next(iter(dense[q])): 1} for q in experiment.query_ids}  # the dense top document
    perfect, bm25 = Pipeline("interpolation", alpha=1.0), Pipeline("bm25")
    assert objective(experiment, qrels, perfect) == 1.0
    assert significantly_better(experiment, qrels, perfect, bm25)
    assert not significantly_better(experiment, qrels, bm25, perfect)
    assert not significantly_better(experiment, qrels, bm25, bm25)
