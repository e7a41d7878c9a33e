"""The reduced, quantized ANN index against exact search (the oracle), on seeded data and SciFact."""

from __future__ import annotations

import math
import os
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from vecdb.engine.ann import AnnConfig, AnnIndex, Metric, exact_search
from vecdb.engine.errors import DimensionMismatch, InvalidArgument

SCIFACT = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "scifact"
K = 10


def _clustered(
    rows: int, dim: int, seed: int, clusters: int = 40, spread: float = 0.35
) -> NDArray[np.float32]:
    """Return a seeded Gaussian mixture with a decaying spectrum (embedding-like, not unit)."""
    rng = np.random.default_rng(seed)
    spectrum = np.linspace(1.5, 0.2, dim)
    centres = rng.standard_normal((clusters, dim)) * spectrum
    picks = rng.integers(0, clusters, rows)
    points = centres[picks] + spread * rng.standard_normal((rows, dim)) * spectrum
    return points.astype(np.float32)


def _recall(found: NDArray[np.int64], truth: NDArray[np.int64]) -> float:
    hits = [len(set(a[a >= 0]) & set(b)) / len(b) for a, b in zip(found, truth, strict=True)]
    return float(np.mean(hits))


def _oracle(
    queries: NDArray[np.float32], vectors: NDArray[np.float32], k: int, metric: Metric
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    if metric == "cosine":
        queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)
        vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        return exact_search(queries, vectors, k, "ip")
    return exact_search(queries, vectors, k, metric)


# One draw split three ways, so queries follow the rows' distribution.
_POINTS = _clustered(3500, 48, seed=0)
DATA, QUERIES, TRAIN = _POINTS[:3000], _POINTS[3000:3200], _POINTS[3200:]


@pytest.fixture(scope="module", params=["cosine", "ip", "l2"])
def built(request: pytest.FixtureRequest) -> tuple[Metric, AnnIndex]:
    metric: Metric = request.param
    return metric, AnnIndex.build(DATA, metric=metric, recall_target=0.95, seed=0)


def test_recall_after_rerank_meets_the_target_against_exact_search(
    built: tuple[Metric, AnnIndex],
) -> None:
    metric, index = built
    _, truth = _oracle(QUERIES, DATA, K, metric)
    _, rows = index.search(QUERIES, K, vectors=DATA)
    assert index.measured_recall >= 0.95
    assert _recall(rows, truth) >= 0.92, index.config
    # The index really is reduced and quantized, and it covers every row.
    assert index.config.reduced_dim is not None and index.config.reduced_dim < 48
    assert index.config.code_bits in (2, 4, 8)
    assert index.covered_rows == len(DATA)
    assert 0 < index.memory_bytes() < DATA.nbytes / 2


def test_primary_search_alone_is_far_above_chance(built: tuple[Metric, AnnIndex]) -> None:
    """Chance is 10 / 3000; the tuned primary stage (without rerank) must carry real signal."""
    metric, index = built
    _, truth = _oracle(QUERIES, DATA, K, metric)
    _, primary = index.search(QUERIES, K, vectors=DATA, rerank_factor=1)
    assert _recall(primary, truth) >= 0.1, index.config


@pytest.mark.parametrize("factory", ["IVF32,SQ8", "IVF32,PQ12x4fs", "HNSW16_SQ8"])
@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_each_stage_against_its_own_oracle(factory: str, metric: Metric) -> None:
    """Projection vs exact search, codes + structure vs the flat projected search, rerank vs
    exact: a broken stage fails its own bound."""
    index = AnnIndex.build(
        DATA, metric=metric, config=AnnConfig(reduced_dim=24, index_factory=factory)
    )
    _, truth = _oracle(QUERIES, DATA, K, metric)
    queries = QUERIES
    if metric == "cosine":
        queries = QUERIES / np.linalg.norm(QUERIES, axis=1, keepdims=True)
        rows = DATA / np.linalg.norm(DATA, axis=1, keepdims=True)
    else:
        rows = DATA
    reduced_metric: Metric = "l2" if metric == "l2" else "ip"
    projection = index.projection
    _, flat = exact_search(
        projection.project_queries(queries), projection.project_data(rows), K, reduced_metric
    )
    flat_recall = _recall(flat, truth)
    _, primary = index.search(QUERIES, K, vectors=DATA, rerank_factor=1, ef_search=1024, nprobe=32)
    _, reranked = index.search(
        QUERIES, K, vectors=DATA, rerank_factor=10, ef_search=1024, nprobe=32
    )
    assert flat_recall >= 0.6, "projection"
    bound = 0.3 if "PQ" in factory else 0.85  # 4-bit PQ codes are coarse by design
    assert _recall(primary, truth) >= bound * flat_recall, "codes or structure"
    assert _recall(reranked, truth) >= 0.97, "rerank"


