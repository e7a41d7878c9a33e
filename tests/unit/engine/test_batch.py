"""Batch execution (HQI): run_batch against exact per-query search, partitionings, streaming."""

from __future__ import annotations

import itertools
import json
import math
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from vecdb.engine import Collection, Database, Hits, SearchOptions
from vecdb.engine import filters as flt
from vecdb.engine.ann import AnnConfig
from vecdb.engine.batch import (
    BatchQuery,
    BatchSettings,
    Partitioning,
    atoms_of,
    plan_chunks,
    run_batch,
    workload_key,
)
from vecdb.engine.errors import InvalidArgument

SCHEMA = {"color": "keyword", "year": "int", "tags": "keyword_list", "open": "bool"}
COLORS = ("red", "green", "blue", "white", "black")
TENANTS = ("acme", "globex", "initech")
# settings that send every filter through the partitioning and probe every cell: exact results
EXHAUSTIVE = BatchSettings(
    exact_rows=0, flat_preference=0.0, min_probe_rows=1 << 40, rerank_factor=1.0
)
# settings that send every filter with more than 50 matching rows through the partitioning
THROUGH_CELLS = BatchSettings(exact_rows=50, flat_preference=0.0)


def make_collection(
    folder: Path, metric: str, count: int = 3_000, dim: int = 24, seed: int = 0
) -> tuple[Database, Collection]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((12, dim)).astype(np.float32)
    cluster = rng.integers(0, len(centres), count)
    vectors = (centres[cluster] + 0.4 * rng.standard_normal((count, dim))).astype(np.float32)
    database = Database(folder)
    collection = database.create_collection("docs", dim, metric, SCHEMA)
    attributes = [
        {
            # correlated with the vectors, as real attributes are, with some noise
            "color": COLORS[cluster[i] % len(COLORS)] if rng.random() < 0.8 else COLORS[i % 5],
            "year": int(2000 + cluster[i] + rng.integers(0, 6)),
            "tags": [f"t{t}" for t in rng.choice(8, int(rng.integers(0, 3)), replace=False)],
            "open": bool(rng.random() < 0.3),
        }
        for i in range(count)
    ]
    tenants = [
        [TENANTS[t] for t in range(len(TENANTS)) if rng.random() < (0.6, 0.3, 0.05)[t]]
        for _ in range(count)
    ]
    collection.upsert([f"p{i}" for i in range(count)], vectors, attributes, tenants)
    return database, collection


FILTERS: tuple[flt.Filter | None, ...] = (
    None,
    flt.Equals("color", "red"),
    flt.Equals("color", "blue"),
    flt.Range("year", gte=2003, lt=2008),
    flt.Contains("tags", "t1"),
    flt.In("color", ("green", "white")),
    flt.And((flt.Equals("color", "red"), flt.Range("year", gte=2005))),
    flt.And((flt.Contains("tags", "t2"), flt.Equals("open", True))),
    flt.Or((flt.Equals("color", "black"), flt.Contains("tags", "t3"))),
    flt.Not(flt.Equals("color", "red")),
    flt.Equals("color", "purple"),  # matches nothing
)


def build_pinned_ivf(docs: Collection) -> None:
    """Build a small IVF index with every knob pinned, so the build measures nothing (fast)."""
    docs.build_index(
        config=AnnConfig(
            projection="pca",
            reduced_dim=12,
            code_bits=8,
            structure="ivf",
            list_count=32,
            nprobe=8,
            rerank_factor=4,
        )
    )


def make_queries(
    collection: Collection, count: int, seed: int = 1, *, tenants: bool = True
) -> list[BatchQuery]:
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, len(collection), count)
    base = collection.vectors_of(rows.astype(np.int64))
    vectors = base + 0.3 * rng.standard_normal(base.shape).astype(np.float32)
    return [
        BatchQuery(
            query_id=f"q{i}",
            vector=vectors[i],
            k=int(rng.choice([1, 5, 10, 10, 10, 40])),
            tenant=str(rng.choice(TENANTS)) if tenants and rng.random() < 0.4 else None,
            filter=FILTERS[int(rng.integers(0, len(FILTERS)))],
        )
        for i in range(count)
    ]


def exact(collection: Collection, query: BatchQuery) -> tuple[list[str], np.ndarray]:
    (hits,) = collection.search(
        query.vector,
        query.k,
        tenant=query.tenant,
        filter=query.filter,
        options=SearchOptions(exact=True),
    )
    return hits.ids, hits.scores


def assert_allowed(collection: Collection, query: BatchQuery, rows: np.ndarray) -> None:
    with collection._lock.read():
        mask = collection.candidate_mask(query.tenant, query.filter)
    if mask is not None:
        assert mask[rows].all(), f"{query.query_id} returned rows its tenant / filter exclude"


def assert_same_as_exact(
    collection: Collection, queries: list[BatchQuery], results: dict[str, Hits]
) -> None:
    assert sorted(results) == sorted(q.query_id for q in queries)  # each query answered once
    for query in queries:
        hits = results[query.query_id]
        ids, scores = exact(collection, query)
        assert hits.ids == ids, query
        np.testing.assert_allclose(hits.scores, scores, rtol=1e-5, atol=1e-5)
        assert_allowed(collection, query, hits.rows)


