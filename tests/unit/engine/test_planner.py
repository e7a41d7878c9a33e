"""The filtered-search planner: its cost model, the selector plan's recall, row selection."""

from __future__ import annotations

import json
import math
import os
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import faiss
import numpy as np
import pytest
from numpy.typing import NDArray

from vecdb.engine import Database, ann, planner
from vecdb.engine import filters as flt
from vecdb.engine.ann import AnnConfig, AnnIndex, exact_search
from vecdb.engine.attributes import AttributeTable
from vecdb.engine.schema import AttributeType

K = 10

SHAPE = planner.IndexShape(
    structure="ivf",
    rows=1_000_000,
    dim=384,
    reduced_dim=128,
    code_bits=4,
    lists=4096,
    nprobe=64,
    ef_search=0,
    rerank_factor=12,
)


def _plan(matching: int, shape: planner.IndexShape = SHAPE) -> planner.Plan:
    return planner.choose(matching, shape.rows, K, filtered=True, has_index=True, shape=shape)


# --- the cost model ------------------------------------------------------------------------------


def test_exact_for_few_rows_selector_in_the_middle_plain_index_for_all() -> None:
    assert _plan(100).name == planner.EXACT
    assert _plan(1_000).name == planner.EXACT
    assert _plan(10_000).name == planner.INDEX_SELECTOR
    assert _plan(100_000).name == planner.INDEX_SELECTOR
    assert _plan(SHAPE.rows).name == planner.INDEX


def test_estimates_are_shown_and_exact_grows_with_the_matching_rows() -> None:
    plan = _plan(50_000)
    assert plan.estimates is not None and set(plan.estimates) == set(planner.PLANS)
    assert "estimated per query" in plan.reason
    small = planner.estimate(1_000, K, 384, SHAPE)
    large = planner.estimate(100_000, K, 384, SHAPE)
    assert large[planner.EXACT] > 50 * small[planner.EXACT]
    # the selector covers fewer matching rows the fewer there are, but scans more codes per match
    assert large[planner.INDEX_POSTFILTER] < small[planner.INDEX_POSTFILTER]


def test_forced_plans_and_the_row_floor() -> None:
    forced = planner.PlannerSettings(force=planner.INDEX_POSTFILTER)
    plan = planner.choose(5, 1000, K, filtered=True, has_index=True, settings=forced)
    assert plan.name == planner.INDEX_POSTFILTER
    plan = planner.choose(5, 1000, K, filtered=False, has_index=True, settings=forced)
    assert plan.name == planner.INDEX  # nothing to force without a filter
    assert planner.choose(200, 10**6, K, filtered=True, has_index=True).name == planner.EXACT
    assert planner.choose(10**5, 10**6, K, filtered=True, has_index=False).name == planner.EXACT


# --- recall of the selector plan on clustered data with a filter that follows the clusters -----


def _clustered(
    rows: int, dim: int, clusters: int, seed: int
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim)) * np.linspace(1.5, 0.3, dim)
    picks = rng.integers(0, clusters, rows)
    points = centres[picks] + 0.45 * rng.standard_normal((rows, dim)) * np.linspace(1.5, 0.3, dim)
    return points.astype(np.float32), picks


@pytest.fixture(scope="module")
def clustered_index() -> tuple[NDArray[np.float32], NDArray[np.int64], AnnIndex]:
    points, picks = _clustered(24_000, 32, 48, seed=3)
    config = AnnConfig(
        reduced_dim=24, structure="ivf", list_count=256, code_bits=8, nprobe=8, rerank_factor=4
    )
    index = AnnIndex.build(points[:20_000], metric="ip", config=config, seed=0)
    return points, picks, index


def _recall(got: NDArray[np.int64], want: NDArray[np.int64]) -> float:
    return float(np.mean([len(set(a) & set(b) - {-1}) / K for a, b in zip(got, want, strict=True)]))


def _masked_truth(
    data: NDArray[np.float32], queries: NDArray[np.float32], allowed: NDArray[np.bool_]
) -> NDArray[np.int64]:
    rows = np.flatnonzero(allowed)
    _, found = exact_search(queries, data[rows], K, "ip")
    truth: NDArray[np.int64] = rows[found]
    return truth