def test_scores_are_exact_and_sorted(built: tuple[Metric, AnnIndex]) -> None:
    metric, index = built
    scores, rows = index.search(QUERIES[:20], K, vectors=DATA)
    assert scores.dtype == np.float32 and rows.dtype == np.int64
    assert scores.shape == rows.shape == (20, K)
    for query, line, found in zip(QUERIES[:20], scores, rows, strict=True):
        vectors = DATA[found]
        if metric == "l2":
            exact = ((vectors - query) ** 2).sum(axis=1)
            assert np.all(np.diff(line) >= 0)
        elif metric == "ip":
            exact = vectors @ query
            assert np.all(np.diff(line) <= 0)
        else:
            exact = (vectors @ query) / np.linalg.norm(vectors, axis=1) / np.linalg.norm(query)
            assert np.all(np.diff(line) <= 0)
        np.testing.assert_allclose(line, exact, rtol=1e-4, atol=1e-4)


def test_save_then_load_gives_identical_results(
    built: tuple[Metric, AnnIndex], tmp_path: Path
) -> None:
    metric, index = built
    index.save(tmp_path)
    # an IVF index also keeps the coverage exponents its filtered search calibrated
    calibrated = ["filter.json"] if index.filter_calibration is not None else []
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        *calibrated,
        "meta.json",
        "projection.npz",
        "structure.faiss",
    ]
    loaded = AnnIndex.load(tmp_path)
    assert loaded.config == index.config
    assert loaded.metric == metric
    assert loaded.measured_recall == index.measured_recall
    assert loaded.covered_rows == index.covered_rows
    mask = np.random.default_rng(3).random(len(DATA)) < 0.5
    for allowed in (None, mask):
        before = index.search(QUERIES, K, vectors=DATA, allowed=allowed)
        after = loaded.search(QUERIES, K, vectors=DATA, allowed=allowed)
        np.testing.assert_array_equal(before[1], after[1])
        np.testing.assert_array_equal(before[0], after[0])


def test_save_refuses_a_directory_that_is_not_empty(
    built: tuple[Metric, AnnIndex], tmp_path: Path
) -> None:
    (tmp_path / "stray").write_text("x")
    with pytest.raises(InvalidArgument, match="not empty"):
        built[1].save(tmp_path)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    density=st.sampled_from([0.0, 0.001, 0.01, 0.2, 0.9, 1.0]),
    seed=st.integers(0, 2**16),
    k=st.sampled_from([1, 7, 10, 33]),
    batch=st.sampled_from([1, 7, 64]),
)
def test_allowed_masks_are_honoured_exactly(
    built: tuple[Metric, AnnIndex], density: float, seed: int, k: int, batch: int
) -> None:
    metric, index = built
    rng = np.random.default_rng(seed)
    allowed = rng.random(len(DATA) + 5) < density  # longer than covered_rows is allowed
    queries = QUERIES[rng.integers(0, len(QUERIES), batch)]
    scores, rows = index.search(queries, k, vectors=DATA, allowed=allowed)
    assert rows.shape == scores.shape == (batch, k)
    returned = rows[rows >= 0]
    assert allowed[returned].all(), "a disallowed row was returned"
    for line, found in zip(scores, rows, strict=True):
        real = found[found >= 0]
        assert len(set(real.tolist())) == len(real), "duplicate rows"
        assert np.all(found[len(real) :] == -1), "padding must come last"
        worst = np.inf if metric == "l2" else -np.inf
        assert np.all(line[len(real) :] == worst)
        assert len(real) <= min(k, int(allowed[: len(DATA)].sum()))


def test_allowed_single_row_is_found() -> None:
    index = AnnIndex.build(DATA, metric="l2", config=AnnConfig(reduced_dim=16, structure="ivf"))
    allowed = np.zeros(len(DATA), dtype=bool)
    allowed[1234] = True
    knob = index.config.list_count or 1
    scores, rows = index.search(QUERIES[:3], 5, vectors=DATA, allowed=allowed, nprobe=knob)
    assert rows[:, 0].tolist() == [1234, 1234, 1234]
    assert (rows[:, 1:] == -1).all() and np.isinf(scores[:, 1:]).all()