# read-only collections are shared by the tests of this module; tests that write get their own


@pytest.fixture(scope="module", params=["cosine", "ip", "l2"])
def collection(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Collection]:
    database, docs = make_collection(tmp_path_factory.mktemp("data"), request.param)
    yield docs
    database.close()


@pytest.fixture(scope="module")
def cosine_docs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collection]:
    database, docs = make_collection(tmp_path_factory.mktemp("data"), "cosine")
    yield docs
    database.close()


@pytest.fixture
def fresh_docs(tmp_path: Path) -> Iterator[Collection]:
    database, docs = make_collection(tmp_path / "data", "cosine")
    yield docs
    database.close()


def build(collection: Collection, queries: list[BatchQuery], **options: object) -> Partitioning:
    defaults: dict[str, object] = {
        "list_rows": 64,
        "min_leaf_rows": 150,
        "max_leaves": 12,
        "settings": THROUGH_CELLS,
    }
    return Partitioning.build(collection, queries, **{**defaults, **options})  # type: ignore[arg-type]


# --- without a partitioning: grouped through the collection's planner ------------------------


@pytest.mark.parametrize("chunk_size", [1, 7, 1024])
def test_run_batch_without_partitioning_equals_exact_search(
    collection: Collection, chunk_size: int
) -> None:
    queries = make_queries(collection, 61)
    results = dict(run_batch(collection, queries, settings=BatchSettings(chunk_size=chunk_size)))
    assert_same_as_exact(collection, queries, results)


# --- with a partitioning -----------------------------------------------------------------------


@pytest.mark.parametrize("reduced_dim", [None, 12])
def test_exhaustive_partition_search_equals_exact_search(
    collection: Collection, reduced_dim: int | None
) -> None:
    queries = make_queries(collection, 80)
    partitioning = build(collection, queries, reduced_dim=reduced_dim)
    assert partitioning.leaf_count > 1
    assert partitioning.cell_count > partitioning.leaf_count
    results = dict(run_batch(collection, queries, partitioning=partitioning, settings=EXHAUSTIVE))
    plans = {hits.explain.plan for hits in results.values() if hits.explain}
    assert "batch:partition" in plans
    if reduced_dim is None:
        assert_same_as_exact(collection, queries, results)
    else:
        # reduced scores only pick candidates; with every matching row a candidate the rerank
        # is exact
        wide = BatchSettings(
            exact_rows=0, flat_preference=0.0, min_probe_rows=1 << 40, rerank_factor=1e6
        )
        results = dict(run_batch(collection, queries, partitioning=partitioning, settings=wide))
        assert_same_as_exact(collection, queries, results)


def test_calibrated_partition_search_reaches_its_recall_and_never_leaks(
    cosine_docs: Collection,
) -> None:
    queries = make_queries(cosine_docs, 300)
    partitioning = build(cosine_docs, queries, recall_target=0.9)
    assert partitioning.measured_recall is not None
    assert partitioning.measured_recall >= 0.9
    results = dict(
        run_batch(cosine_docs, queries, partitioning=partitioning, settings=THROUGH_CELLS)
    )
    through_cells = 0
    recalls = []
    for query in queries:
        hits = results[query.query_id]
        assert_allowed(cosine_docs, query, hits.rows)
        ids, _ = exact(cosine_docs, query)
        assert len(hits.ids) == len(ids)  # never fewer than k when k rows match
        assert hits.explain is not None
        if hits.explain.plan == "batch:partition":
            through_cells += 1
            recalls.append(len(set(hits.ids) & set(ids)) / len(ids))
        else:
            assert hits.ids == ids
    assert through_cells > 100
    # a broken router or scorer drops far below this; calibration aimed at 0.9 on a sample
    assert np.mean(recalls) >= 0.85


def test_the_tree_cuts_on_the_predicates_the_workload_uses(cosine_docs: Collection) -> None:
    red = flt.Equals("color", "red")
    queries = [
        BatchQuery(f"q{i}", np.ones(24, np.float32), 10, None, red if i % 2 else None)
        for i in range(40)
    ]
    partitioning = build(cosine_docs, queries)
    cuts = {atom.describe() for path in partitioning.leaf_paths for atom, _ in path}
    assert any('"red"' in cut for cut in cuts)
    description = partitioning.describe()
    assert description["leaves"] == partitioning.leaf_count
    leaves = description["leaf_paths"]
    assert isinstance(leaves, list)
    assert sum(leaf["rows"] for leaf in leaves) == len(cosine_docs)


def test_tenants_are_cut_on_and_never_leak(cosine_docs: Collection) -> None:
    queries = [
        BatchQuery(f"q{i}", q.vector, 10, TENANTS[i % 2], q.filter)
        for i, q in enumerate(make_queries(cosine_docs, 60, tenants=False))
    ]
    partitioning = build(cosine_docs, queries)
    cuts = {atom.describe() for path in partitioning.leaf_paths for atom, _ in path}
    assert any(cut.startswith("tenant=") for cut in cuts)
    results = dict(run_batch(cosine_docs, queries, partitioning=partitioning, settings=EXHAUSTIVE))
    assert_same_as_exact(cosine_docs, queries, results)