def test_a_count_of_the_allowed_rows_given_by_the_caller_plans_as_the_counted_one(
    clustered_index: tuple[NDArray[np.float32], NDArray[np.int64], AnnIndex],
) -> None:
    points, _, index = clustered_index
    data, queries = points[:20_000], points[20_000:20_100]
    rng = np.random.default_rng(11)
    for share in (0.02, 0.3):  # counted probing, then the widened scan
        allowed = rng.random(20_000) < share
        counted: dict[str, float] = {}
        given: dict[str, float] = {}
        want = index.search(queries, K, vectors=data, allowed=allowed, stats=counted)
        got = index.search(
            queries,
            K,
            vectors=data,
            allowed=allowed,
            stats=given,
            allowed_count=int(np.count_nonzero(allowed)),
        )
        assert np.array_equal(got[1], want[1]) and given == counted
        # the count drives the plan: claiming a broad filter for a selective one widens instead
        claimed: dict[str, float] = {}
        if share < ann.FILTER_WIDEN_MIN_SHARE:
            index.search(
                queries, K, vectors=data, allowed=allowed, stats=claimed, allowed_count=10_000
            )
            assert claimed.get("widened") == 1.0 and "widened" not in counted


def test_a_selective_correlated_filter_keeps_the_recall_of_the_unfiltered_search(
    clustered_index: tuple[NDArray[np.float32], NDArray[np.int64], AnnIndex],
) -> None:
    points, picks, index = clustered_index
    data, queries = points[:20_000], points[20_000:20_200]
    rng = np.random.default_rng(7)
    # 5% of the rows: two whole clusters plus a sprinkle of rows from everywhere
    allowed = np.isin(picks[:20_000], [0, 1]) | (rng.random(20_000) < 0.01)
    _, plain_truth = exact_search(queries, data, K, "ip")
    _, plain = index.search(queries, K, vectors=data)
    truth = _masked_truth(data, queries, allowed)
    _, filtered = index.search(queries, K, vectors=data, allowed=allowed)
    assert filtered[filtered >= 0].size and allowed[filtered[filtered >= 0]].all()
    unfiltered_recall = _recall(plain, plain_truth)
    # the tuned nprobe with the rows as a selector only (widening until k matches) reached 0.50
    # here, twice that nprobe 0.70; probing the lists that hold matches reaches 0.91
    filtered_recall = _recall(filtered, truth)
    assert unfiltered_recall >= 0.95
    assert filtered_recall >= 0.88, (filtered_recall, unfiltered_recall)
    stats: dict[str, float] = {}
    index.search(queries, K, vectors=data, allowed=allowed, stats=stats)
    # it probes only lists that hold matches: far fewer codes than all rows
    assert 0 < stats["codes_scanned"] < 0.8 * len(data)


def test_a_broad_correlated_filter_scans_the_nearest_lists_with_a_selector(
    clustered_index: tuple[NDArray[np.float32], NDArray[np.int64], AnnIndex],
) -> None:
    points, picks, index = clustered_index
    data, queries = points[:20_000], points[20_000:20_200]
    rng = np.random.default_rng(11)
    # about 20% of the rows: ten whole clusters plus a sprinkle of rows from everywhere
    allowed = np.isin(picks[:20_000], np.arange(10)) | (rng.random(20_000) < 0.02)
    assert allowed.mean() >= ann.FILTER_WIDEN_MIN_SHARE
    stats: dict[str, float] = {}
    _, found = index.search(queries, K, vectors=data, allowed=allowed, stats=stats)
    assert stats["widened"] == 1.0
    assert allowed[found[found >= 0]].all()
    assert (found >= 0).all()
    _, plain = index.search(queries, K, vectors=data)
    _, plain_truth = exact_search(queries, data, K, "ip")
    assert (
        _recall(found, _masked_truth(data, queries, allowed)) >= _recall(plain, plain_truth) - 0.03
    )