def test_fixed_knobs_are_kept_and_hnsw_works() -> None:
    config = AnnConfig(reduced_dim=24, structure="hnsw", graph_degree=16, code_bits=8)
    index = AnnIndex.build(DATA, metric="ip", config=config)
    assert index.config.structure == "hnsw"
    assert index.config.reduced_dim == 24
    assert index.config.graph_degree == 16
    assert index.config.index_factory == "HNSW16_SQ8"
    assert index.config.ef_search is not None and index.config.nprobe is None
    _, truth = _oracle(QUERIES, DATA, K, "ip")
    _, rows = index.search(QUERIES, K, vectors=DATA)
    assert _recall(rows, truth) >= 0.9


@pytest.mark.parametrize(
    ("factory", "bits"), [("IVF32,PQ8x4fs", 2), ("IVF32_HNSW32,PQ16x4fs", 4), ("IVF32,SQ8", 8)]
)
def test_a_faiss_factory_string_pins_the_structure(factory: str, bits: int) -> None:
    config = AnnConfig(reduced_dim=16, index_factory=factory)
    index = AnnIndex.build(DATA, metric="cosine", config=config)
    assert index.config.index_factory == factory
    assert index.config.structure == "ivf" and index.config.code_bits == bits
    assert index.config.list_count == 32
    _, truth = _oracle(QUERIES, DATA, K, "cosine")
    allowed = np.arange(len(DATA)) % 3 == 0
    _, rows = index.search(QUERIES, K, vectors=DATA, allowed=allowed)
    assert allowed[rows[rows >= 0]].all()
    assert _recall(index.search(QUERIES, K, vectors=DATA)[1], truth) >= 0.9


def test_train_queries_switch_to_ood_and_tune_on_them() -> None:
    index = AnnIndex.build(DATA, metric="ip", train_queries=TRAIN)
    assert index.config.projection == "ood"
    assert index.report is not None and "training queries" in index.report.held_out
    # the shrinkage of the training queries' moment was cross-validated, and is what was fitted
    report = index.report
    assert report.ood_shrinkage is not None and report.shrinkage_losses
    assert report.shrinkage_losses[report.ood_shrinkage] == min(report.shrinkage_losses.values())
    if report.ood_shrinkage > 0:
        assert f"shrinkage={report.ood_shrinkage:.2f}" in index.projection.method
    _, truth = _oracle(QUERIES, DATA, K, "ip")
    _, rows = index.search(QUERIES, K, vectors=DATA)
    assert _recall(rows, truth) >= 0.92


def test_cosine_scores_do_not_need_normalised_stored_vectors() -> None:
    scaled = DATA * np.random.default_rng(4).uniform(0.5, 3.0, (len(DATA), 1)).astype(np.float32)
    index = AnnIndex.build(scaled, metric="cosine", config=AnnConfig(reduced_dim=24))
    scores, rows = index.search(QUERIES[:5] * 7.0, K, vectors=scaled)
    unit = scaled / np.linalg.norm(scaled, axis=1, keepdims=True)
    query = QUERIES[:5] / np.linalg.norm(QUERIES[:5], axis=1, keepdims=True)
    expected = np.einsum("mkd,md->mk", unit[rows], query)
    np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dim", [3, 97])
def test_odd_dimensions_and_more_k_than_rows(dim: int) -> None:
    data = _clustered(300, dim, seed=dim)
    index = AnnIndex.build(data, metric="l2")
    scores, rows = index.search(data[:7], 400, vectors=data)
    assert rows.shape == (7, 400)
    assert (rows[:, 300:] == -1).all() and np.isinf(scores[:, 300:]).all()
    assert rows[:, 0].tolist() == list(range(7))  # each row is its own nearest neighbour


def test_memory_mapped_vectors_rerank_the_same(
    built: tuple[Metric, AnnIndex], tmp_path: Path
) -> None:
    _, index = built
    path = tmp_path / "vectors.npy"
    np.save(path, DATA)
    mapped = np.load(path, mmap_mode="r")
    in_ram = index.search(QUERIES, K, vectors=DATA)
    on_disk = index.search(QUERIES, K, vectors=mapped)
    np.testing.assert_array_equal(in_ram[1], on_disk[1])