@pytest.fixture(scope="module")
def calibrated(
    cosine_docs: Collection,
) -> tuple[list[BatchQuery], Partitioning, dict[str, list[str]]]:
    """Queries, a partitioning calibrated on them, and each query's answer when run alone."""
    queries = make_queries(cosine_docs, 64)
    partitioning = build(cosine_docs, queries, recall_target=0.9)
    alone = {
        q.query_id: hits.ids
        for q in queries
        for _, hits in run_batch(
            cosine_docs, [q], partitioning=partitioning, settings=THROUGH_CELLS
        )
    }
    return queries, partitioning, alone


@pytest.mark.parametrize("batch_size", [1, 7, 64])
@pytest.mark.parametrize("chunk_size", [1, 5, 1024])
def test_grouping_does_not_depend_on_batch_or_chunk_size(
    cosine_docs: Collection,
    calibrated: tuple[list[BatchQuery], Partitioning, dict[str, list[str]]],
    batch_size: int,
    chunk_size: int,
) -> None:
    queries, partitioning, alone = calibrated
    settings = BatchSettings(
        exact_rows=50, flat_preference=0.0, chunk_size=chunk_size, keep_order=True
    )
    together = dict(
        run_batch(cosine_docs, queries[:batch_size], partitioning=partitioning, settings=settings)
    )
    assert list(together) == [q.query_id for q in queries[:batch_size]]
    # each query's probes depend on it alone, so grouping it with others changes nothing
    assert {qid: hits.ids for qid, hits in together.items()} == {
        q.query_id: alone[q.query_id] for q in queries[:batch_size]
    }