def test_the_widened_scan_takes_the_exactly_nearest_lists_past_a_graph_quantizers_reach() -> None:
    # a graph quantizer asked for many more lists than its efSearch returns fewer of them, and
    # not the nearest ones; the widened scan ranks the centroids itself
    rng = np.random.default_rng(5)
    centers = rng.standard_normal((64, 32)).astype(np.float32)
    data = (centers[rng.integers(0, 64, 20_000)] + 0.5 * rng.standard_normal((20_000, 32))).astype(
        np.float32
    )
    config = AnnConfig(
        projection="pca",
        reduced_dim=32,
        code_bits=8,
        structure="ivf",
        list_count=512,
        nprobe=8,
        rerank_factor=4,
        index_factory="IVF512_HNSW32,SQ8",
    )
    index = AnnIndex.build(data, "ip", config=config)
    ivf, _, sizes, centroids = index._ivf_lists()
    queries = rng.standard_normal((20, 32)).astype(np.float32)
    width = 256
    _, graph_lists = ivf.quantizer.search(index.projection.project_queries(queries), width)
    assert (graph_lists < 0).any()  # what the graph alone would scan: fewer lists
    allowed = rng.random(20_000) < 0.1
    share = np.count_nonzero(allowed) / len(allowed)
    power = 1.0 + math.log((width - 0.5) / 8) / math.log(
        share
    )  # ceil(nprobe * share ** (power - 1))
    stats: dict[str, float] = {}
    _, found = index._search_ivf_filtered(
        queries, K, data, allowed, None, 8, 4, stats, exponent=power, widen=True
    )
    assert stats["lists_probed"] == width
    nearest = np.argsort(-(index.projection.project_queries(queries) @ centroids.T), axis=1)
    assert stats["codes_scanned"] == pytest.approx(sizes[nearest[:, :width]].sum(axis=1).mean())
    assert allowed[found[found >= 0]].all()
    # unfiltered too (the structure's own search probes the graph's lists): asked for as many
    # candidates as the nearest lists hold, it returns all of them
    held = int(sizes[nearest[:, :width]].sum(axis=1).min())
    plain = index._candidates(index.projection.project_queries(queries), held, width, None)
    codes = faiss.extract_index_ivf(index._structure).invlists
    for q in range(len(queries)):
        expected = np.concatenate(
            [faiss.rev_swig_ptr(codes.get_ids(int(n)), int(sizes[n])) for n in nearest[q, :width]]
        )
        assert np.isin(plain[q][plain[q] >= 0], expected).all()
        assert (plain[q] >= 0).all()


def test_queries_whose_nearest_lists_hold_too_few_matches_probe_the_lists_holding_them(
    clustered_index: tuple[NDArray[np.float32], NDArray[np.int64], AnnIndex],
) -> None:
    points, picks, index = clustered_index
    data = points[:20_000]
    # the matches: twelve whole clusters; the queries: from the other clusters, whose nearest
    # lists hold no match at all
    allowed = np.isin(picks[:20_000], np.arange(12))
    outside = np.flatnonzero(~np.isin(picks[20_000:], np.arange(12)))[:100]
    queries = points[20_000:][outside]
    stats: dict[str, float] = {}
    _, found = index.search(queries, K, vectors=data, allowed=allowed, stats=stats)
    assert stats["widened"] == 1.0 and stats["queries_probing_by_count"] > 0
    assert (found >= 0).all() and allowed[found].all()
    # measured 0.83 (probing the lists holding matches for every query: 0.85; scanning the
    # nearest lists alone for every query: 0.54, a third of the results missing)
    assert _recall(found, _masked_truth(data, queries, allowed)) >= 0.8