def test_norms_given_score_rows_in_place_as_the_gathered_rerank_does(
    built: tuple[Metric, AnnIndex],
) -> None:
    _, index = built
    norms = np.linalg.norm(DATA.astype(np.float64), axis=1).astype(np.float32)
    allowed = np.zeros(len(DATA), dtype=bool)
    allowed[::7] = True  # a filter: padded candidate slots, and the filtered search's paths
    for mask, k in ((None, K), (allowed, K), (allowed, 500)):  # 500 > matching rows: -1 pads
        gathered = index.search(QUERIES[:30], k, vectors=DATA, allowed=mask)
        in_place = index.search(QUERIES[:30], k, vectors=DATA, allowed=mask, norms=norms)
        np.testing.assert_array_equal(in_place[1], gathered[1])
        finite = np.isfinite(gathered[0])
        np.testing.assert_array_equal(np.isfinite(in_place[0]), finite)
        np.testing.assert_allclose(in_place[0][finite], gathered[0][finite], rtol=1e-5, atol=1e-5)
    with pytest.raises(InvalidArgument, match="norms"):
        index.search(QUERIES, K, vectors=DATA, norms=norms[:10])


def test_an_empty_batch_gives_empty_results(built: tuple[Metric, AnnIndex]) -> None:
    scores, rows = built[1].search(QUERIES[:0], K, vectors=DATA)
    assert scores.shape == rows.shape == (0, K)


def test_bad_inputs_are_rejected_with_the_value_named(built: tuple[Metric, AnnIndex]) -> None:
    _, index = built
    with pytest.raises(DimensionMismatch, match="dimension 47"):
        index.search(QUERIES[:, :47], K, vectors=DATA)
    with pytest.raises(InvalidArgument, match="k must be"):
        index.search(QUERIES, 0, vectors=DATA)
    bad = QUERIES[:2].copy()
    bad[0, 0] = np.nan
    with pytest.raises(InvalidArgument, match="NaN"):
        index.search(bad, K, vectors=DATA)
    with pytest.raises(InvalidArgument, match="allowed"):
        index.search(QUERIES, K, vectors=DATA, allowed=np.ones(10, dtype=bool))
    with pytest.raises(InvalidArgument, match="rows"):
        index.search(QUERIES, K, vectors=DATA[:100])
    with pytest.raises(InvalidArgument, match="metric"):
        AnnIndex.build(DATA, metric="hamming")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="needs train_queries"):
        AnnIndex.build(DATA, config=AnnConfig(projection="ood"))


def test_progress_is_reported() -> None:
    stages: list[tuple[str, float]] = []
    AnnIndex.build(
        DATA[:1000],
        metric="ip",
        config=AnnConfig(reduced_dim=16, structure="ivf", code_bits=8),
        progress=lambda stage, fraction: stages.append((stage, fraction)),
    )
    assert stages[-1] == ("done", 1.0)
    assert all(0.0 <= fraction <= 1.0 for _, fraction in stages)


@pytest.mark.skipif(
    not (SCIFACT / "docs.npy").exists(),
    reason="SciFact embeddings not found in ../shared/data/scifact (sibling of the repository)",
)
def test_scifact_ood_index_reaches_the_target_on_unseen_test_queries() -> None:
    docs = np.load(SCIFACT / "docs.npy")
    train = np.load(SCIFACT / "train" / "queries.npy")
    test = np.load(SCIFACT / "queries.npy")
    # d' and the structure pinned to keep the test fast; the search knobs are still tuned.
    config = AnnConfig(reduced_dim=96, index_factory="IVF128,SQ8")
    index = AnnIndex.build(
        docs, metric="cosine", recall_target=0.95, train_queries=train, config=config
    )
    _, truth = exact_search(test, docs, K, "ip")
    _, rows = index.search(test, K, vectors=docs)
    assert index.config.projection == "ood"
    assert _recall(rows, truth) >= 0.93


def test_the_build_keeps_the_cheapest_passing_point_and_chooses_the_same_twice(
    built: tuple[Metric, AnnIndex],
) -> None:
    metric, index = built
    report = index.report
    assert report is not None
    priced = [p for p in report.points if not math.isnan(p.seconds_per_query)]
    assert priced, "every passing point is priced"
    chosen = min(priced, key=lambda p: p.seconds_per_query)
    assert (chosen.index_factory, chosen.knob, chosen.rerank_factor) == (
        index.config.index_factory,
        index.config.nprobe or index.config.ef_search,
        index.config.rerank_factor,
    )
    # priced from counts, not timings: a second build of the same data chooses the same point
    again = AnnIndex.build(DATA, metric=metric, recall_target=0.95, seed=0)
    assert again.config == index.config
    assert again.report is not None
    assert [
        p.seconds_per_query for p in again.report.points if not math.isnan(p.seconds_per_query)
    ] == [p.seconds_per_query for p in priced]