def test_with_an_index_filters_the_partitioning_does_not_fit_take_the_collections_plan(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    database, docs = make_collection(tmp_path_factory.mktemp("indexed"), "cosine", count=4_000)
    build_pinned_ivf(docs)
    queries = make_queries(docs, 150)
    partitioning = build(docs, queries, recall_target=0.9)
    # every filter above the exact threshold is priced against the collection's own plan
    settings = BatchSettings(exact_rows=50)
    results = dict(run_batch(docs, queries, partitioning=partitioning, settings=settings))
    assert sorted(results) == sorted(q.query_id for q in queries)
    plans = {hits.explain.plan for hits in results.values() if hits.explain}
    assert plans & {"exact", "index", "index+selector", "index+postfilter"}
    recalls = []
    for query in queries:
        hits = results[query.query_id]
        assert_allowed(docs, query, hits.rows)
        ids, _ = exact(docs, query)
        assert len(hits.ids) == len(ids)
        if ids:
            recalls.append(len(set(hits.ids) & set(ids)) / len(ids))
    assert np.mean(recalls) >= 0.85
    # without a partitioning, every filter takes the collection's own plan: same answers
    grouped = dict(run_batch(docs, queries))
    for query in queries:
        (alone,) = docs.search(query.vector, query.k, tenant=query.tenant, filter=query.filter)
        assert grouped[query.query_id].ids == alone.ids
        assert grouped[query.query_id].explain.plan == alone.explain.plan  # type: ignore[union-attr]
    database.close()


def test_partitioning_save_then_load_gives_identical_results(
    cosine_docs: Collection, tmp_path: Path
) -> None:
    queries = make_queries(cosine_docs, 120)
    partitioning = build(cosine_docs, queries, reduced_dim=12)
    partitioning.save(tmp_path / "part")
    loaded = Partitioning.load(tmp_path / "part", cosine_docs)
    assert loaded.describe() == partitioning.describe()
    before = run_batch(cosine_docs, queries, partitioning=partitioning, settings=THROUGH_CELLS)
    after = run_batch(cosine_docs, queries, partitioning=loaded, settings=THROUGH_CELLS)
    for (first_id, first), (second_id, second) in zip(before, after, strict=True):
        assert first_id == second_id
        assert first.ids == second.ids
        np.testing.assert_array_equal(first.scores, second.scores)


def test_cells_are_stored_in_scan_order_and_an_older_layout_is_reordered_on_load(
    cosine_docs: Collection, tmp_path: Path
) -> None:
    queries = make_queries(cosine_docs, 120)
    partitioning = build(cosine_docs, queries, reduced_dim=12)
    assert partitioning.locality_ordered
    np.testing.assert_array_equal(partitioning.cell_rank, np.arange(partitioning.cell_count))
    # a partitioning saved before cells were stored in scan order is reordered once on load,
    # with the same answers
    partitioning.save(tmp_path / "part")
    meta_path = tmp_path / "part" / "partitioning.json"
    meta = json.loads(meta_path.read_text())
    del meta["locality_ordered"]
    meta_path.write_text(json.dumps(meta))
    older = Partitioning.load(tmp_path / "part", cosine_docs)
    assert older.locality_ordered
    np.testing.assert_array_equal(older.cell_rank, np.arange(older.cell_count))
    before = run_batch(cosine_docs, queries, partitioning=partitioning, settings=THROUGH_CELLS)
    after = run_batch(cosine_docs, queries, partitioning=older, settings=THROUGH_CELLS)
    for (first_id, first), (second_id, second) in zip(before, after, strict=True):
        assert first_id == second_id
        assert first.ids == second.ids
        np.testing.assert_allclose(first.scores, second.scores, rtol=1e-5)


def test_an_explicit_reduced_dim_is_honoured_beside_the_indexs_projection(
    fresh_docs: Collection,
) -> None:
    build_pinned_ivf(fresh_docs)
    index = fresh_docs.index
    assert index is not None
    queries = make_queries(fresh_docs, 40)
    default = build(fresh_docs, queries)
    assert default.reduced_dim == index.projection.reduced_dim
    wanted = index.projection.reduced_dim // 2
    assert build(fresh_docs, queries, reduced_dim=wanted).reduced_dim == wanted


def test_quantized_codes_restore_each_dimension_within_half_a_step() -> None:
    from vecdb.engine.batch import quantize_codes

    rng = np.random.default_rng(5)
    vectors = (rng.standard_normal((5_000, 6)) * [1.0, 10.0, 0.01, 3.0, 1.0, 0.0]).astype(
        np.float32
    )
    vectors[:, 4] += 100.0  # far from zero
    codes, scale, offset = quantize_codes(vectors)
    assert codes.dtype == np.int8 and codes.shape == vectors.shape
    assert codes.min() >= -127 and codes.max() <= 127
    restored = offset + scale * codes.astype(np.float32)
    error = np.abs(restored - vectors).max(axis=0)
    assert (error <= scale / 2 + 1e-4 * np.maximum(np.abs(vectors).max(axis=0), 1)).all()
    assert (restored[:, 5] == 0).all()  # a constant dimension is kept exactly
    empty, _, _ = quantize_codes(np.zeros((0, 3), np.float32))
    assert empty.shape == (0, 3)


def test_reduced_vectors_are_held_as_8_bit_codes_and_a_version_1_save_still_loads(
    cosine_docs: Collection, tmp_path: Path
) -> None:
    queries = make_queries(cosine_docs, 120)
    reduced = build(cosine_docs, queries, reduced_dim=12)
    assert reduced.codes.dtype == np.int8
    assert reduced.code_scale is not None and reduced.code_offset is not None
    assert reduced.memory_bytes() < reduced.covered_rows * 12 * 4 + reduced.order.nbytes * 4
    # without a projection the codes are the vectors themselves, unrounded
    full = build(cosine_docs, queries, reduced_dim=None)
    assert full.codes.dtype == np.float32 and full.code_scale is None
    # a partitioning saved before codes were 8-bit (version 1: float reduced vectors) is
    # rounded once when loaded, to the same codes
    reduced.save(tmp_path / "part")
    with np.load(tmp_path / "part" / "partitioning.npz") as saved:
        arrays = {name: saved[name] for name in saved.files}
    arrays["codes"] = arrays.pop("code_offset") + arrays.pop("code_scale") * arrays["codes"]
    np.savez(tmp_path / "part" / "partitioning.npz", **arrays)
    meta_path = tmp_path / "part" / "partitioning.json"
    meta = json.loads(meta_path.read_text())
    meta["version"] = 1
    meta_path.write_text(json.dumps(meta))
    older = Partitioning.load(tmp_path / "part", cosine_docs)
    assert older.codes.dtype == np.int8
    np.testing.assert_array_equal(older.codes, reduced.codes)
    before = run_batch(cosine_docs, queries, partitioning=reduced, settings=THROUGH_CELLS)
    after = run_batch(cosine_docs, queries, partitioning=older, settings=THROUGH_CELLS)
    for (first_id, first), (second_id, second) in zip(before, after, strict=True):
        assert first_id == second_id
        assert first.ids == second.ids
    meta["version"] = 99
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(InvalidArgument, match="format version 99"):
        Partitioning.load(tmp_path / "part", cosine_docs)


def test_cell_blocks_are_whole_cells_scored_for_who_visits_them_at_the_cheapest_size(
    cosine_docs: Collection,
) -> None:
    from vecdb.engine.batch import CELL_BLOCK_FIXED, SCAN_CELL_BLOCKS, SCAN_PER_CODE_DIM

    partitioning = build(cosine_docs, make_queries(cosine_docs, 60), reduced_dim=12)
    rng = np.random.default_rng(9)
    present = np.sort(rng.choice(partitioning.cell_count, 40, replace=False)).astype(np.int64)
    counts = rng.integers(1, 700, len(present)).astype(np.int64)
    visits = rng.random((7, len(present))) < 0.3
    visits[:, 0] = True
    layout = partitioning._cell_layout(present, counts, visits)
    sizes, bounds = layout.sizes, layout.bounds
    assert bounds[0] == 0 and (np.diff(bounds) > 0).all()
    ends = np.append(bounds[1:], len(sizes))
    work = 0
    for block, (first, last) in enumerate(zip(bounds, ends, strict=True)):
        who = layout.cell_visits[:, first:last].any(axis=1)
        np.testing.assert_array_equal(layout.block_visits[:, block], who)
        work += int(who.sum()) * int(sizes[first:last].sum())
    assert layout.work == work
    np.testing.assert_array_equal(layout.visible_rows, layout.cell_visits @ sizes)
    assert layout.rows == int(counts[visits.any(axis=0)].sum())

    def cost(size: int) -> float:
        starts = np.cumsum(sizes) - sizes
        first_cells = np.flatnonzero(np.diff(starts // size, prepend=-1))
        lasts = np.append(first_cells[1:], len(sizes))
        total = sum(
            int(layout.cell_visits[:, a:b].any(axis=1).sum()) * int(sizes[a:b].sum())
            for a, b in zip(first_cells, lasts, strict=True)
        )
        return total * partitioning.reduced_dim * SCAN_PER_CODE_DIM + len(first_cells) * (
            CELL_BLOCK_FIXED
        )

    chosen = work * partitioning.reduced_dim * SCAN_PER_CODE_DIM + len(bounds) * CELL_BLOCK_FIXED
    assert chosen == pytest.approx(min(cost(size) for size in SCAN_CELL_BLOCKS))


def test_centroid_scores_per_filter_equal_one_shared_product(
    cosine_docs: Collection, monkeypatch: pytest.MonkeyPatch
) -> None:
    import vecdb.engine.batch as batch_module

    queries = make_queries(cosine_docs, 100)
    partitioning = build(cosine_docs, queries, reduced_dim=12)
    shared = dict(run_batch(cosine_docs, queries, partitioning=partitioning))
    monkeypatch.setattr(batch_module, "CENTROID_SCORES_BOUND", 0)  # a product per filter
    alone = dict(run_batch(cosine_docs, queries, partitioning=partitioning))
    for query in queries:
        assert shared[query.query_id].ids == alone[query.query_id].ids


def test_a_scan_kept_for_a_larger_rerank_factor_answers_each_smaller_one_as_its_own_search(
    cosine_docs: Collection,
) -> None:
    # the calibration scans once for several rerank factors that agree on every query's floor
    # and exact threshold (here: floor 512 and exact_rows 500, above any k * 12 with k <= 40)
    from vecdb.engine.batch import CELLS, _Probe, _Reader, workload_key

    queries = make_queries(cosine_docs, 100)
    partitioning = build(cosine_docs, queries, reduced_dim=12)
    reader = _Reader(cosine_docs)
    keys = [workload_key(q.tenant, q.filter) for q in queries]
    distinct = list(dict.fromkeys(keys))
    first = [queries[keys.index(key)] for key in distinct]
    mask_ids = np.asarray([distinct.index(key) for key in keys], dtype=np.int64)
    vectors = np.stack([q.vector for q in queries]).astype(np.float32)
    ks = np.asarray([q.k for q in queries], dtype=np.int64)
    with reader.snapshot() as snap:
        masks = [partitioning.position_mask(reader.mask(snap, q.tenant, q.filter)) for q in first]

        def probe(factor: float) -> _Probe:
            return _Probe(0.05, 512, factor, 500, 0.0, 0.0)

        widest = 12.0
        scan = partitioning._scan(
            snap,
            vectors,
            ks,
            masks,
            partitioning._keep(snap, ks, widest),
            probe=probe(widest),
            mask_ids=mask_ids,
        )
        assert (scan.plans == CELLS).sum() > 50
        answers = {}
        for factor in (1.0, 2.0, 5.0, widest):
            alone = partitioning._search(
                snap, vectors, ks, masks, probe=probe(factor), mask_ids=mask_ids
            )
            scores, rows = partitioning._finish(
                snap, vectors, masks, scan, partitioning._keep(snap, ks, factor)
            )
            np.testing.assert_array_equal(rows, alone[1])
            np.testing.assert_allclose(scores, alone[0], rtol=1e-6)
            np.testing.assert_array_equal(scan.scanned, alone[2])
            np.testing.assert_array_equal(scan.plans, alone[3])
            answers[factor] = rows
        # the factors give different answers, so each one's candidates were cut to its own
        assert not np.array_equal(answers[1.0], answers[widest])
        # finishing leaves the scan as it was, so each factor starts from the same candidates
        again = partitioning._finish(snap, vectors, masks, scan, partitioning._keep(snap, ks, 1.0))
        np.testing.assert_array_equal(
            again[1],
            partitioning._search(snap, vectors, ks, masks, probe=probe(1.0), mask_ids=mask_ids)[1],
        )


def test_candidates_scored_where_they_lie_equal_each_querys_exact_scores(
    collection: Collection,
) -> None:
    from vecdb.engine.batch import _candidate_scores, _exact_scores, _Reader

    rng = np.random.default_rng(2)
    queries = rng.standard_normal((5, collection.dim)).astype(np.float32)
    candidates = rng.integers(0, len(collection), (5, 9)).astype(np.int64)
    candidates[1, 4:] = -1  # padding
    with _Reader(collection).snapshot() as snap:
        in_place = _candidate_scores(snap, queries, candidates)
        for i in range(len(queries)):
            rows = candidates[i][candidates[i] >= 0]
            expected = _exact_scores(snap, queries[i : i + 1], rows)[0]
            np.testing.assert_allclose(in_place[i, : len(rows)], expected, rtol=1e-5, atol=1e-4)
    assert (in_place[1, 4:] == -np.inf).all()


@pytest.mark.parametrize("reduced_dim", [None, 12])
def test_block_scores_equal_the_product_with_the_decoded_codes(
    collection: Collection, reduced_dim: int | None
) -> None:
    partitioning = build(collection, make_queries(collection, 30), reduced_dim=reduced_dim)
    rng = np.random.default_rng(4)
    reduced = partitioning.project_queries(
        rng.standard_normal((6, collection.dim)).astype(np.float32)
    )
    scan = partitioning._scan_queries(reduced)
    positions = np.sort(rng.choice(len(partitioning.order), 70, replace=False)).astype(np.int64)
    scores = partitioning._block_scores(scan, positions)
    assert scores.shape == (6, 70) and scores.flags.c_contiguous
    codes = partitioning.codes[positions].astype(np.float64)
    if partitioning.code_scale is not None:
        # 8-bit codes: scored up to each query's constant q . offset
        decoded = partitioning.code_offset + partitioning.code_scale * codes
        expected = reduced.astype(np.float64) @ decoded.T
        expected -= (reduced.astype(np.float64) @ partitioning.code_offset)[:, None]
    else:
        expected = reduced.astype(np.float64) @ codes.T
    if partitioning.metric.value == "l2":
        expected += partitioning.bias[positions]
    np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-3)
    empty = partitioning._block_scores(scan, positions[:0])
    assert empty.shape == (6, 0)


def test_load_refuses_a_partitioning_of_another_collection(
    cosine_docs: Collection, tmp_path: Path
) -> None:
    partitioning = build(cosine_docs, make_queries(cosine_docs, 30))
    partitioning.save(tmp_path / "part")
    database = Database(tmp_path / "other")
    small = database.create_collection("small", 24, "cosine", SCHEMA)
    small.upsert(["a"], np.ones((1, 24), np.float32))
    with pytest.raises(InvalidArgument, match="covers 3000 rows"):
        Partitioning.load(tmp_path / "part", small)
    other_dim = database.create_collection("wide", 25, "cosine", SCHEMA)
    with pytest.raises(InvalidArgument, match="dim 24"):
        Partitioning.load(tmp_path / "part", other_dim)
    database.close()


def test_rows_written_or_deleted_after_the_build_are_honoured(fresh_docs: Collection) -> None:
    cosine_docs = fresh_docs
    queries = make_queries(cosine_docs, 50)
    partitioning = build(cosine_docs, queries)
    # new points right on top of some queries, and deletes of others' best hits
    cosine_docs.upsert(
        [f"new{i}" for i in range(5)],
        np.stack([queries[i].vector for i in range(5)]),
        [{"color": "red", "year": 2005, "tags": ["t1"]}] * 5,
        [["acme", "globex", "initech"]] * 5,
    )
    gone = exact(cosine_docs, queries[10])[0][:3]
    cosine_docs.delete(gone)
    results = dict(run_batch(cosine_docs, queries, partitioning=partitioning, settings=EXHAUSTIVE))
    assert_same_as_exact(cosine_docs, queries, results)
    for hits in results.values():
        assert not set(gone) & set(hits.ids)


def test_results_stream_and_stopping_cancels(fresh_docs: Collection) -> None:
    cosine_docs = fresh_docs
    queries = make_queries(cosine_docs, 40)
    partitioning = build(cosine_docs, queries)
    stream = run_batch(
        cosine_docs,
        queries,
        partitioning=partitioning,
        settings=BatchSettings(chunk_size=4, exact_rows=50, flat_preference=0.0, keep_order=True),
    )
    first = list(itertools.islice(stream, 4))
    assert [qid for qid, _ in first] == ["q0", "q1", "q2", "q3"]
    # between chunks no lock is held: a writer gets through while the stream is paused
    writer = threading.Thread(
        target=cosine_docs.upsert, args=(["late"], np.ones((1, 24), np.float32))
    )
    writer.start()
    writer.join(timeout=10)
    assert not writer.is_alive()
    stream.close()  # the caller stops: nothing else runs
    with pytest.raises(StopIteration):
        next(stream)


# --- validation and helpers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (BatchQuery("bad-k", np.ones(24, np.float32), 0), "'bad-k': k 0"),
        (BatchQuery("bad-dim", np.ones(23, np.float32), 5), "'bad-dim': vector dimension 23"),
        (
            BatchQuery("bad-nan", np.full(24, np.nan, np.float32), 5),
            "'bad-nan': query vector 1 contains NaN",
        ),
        (BatchQuery("bad-tenant", np.ones(24, np.float32), 5, "no spaces"), "invalid tenant"),
    ],
)
def test_bad_queries_are_refused_naming_the_query(
    cosine_docs: Collection, query: BatchQuery, message: str
) -> None:
    good = BatchQuery("good", np.ones(24, np.float32), 5)
    with pytest.raises(InvalidArgument, match=message):
        list(run_batch(cosine_docs, [good, query]))


