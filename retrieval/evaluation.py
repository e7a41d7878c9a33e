"""Evaluation through ``ir_measures``: aggregates, per-query values, paired significance, tables.

Measures are named as ``ir_measures`` names them (``nDCG@10``, ``R@100``, ``AP``, ``RR@10``).
Per-query values cover every query that has relevance judgements; a query missing from a run
scores 0 (trec_eval's ``-c``), so a mean is always over the same queries for every run and paired
tests compare like with like.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

DEFAULT_MEASURES: tuple[str, ...] = ("nDCG@10", "R@100", "AP", "RR@10")

Runlike = Mapping[str, Mapping[str, float]]
Qrelslike = Mapping[str, Mapping[str, int]]


@dataclass(frozen=True)
class PerQuery:
    """Per-query values of several measures over a fixed, sorted list of query ids."""

    query_ids: tuple[str, ...]
    values: dict[str, npt.NDArray[np.float64]]
    """measure name -> array aligned with ``query_ids``."""

    def mean(self, measure: str) -> float:
        """Return the mean of ``measure`` over the queries."""
        return float(self.values[measure].mean()) if self.query_ids else 0.0

    def means(self) -> dict[str, float]:
        """Return measure name -> mean."""
        return {measure: self.mean(measure) for measure in self.values}


def per_query(
    qrels: Qrelslike, run: Runlike, measures: Sequence[str] = DEFAULT_MEASURES
) -> PerQuery:
    """Return the value of each measure for each judged query (0 where the run has no results)."""
    import ir_measures

    parsed = [ir_measures.parse_measure(name) for name in measures]
    names = {measure: name for measure, name in zip(parsed, measures, strict=True)}
    query_ids = tuple(sorted(qrels))
    position = {query_id: index for index, query_id in enumerate(query_ids)}
    values = {name: np.zeros(len(query_ids)) for name in measures}
    judged_run = {
        query_id: dict(scores) for query_id, scores in run.items() if query_id in position
    }
    plain_qrels = {query_id: dict(judgements) for query_id, judgements in qrels.items()}
    for metric in ir_measures.iter_calc(parsed, plain_qrels, judged_run):
        values[names[metric.measure]][position[metric.query_id]] = metric.value
    return PerQuery(query_ids, values)


def evaluate(
    qrels: Qrelslike, run: Runlike, measures: Sequence[str] = DEFAULT_MEASURES
) -> dict[str, float]:
    """Return measure name -> mean over the judged queries."""
    return per_query(qrels, run, measures).means()


def paired_t_test(first: npt.NDArray[np.float64], second: npt.NDArray[np.float64]) -> float:
    """Return the two-sided p-value of a paired t-test between per-query values."""
    from scipy import stats

    first, second = _paired(first, second)
    differences = first - second
    if np.allclose(differences, 0.0):
        return 1.0
    if np.allclose(differences, differences[0]):
        return 0.0  # the same non-zero difference on every query: no variance at all
    return float(stats.ttest_rel(first, second).pvalue)


def randomization_test(
    first: npt.NDArray[np.float64],
    second: npt.NDArray[np.float64],
    *,
    trials: int = 10_000,
    seed: int = 0,
) -> float:
    """Return the two-sided p-value of a paired randomization (sign-flip) test on the mean difference.

    Each trial swaps the two systems' values on a random subset of queries; the p-value is the
    fraction of trials whose |mean difference| reaches the observed one (the observed counts as a
    trial, so p >= 1 / (trials + 1)).
    """
    first, second = _paired(first, second)
    differences = first - second
    observed = abs(differences.mean())
    generator = np.random.default_rng(seed)
    extreme = 0
    block = 1000
    for start in range(0, trials, block):
        count = min(block, trials - start)
        signs = generator.choice(np.array([-1.0, 1.0]), size=(count, len(differences)))
        extreme += int((np.abs(signs @ differences) / len(differences) >= observed - 1e-12).sum())
    return (extreme + 1) / (trials + 1)


def _paired(
    first: npt.NDArray[np.float64], second: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    first = np.asarray(first, dtype=np.float64)
    second = np.asarray(second, dtype=np.float64)
    if first.shape != second.shape or first.ndim != 1:
        raise ValueError(
            f"paired tests need two 1-d arrays of the same length, got {first.shape} and {second.shape}"
        )
    return first, second


@dataclass(frozen=True)
class Comparison:
    """A run's per-query values next to a baseline's, with both tests' p-values per measure."""

    name: str
    means: dict[str, float]
    t_test: dict[str, float]
    randomization: dict[str, float]


def compare(
    results: Mapping[str, PerQuery],
    baseline: str | None,
    *,
    trials: int = 10_000,
    seed: int = 0,
) -> list[Comparison]:
    """Return each run's means and its p-values against ``baseline`` (empty for the baseline)."""
    comparisons = []
    for name, result in results.items():
        t_test: dict[str, float] = {}
        randomization: dict[str, float] = {}
        if baseline is not None and name != baseline:
            reference = results[baseline]
            if reference.query_ids != result.query_ids:
                raise ValueError(f"{name!r} and {baseline!r} were evaluated on different queries")
            for measure, values in result.values.items():
                t_test[measure] = paired_t_test(values, reference.values[measure])
                randomization[measure] = randomization_test(
                    values, reference.values[measure], trials=trials, seed=seed
                )
        comparisons.append(Comparison(name, result.means(), t_test, randomization))
    return comparisons


def markdown_table(
    comparisons: Sequence[Comparison],
    measures: Sequence[str] = DEFAULT_MEASURES,
    *,
    baseline: str | None = None,
    alpha: float = 0.05,
    columns: Mapping[str, Mapping[str, str]] | None = None,
) -> str:
    """Return a markdown table of means; a mark flags a significant difference from ``baseline``.

    ``†`` marks p < ``alpha`` in the paired t-test and ``‡`` in the randomization test, on a value
    that is above (``+``) or below (``-``) the baseline's. ``columns`` adds columns after the
    pipeline name: header -> (pipeline name -> cell).
    """
    reference = next((c for c in comparisons if c.name == baseline), None)
    extra = dict(columns or {})
    header = "| pipeline | " + "".join(f"{name} | " for name in extra) + " | ".join(measures) + " |"
    rule = "| --- |" + " --- |" * (len(extra) + len(measures))
    lines = [header, rule]
    for comparison in comparisons:
        cells = [extra[name].get(comparison.name, "") for name in extra]
        for measure in measures:
            value = comparison.means[measure]
            cell = f"{value:.4f}"
            if reference is not None and measure in comparison.t_test:
                marks = ""
                if comparison.t_test[measure] < alpha:
                    marks += "†"
                if comparison.randomization[measure] < alpha:
                    marks += "‡"
                if marks:
                    direction = "+" if value > reference.means[measure] else "-"
                    cell += f" {direction}{marks}"
            cells.append(cell)
        name = f"{comparison.name} (baseline)" if comparison.name == baseline else comparison.name
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