def test_a_broad_filter_is_priced_near_the_unfiltered_search() -> None:
    # from the widening share on, no ranking of the lists holding matches: the selector plan
    # beats over-fetching, which reranks k / selectivity times more candidates
    broad = planner.estimate(SHAPE.rows // 2, K, 384, SHAPE)
    assert broad[planner.INDEX_SELECTOR] < broad[planner.INDEX_POSTFILTER]
    assert _plan(SHAPE.rows // 2).name == planner.INDEX_SELECTOR
    narrow = planner.estimate(SHAPE.rows // 100, K, 384, SHAPE)
    assert narrow[planner.INDEX_SELECTOR] > planner.SELECTOR_FIXED


def test_broad_filters_on_a_widely_calibrated_index_still_take_the_widened_scan() -> None:
    # the benchmark index's shape (nprobe 128, rerank 6, exponents 0.7 / 0.6): its forced plans
    # ran the widened selector faster than the postfilter at 50% (benchmarks/filtered.py), which
    # the postfilter priced at the rerank's cost per candidate did not see
    shape = replace(SHAPE, nprobe=128, rerank_factor=6, filter_exponents=((0.01, 0.7), (0.1, 0.6)))
    for share in (0.2, 0.5):
        assert _plan(int(shape.rows * share), shape).name == planner.INDEX_SELECTOR


def test_the_selector_plan_through_a_collection_finds_the_exact_neighbours(
    tmp_path: Path,
) -> None:
    points, picks = _clustered(6_000, 16, 24, seed=5)
    database = Database(tmp_path / "data")
    docs = database.create_collection("docs", 16, "cosine", {"group": "int"})
    docs.upsert(
        [f"p{i}" for i in range(6_000)], points, [{"group": int(g)} for g in picks.tolist()]
    )
    docs.build_index(
        recall_target=0.9,
        config=AnnConfig(reduced_dim=12, structure="ivf", list_count=64, code_bits=8),
    )
    wanted = flt.Range("group", lt=6.0)  # a quarter of the rows, whole clusters
    queries = points[:50]
    exact = docs.search(queries, K, filter=wanted, options=_exact())
    found = docs.search(queries, K, filter=wanted)
    assert {hits.explain.plan for hits in found if hits.explain} <= {
        planner.INDEX_SELECTOR,
        planner.INDEX_POSTFILTER,
        planner.EXACT,
    }
    recall = np.mean([len(set(a.ids) & set(b.ids)) / K for a, b in zip(found, exact, strict=True)])
    assert recall >= 0.9
    for hits in found:
        assert len(hits.ids) == K
        assert all(int(i[1:]) < 6_000 and picks[int(i[1:])] < 6 for i in hits.ids)
    # explain counts the candidates of the rerank the calibration chose for the selectivity
    index = docs.index
    assert index is not None and index.filter_calibration is not None
    index.filter_calibration["rerank_factors"] = {"0.01": 7, "0.1": 7}
    docs.planner = replace(docs.planner, force=planner.INDEX_SELECTOR)
    (hits,) = docs.search(queries[0], K, filter=wanted)
    assert hits.explain is not None and hits.explain.candidates_scored == 7 * K
    database.close()


# --- the coverage exponent each IVF index calibrates for itself -----------------------------------


def test_the_coverage_exponent_is_interpolated_between_calibrated_selectivities() -> None:
    points = ((0.01, 0.4), (0.1, 0.8))
    assert planner.coverage_exponent(points, 0.001) == pytest.approx(0.4)
    assert planner.coverage_exponent(points, 0.01) == pytest.approx(0.4)
    assert planner.coverage_exponent(points, 0.0316227766) == pytest.approx(0.6)
    assert planner.coverage_exponent(points, 0.5) == pytest.approx(0.8)
    assert planner.coverage_exponent((), 0.5) == planner.FILTER_COVERAGE_EXPONENT
    # a larger exponent covers fewer matching rows: the selector plan is estimated cheaper
    cheap = planner.estimate(100_000, K, 384, replace(SHAPE, filter_exponents=((1.0, 0.8),)))
    dear = planner.estimate(100_000, K, 384, replace(SHAPE, filter_exponents=((1.0, 0.3),)))
    assert cheap[planner.INDEX_SELECTOR] < dear[planner.INDEX_SELECTOR]


def test_the_build_calibrates_the_filtered_search_and_keeps_its_recall(
    clustered_index: tuple[NDArray[np.float32], NDArray[np.int64], AnnIndex], tmp_path: Path
) -> None:
    points, _, index = clustered_index
    calibration = index.filter_calibration
    assert calibration is not None and calibration["passed"]
    assert set(calibration["exponents"]) == {"0.01", "0.1"}
    # each selectivity keeps the rerank factor whose passing exponent was modelled cheapest
    tuned = int(index.config.rerank_factor or 1)
    factors = calibration["rerank_factors"]
    assert set(factors) == set(calibration["exponents"])
    for key, factor in factors.items():
        assert factor in {tuned * multiple for multiple in ann.FILTER_CALIBRATION_RERANK}
        modelled = calibration["modelled_seconds"][key]
        assert modelled[f"rerank {factor}"] == min(modelled.values())
        assert index.filter_rerank_factor(float(key)) == factor
    for share, power in index.filter_exponents:
        assert 0.0 < power <= 1.0
        # the chosen exponent passed every synthetic filter of its selectivity, at its factor
        factor = factors[f"{share:g}"]
        label = "" if factor == tuned else f"rerank {factor} "
        if f"{share:g}" in calibration["widened"]:
            label += "widened " if calibration["widened"][f"{share:g}"] else "counted "
        checked = 0
        for name, recalls in calibration["recall"].items():
            if name.endswith(f" {share:g}"):
                assert recalls[f"{label}{power:g}"] >= calibration["recall_goal"]
                checked += 1
        assert checked == 3
        # below a cheaper grid exponent that missed, the exponent halfway to it was tried too
        grid = ann.FILTER_CALIBRATION_EXPONENTS
        tried = {
            float(key.split()[-1])
            for name, recalls in calibration["recall"].items()
            if name.endswith(f" {share:g}")
            for key in recalls
        }
        if power in grid:
            if power != grid[0]:
                assert round((power + grid[grid.index(power) - 1]) / 2, 6) in tried
        else:
            below = max(p for p in grid if p < power)
            assert power == round((below + grid[grid.index(below) - 1]) / 2, 6)
            assert {below, grid[grid.index(below) - 1]} <= tried
    # saved with the index, loaded without measuring again
    index.save(tmp_path)
    loaded = AnnIndex.load(tmp_path)
    assert loaded.filter_calibration == json.loads(json.dumps(calibration))
    assert loaded.filter_exponents == index.filter_exponents
    data = points[:20_000]
    rng = np.random.default_rng(1)
    allowed = rng.random(20_000) < 0.1
    queries = points[20_000:20_050]
    np.testing.assert_array_equal(
        index.search(queries, K, vectors=data, allowed=allowed)[1],
        loaded.search(queries, K, vectors=data, allowed=allowed)[1],
    )


def test_an_exponent_under_calibration_reaches_the_widened_scan_of_a_broad_filter(
    clustered_index: tuple[NDArray[np.float32], NDArray[np.int64], AnnIndex],
) -> None:
    points, _, index = clustered_index
    data = points[:20_000]
    allowed = np.random.default_rng(2).random(20_000) < 0.1
    nprobe = int(index.config.nprobe or 1)
    for power in (0.9, 0.5):
        stats: dict[str, float] = {}
        index._search_ivf_filtered(
            points[20_000:20_010],
            K,
            data,
            allowed,
            None,
            nprobe,
            4,
            stats,
            exponent=power,
            widen=True,
        )
        # the plan a 10% filter gets at search time, widened by the exponent tried
        assert stats["widened"] == 1.0
        lists = int(faiss.extract_index_ivf(index._structure).nlist)
        share = np.count_nonzero(allowed[: index.covered_rows]) / index.covered_rows
        assert stats["lists_probed"] == min(lists, math.ceil(nprobe * share ** (power - 1.0)))


def test_broad_filters_take_counted_probing_where_the_widened_scan_missed_its_target(
    clustered_index: tuple[NDArray[np.float32], NDArray[np.int64], AnnIndex],
) -> None:
    points, _, index = clustered_index
    calibration = index.filter_calibration
    assert calibration is not None and set(calibration["widened"]) == {"0.1"}
    data = points[:20_000]
    allowed = np.random.default_rng(3).random(20_000) < 0.1
    queries = points[20_000:20_010]
    try:
        for widened, expected in ((True, planner.FILTER_WIDEN_MIN_SHARE), (False, math.inf)):
            index.filter_calibration = {**calibration, "widened": {"0.1": widened}}
            assert index.widen_min_share == expected
            stats: dict[str, float] = {}
            index.search(queries, K, vectors=data, allowed=allowed, stats=stats)
            assert ("widened" in stats) == widened
            shape = replace(SHAPE, widen_min_share=index.widen_min_share)
            costs = planner.estimate(100_000, K, 384, shape)
            assert costs[planner.INDEX_SELECTOR] > 0
    finally:
        index.filter_calibration = calibration


@pytest.mark.parametrize("saved_as", ["without a calibration", "calibrated by an older rule"])
def test_an_index_saved_without_a_current_calibration_is_calibrated_once_on_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, saved_as: str
) -> None:
    points, picks = _clustered(6_000, 16, 24, seed=5)
    database = Database(tmp_path / "data")
    docs = database.create_collection("docs", 16, "cosine", {"group": "int"})
    docs.upsert(
        [f"p{i}" for i in range(6_000)], points, [{"group": int(g)} for g in picks.tolist()]
    )
    info = docs.build_index(
        recall_target=0.9,
        config=AnnConfig(reduced_dim=12, structure="ivf", list_count=64, code_bits=8),
    )
    assert info["filter_calibration"] is not None
    # 1% of 6,000 rows is too few to measure: only the 10% filters are calibrated
    assert set(info["filter_coverage_exponents"]) == {"0.1"}
    database.close()
    (saved,) = (tmp_path / "data").rglob(ann.FILTER_FILE)
    if saved_as == "without a calibration":
        saved.unlink()  # saved before indexes calibrated themselves
    else:  # before broad filters were calibrated on the scan they get
        older = json.loads(saved.read_text())
        del older["version"]
        saved.write_text(json.dumps(older))
    database = Database(tmp_path / "data")
    reopened = database.collection("docs").index_info()
    assert reopened["filter_calibration"] is not None
    assert reopened["filter_calibration"]["version"] == ann.FILTER_CALIBRATION_VERSION
    assert "sampled rows" in reopened["filter_calibration"]["source"]
    assert saved.exists()
    database.close()

    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("calibrated again on restart")

    monkeypatch.setattr(AnnIndex, "calibrate_filters", fail)
    database = Database(tmp_path / "data")
    again = database.collection("docs").index_info()
    assert again["filter_coverage_exponents"] == reopened["filter_coverage_exponents"]
    database.close()


def _exact() -> object:
    from vecdb.engine import SearchOptions

    return SearchOptions(exact=True)


# --- rows straight from the attribute indexes ----------------------------------------------------


def _table(values: list[int | None]) -> AttributeTable:
    table = AttributeTable({"level": AttributeType.INT, "tags": AttributeType.KEYWORD_LIST})
    table.grow(len(values))
    rows = np.arange(len(values), dtype=np.int64)
    table.set_rows(
        rows,
        [{} if v is None else {"level": v, "tags": ["odd" if v % 2 else "even"]} for v in values],
    )
    return table


@pytest.mark.parametrize(
    "node",
    [
        flt.Range("level", lt=10.0),
        flt.Range("level", lt=9.5),
        flt.Range("level", gt=4.5, lte=30.0),
        flt.Range("level", gte=-1e300, lt=3.0),
        flt.Range("level", gt=1e300),
        flt.Range("level", lt=float("inf")),
        flt.Equals("level", 7),
        flt.Equals("level", 7.5),
        flt.Contains("tags", "odd"),
        flt.And((flt.Range("level", lt=40.0), flt.Contains("tags", "even"))),
    ],
)
def test_selected_rows_equal_the_evaluated_mask(node: flt.Filter) -> None:
    rng = np.random.default_rng(0)
    values: list[int | None] = [int(v) for v in rng.integers(0, 1000, 2000)]
    values[5] = None
    table = _table(values)
    want = np.flatnonzero(flt.evaluate(node, table, 2000))
    got = flt.select(node, table, 2000, limit=2000)
    assert got is not None
    np.testing.assert_array_equal(got, want)
    # unordered: the same rows, as the index yields them
    loose = flt.select(node, table, 2000, limit=2000, ordered=False)
    assert loose is not None
    np.testing.assert_array_equal(np.sort(loose), want)
    # rows appended after the sorted index was built, and rows cleared since, are honoured
    table.grow(2600)
    more = np.arange(2000, 2600, dtype=np.int64)
    table.set_rows(more, [{"level": int(v), "tags": ["odd"]} for v in rng.integers(0, 50, 600)])
    table.clear_rows(np.asarray(want[:3], dtype=np.int64))
    want = np.flatnonzero(flt.evaluate(node, table, 2600))
    got = flt.select(node, table, 2600, limit=2600)
    assert got is not None
    np.testing.assert_array_equal(got, want)
    loose = flt.select(node, table, 2600, limit=2600, ordered=False)
    assert loose is not None
    np.testing.assert_array_equal(np.sort(loose), want)
    # fewer rows than the index covers: only those rows
    fewer = flt.select(node, table, 1500, limit=2600)
    assert fewer is not None
    np.testing.assert_array_equal(fewer, np.flatnonzero(flt.evaluate(node, table, 1500)))


def test_select_declines_broad_or_unindexed_filters() -> None:
    table = _table(list(range(1000)))
    assert flt.select(flt.Range("level", lt=900.0), table, 1000, limit=100) is None
    assert flt.select(flt.Not(flt.Range("level", lt=9.0)), table, 1000, limit=1000) is None
    assert flt.select(flt.Range("nope", lt=9.0), table, 1000, limit=1000) is None