def test_an_unknown_attribute_in_a_filter_is_refused(cosine_docs: Collection) -> None:
    query = BatchQuery("q", np.ones(24, np.float32), 5, None, flt.Equals("size", 3))
    with pytest.raises(InvalidArgument, match="unknown attribute 'size'"):
        list(run_batch(cosine_docs, [query]))


def test_shared_predicate_masks_equal_the_collections_own(cosine_docs: Collection) -> None:
    from vecdb.engine.batch import _Reader

    reader = _Reader(cosine_docs)
    atoms: dict[str, np.ndarray] = {}
    red, tag, years = FILTERS[1], FILTERS[4], FILTERS[3]
    assert red is not None and tag is not None and years is not None
    nested = flt.Not(flt.And((flt.Or((red, tag)), flt.Not(years))))
    more = (
        flt.In("tags", ("t1", "t7", "unknown")),
        flt.In("color", ("red", "unknown")),
        flt.In("year", (2003, 2004.0)),
        flt.And((flt.In("color", ("red", "blue")), flt.Equals("color", "red"))),
    )
    with reader.snapshot() as snap:
        for _ in range(2):  # the second round is served from the shared predicates
            for tenant in (None, *TENANTS, "nobody"):
                for filter in (*FILTERS, nested, *more):
                    expected = cosine_docs.candidate_mask(tenant, filter)
                    if expected is None:
                        expected = snap.alive
                    shared = reader.shared_mask(snap, tenant, filter, atoms)
                    np.testing.assert_array_equal(shared, expected)
        with pytest.raises(InvalidArgument, match="needs at least one filter"):
            reader.shared_mask(snap, None, flt.And(()), atoms)


def test_position_masks_equal_the_collections_own_in_storage_order(fresh_docs: Collection) -> None:
    from vecdb.engine.batch import _PositionMaskCache, _Reader

    queries = make_queries(fresh_docs, 30)
    partitioning = build(fresh_docs, queries)
    # rows written and deleted since the build: positions past the stored ones, dead rows out
    fresh_docs.upsert(
        [f"new{i}" for i in range(4)],
        np.ones((4, 24), np.float32),
        [{"color": "red", "year": 2005, "tags": ["t1"]}] * 4,
        [["acme"]] * 4,
    )
    fresh_docs.delete([f"p{i}" for i in range(0, 300, 7)])
    reader = _Reader(fresh_docs)
    cache = _PositionMaskCache(1 << 30, partitioning)
    with reader.snapshot() as snap:
        positions = np.arange(len(partitioning.order) + snap.rows - partitioning.covered_rows)
        rows = partitioning.rows_at(positions)
        expected_rows = np.concatenate(
            [partitioning.order, np.arange(partitioning.covered_rows, snap.rows)]
        )
        np.testing.assert_array_equal(rows, expected_rows)
        for _ in range(2):  # the second round is served from the cache
            for tenant in (None, *TENANTS):
                for filter in FILTERS:
                    key = workload_key(tenant, filter)
                    mask, matching = cache.get(reader, snap, key, tenant, filter)
                    expected = fresh_docs.candidate_mask(tenant, filter)
                    if expected is None:
                        expected = snap.alive
                    np.testing.assert_array_equal(mask, expected[rows])
                    assert matching == int(np.count_nonzero(expected))


@pytest.mark.parametrize("chunk_size", [1, 3, 7, 1024])
def test_planned_chunks_keep_equal_filters_together(chunk_size: int) -> None:
    rng = np.random.default_rng(chunk_size)
    keys = [f"k{int(k)}" for k in rng.zipf(1.5, 300) % 40]
    chunks = plan_chunks(keys, chunk_size, keep_order=False)
    assert sorted(i for chunk in chunks for i in chunk) == list(range(len(keys)))
    assert all(0 < len(chunk) <= chunk_size for chunk in chunks)
    for key in set(keys):
        holding = [c for c, chunk in enumerate(chunks) if any(keys[i] == key for i in chunk)]
        # a key is split only when it does not fit in one chunk
        assert len(holding) <= -(-keys.count(key) // chunk_size) + 1
    in_order = plan_chunks(keys, chunk_size, keep_order=True)
    assert [i for chunk in in_order for i in chunk] == list(range(len(keys)))


def test_an_empty_batch_yields_nothing(cosine_docs: Collection) -> None:
    assert list(run_batch(cosine_docs, [])) == []


def test_equal_filters_share_one_key_and_atoms_are_the_required_conjuncts() -> None:
    first = flt.from_json(
        {"and": [{"field": "year", "gte": 2000}, {"field": "color", "eq": "red"}]}
    )
    second = flt.from_json(
        {"and": [{"field": "year", "gte": 2000}, {"field": "color", "eq": "red"}]}
    )
    assert workload_key("acme", first) == workload_key("acme", second)
    assert workload_key("acme", first) != workload_key(None, first)
    assert atoms_of(first) == [flt.Range("year", gte=2000.0), flt.Equals("color", "red")]
    assert atoms_of(flt.Or((flt.Equals("color", "red"),))) == []
    assert atoms_of(None) == []


@pytest.mark.parametrize("width", [3, 40, 400, 20_000])
@pytest.mark.parametrize("block", [7, 1024])
def test_heap_scan_keeps_each_querys_best_visible_entries(width: int, block: int) -> None:
    from vecdb.engine.batch import _heap_scan

    rng = np.random.default_rng(width)
    keep, lines = 10, 9
    scores = rng.standard_normal((lines, width)).astype(np.float32)
    scores[0] = np.round(scores[0])  # many ties
    visible = rng.random((lines, width)) < 0.7
    visible[1, : width // 2] = False  # half the line hidden
    visible[2] = False  # a query that sees nothing
    queries = np.zeros((lines, 4), np.float32)
    got_scores, got_columns = _heap_scan(
        queries, width, keep, lambda lo, hi: scores[:, lo:hi], visible, block=block
    )
    for line in range(lines):
        seen = np.flatnonzero(visible[line])
        expected = np.sort(scores[line, seen])[::-1][:keep]
        found = got_columns[line][got_columns[line] >= 0]
        assert len(found) == len(expected)
        np.testing.assert_array_equal(got_scores[line][: len(found)], expected)  # best first
        assert visible[line, found].all()  # never an entry the query may not see
        np.testing.assert_array_equal(scores[line, found], expected)  # each with its own score
        assert len(set(found.tolist())) == len(found)
        assert (got_scores[line][len(found) :] == -np.inf).all()


@pytest.mark.parametrize("seed", range(4))
def test_sorted_lines_count_entries_below_a_value_like_a_direct_count(seed: int) -> None:
    from vecdb.engine.batch import _SortedLines

    rng = np.random.default_rng(seed)
    lines, width = 30, 50
    # ascending lines, +inf padded: gaps (fractional, with ties) and cumulative counts
    gaps = np.sort(np.round(rng.random((lines, width)) * 4, 1) - 1.5, axis=1)
    counts = np.cumsum(rng.integers(0, 40, (lines, width)), axis=1).astype(np.float64)
    for values in (gaps, counts):
        padded = values.copy()
        for line, used in enumerate(rng.integers(0, width + 1, lines)):
            padded[line, used:] = np.inf
        sorted_lines = _SortedLines(padded)
        finite = padded[np.isfinite(padded)]
        probes = [-1e9, 1e9, math.inf, *rng.choice(finite, 20), *(rng.random(10) * 6 - 2)]
        for value in probes:
            np.testing.assert_array_equal(
                sorted_lines.count(value),
                np.count_nonzero(padded <= value, axis=1)
                if math.isfinite(value)
                else np.count_nonzero(np.isfinite(padded), axis=1),
            )
            np.testing.assert_array_equal(
                sorted_lines.count(value, strictly=True),
                np.count_nonzero(padded < value, axis=1),
            )
    assert len(_SortedLines(np.zeros((3, 0))).count(1.0)) == 3


def test_locality_order_keeps_near_centroids_near() -> None:
    from vecdb.engine.batch import _locality_order

    rng = np.random.default_rng(3)
    centres = 10 * rng.standard_normal((16, 8))
    cluster = rng.permutation(np.repeat(np.arange(16), 25))
    points = (centres[cluster] + 0.1 * rng.standard_normal((len(cluster), 8))).astype(np.float32)
    order = _locality_order(points)
    assert sorted(order.tolist()) == list(range(len(points)))  # a permutation
    # each cluster ends up in few runs of the order (a shuffle would give about 24 each)
    runs = 1 + np.count_nonzero(np.diff(cluster[order]) != 0)
    assert runs <= 2 * 16
    assert len(_locality_order(points[:3])) == 3
    assert len(_locality_order(points[:0])) == 0


def test_the_collections_plan_is_priced_above_zero_for_any_group(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    from vecdb.engine.batch import _Reader

    database, docs = make_collection(tmp_path_factory.mktemp("priced"), "cosine", count=4_000)
    build_pinned_ivf(docs)
    # the selector plan, narrow and broad filters, whatever the planner would pick here
    docs.planner = replace(docs.planner, force="index+selector")
    reader = _Reader(docs)
    with reader.snapshot() as snap:
        cost = reader.index_cost(snap)
    assert cost is not None
    for matching in (100, 1_000, 3_999):
        alone = cost(matching, 10, 1)
        for queries in (1, 8, 4_096):
            shared = cost(matching, 10, queries)
            # sharing a filter's work between its queries lowers the price, never below zero
            assert 0.0 < shared <= alone
    database.close()
