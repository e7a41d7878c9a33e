"""The multi-tenant index (Curator): recall against exact tenant-scoped search, isolation, updates,
save -> load, padding and validation.

The data are seeded clusters; the tree is made small (fanout 4, depth 3, shortlists of at most 16
rows) so a few thousand rows already exercise deep sub-trees, splits and merges. Recall bounds are
set well below what the structure reaches and far above what a broken one would.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from vecdb.engine import tenancy
from vecdb.engine.tenancy import TenantIndex, default_config

DIM = 24
ROWS = 3_000
TENANTS = tuple(f"tenant-{i}" for i in range(10))
Access = list[tuple[str, ...]]


def clustered(rows: int, seed: int, dim: int = DIM) -> NDArray[np.float32]:
    """Return seeded points around 40 centres (unit-ish scale, not normalised)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((40, dim)) * 2
    points = centres[rng.integers(0, 40, rows)] + rng.standard_normal((rows, dim))
    return points.astype(np.float32)


def zipf_access(rows: int, seed: int) -> Access:
    """Return per-row tenant tuples: Zipf-sized owners, 10% shared with 1-3 more, 3% unowned."""
    rng = np.random.default_rng(seed)
    weights = 1 / np.arange(1, len(TENANTS) + 1)
    weights /= weights.sum()
    owners = rng.choice(len(TENANTS), size=rows, p=weights)
    access: Access = [(TENANTS[o],) for o in owners.tolist()]
    for row in rng.choice(rows, size=rows // 10, replace=False).tolist():
        extra = rng.choice(len(TENANTS), size=int(rng.integers(1, 4)), replace=False)
        access[row] = tuple(dict.fromkeys(access[row] + tuple(TENANTS[e] for e in extra)))
    for row in rng.choice(rows, size=rows // 30, replace=False).tolist():
        access[row] = ()
    return access


def small_tree(
    vectors: NDArray[np.float32],
    access: Sequence[tuple[str, ...]],
    alive: NDArray[np.bool_] | None,
    metric: str,
) -> TenantIndex:
    """Return an index whose tree is small enough for a few thousand rows to fill it."""
    return TenantIndex.build(
        vectors, access, alive, metric=metric, fanout=4, depth=3, shortlist_cap=16, seed=0
    )


def exact(
    queries: NDArray[np.float32],
    vectors: NDArray[np.float32],
    rows: NDArray[np.int64],
    k: int,
    metric: str,
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """Return the exact top-k (scores, rows) among ``rows``: the oracle."""
    block = vectors[rows].astype(np.float64)
    q = queries.astype(np.float64)
    if metric == "l2":
        scores = -((q[:, None, :] - block[None, :, :]) ** 2).sum(axis=2)
    else:
        scores = q @ block.T
        if metric == "cosine":
            scores /= np.linalg.norm(q, axis=1)[:, None] * np.linalg.norm(block, axis=1)[None]
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    best = np.take_along_axis(scores, order, axis=1)
    return (-best if metric == "l2" else best).astype(np.float32), rows[order]


def visible(access: Access, alive: NDArray[np.bool_], tenant: str) -> NDArray[np.int64]:
    return np.asarray([r for r, a in enumerate(access) if alive[r] and tenant in a], dtype=np.int64)


def recall(found: NDArray[np.int64], truth: NDArray[np.int64]) -> float:
    hits = [
        np.intersect1d(f[f >= 0], t[t >= 0]).size / max(1, int(np.count_nonzero(t >= 0)))
        for f, t in zip(found, truth, strict=True)
    ]
    return float(np.mean(hits))


@pytest.fixture(scope="module")
def data() -> tuple[NDArray[np.float32], Access, NDArray[np.bool_], NDArray[np.float32]]:
    vectors = clustered(ROWS, seed=1)
    access = zipf_access(ROWS, seed=2)
    alive = np.ones(ROWS, np.bool_)
    alive[np.random.default_rng(3).choice(ROWS, size=100, replace=False)] = False
    queries = clustered(40, seed=4)
    return vectors, access, alive, queries


@pytest.fixture(params=[False, True], ids=["exact-below-384", "codes-always"])
def rank_codes(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Whether every scan ranks codes: this small matrix fits in cache, so by default tenants of
    up to 384 rows are re-scored exactly without ranking their codes first."""
    if request.param:
        monkeypatch.setattr(tenancy, "_DIRECT_ROWS", 0)
        monkeypatch.setattr(tenancy, "_DIRECT_ROWS_CACHED", 0)
    return bool(request.param)


@pytest.mark.parametrize("metric", ["cosine", "ip", "l2"])
def test_recall_against_exact_tenant_search(
    data: tuple[NDArray[np.float32], Access, NDArray[np.bool_], NDArray[np.float32]],
    metric: str,
    rank_codes: bool,
) -> None:
    vectors, access, alive, queries = data
    index = small_tree(vectors, access, alive, metric)
    index.check_consistency()
    recalls = []
    for tenant in TENANTS:
        rows = visible(access, alive, tenant)
        assert np.array_equal(index.tenant_rows(tenant), rows)
        truth_scores, truth = exact(queries, vectors, rows, 10, metric)
        # a budget of a quarter of the tenant's rows makes the walk choose among its shortlists
        budget = max(48, len(rows) // 4)
        scores, found = index.search(queries, 10, tenant, vectors=vectors, candidates=budget)
        assert np.isin(found[found >= 0], rows).all()
        recalls.append(recall(found, truth))
        # with the default budget this small tenant set is scanned whole: exact up to codes
        scores, found = index.search(queries, 10, tenant, vectors=vectors)
        assert recall(found, truth) >= 0.97
        np.testing.assert_allclose(scores[:, 0], truth_scores[:, 0], rtol=1e-4, atol=1e-4)
    # scanning a quarter of a tenant's rows at random would find about 0.25 of its top 10
    assert float(np.mean(recalls)) >= 0.8
    assert min(recalls) >= 0.7


@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_single_queries_match_the_batch_path(
    data: tuple[NDArray[np.float32], Access, NDArray[np.bool_], NDArray[np.float32]],
    metric: str,
    rank_codes: bool,
) -> None:
    """One query ranks codes with faiss (whole sub-tree in place, or gathered lists in a scratch
    block), a batch with numpy: both must keep the same rows."""
    vectors, access, alive, queries = data
    index = small_tree(vectors, access, alive, metric)
    allowed = np.random.default_rng(5).random(ROWS) < 0.6
    for tenant in TENANTS[:4]:
        for candidates in (None, 40, 300):
            for mask in (None, allowed):
                batch_scores, batch_rows = index.search(
                    queries, 10, tenant, vectors=vectors, allowed=mask, candidates=candidates
                )
                for i in range(len(queries)):
                    scores, rows = index.search(
                        queries[i], 10, tenant, vectors=vectors, allowed=mask, candidates=candidates
                    )
                    assert set(rows[0].tolist()) == set(batch_rows[i].tolist())
                    np.testing.assert_allclose(scores[0], batch_scores[i], rtol=1e-5, atol=1e-4)


def test_concurrent_single_queries_give_the_sequential_answers(
    data: tuple[NDArray[np.float32], Access, NDArray[np.bool_], NDArray[np.float32]],
    rank_codes: bool,
) -> None:
    """Each thread gathers into its own scratch block; the packed codes are only read."""
    vectors, access, alive, queries = data
    index = small_tree(vectors, access, alive, "cosine")
    asks = [(i % len(queries), TENANTS[i % 5], (None, 40, 300)[i % 3]) for i in range(300)]

    def ask(job: tuple[int, str, int | None]) -> list[int]:
        query, tenant, candidates = job
        _, rows = index.search(queries[query], 10, tenant, vectors=vectors, candidates=candidates)
        return sorted(rows[0].tolist())

    expected = [ask(job) for job in asks]
    with ThreadPoolExecutor(max_workers=4) as pool:
        assert list(pool.map(ask, asks)) == expected


def test_a_budget_of_half_a_tenant_scans_it_whole(
    data: tuple[NDArray[np.float32], Access, NDArray[np.bool_], NDArray[np.float32]],
    rank_codes: bool,
) -> None:
    vectors, access, alive, queries = data
    index = small_tree(vectors, access, alive, "ip")
    for tenant in TENANTS[:3]:
        size = len(visible(access, alive, tenant))
        whole = index.search(queries, 10, tenant, vectors=vectors, candidates=size)
        half = index.search(queries, 10, tenant, vectors=vectors, candidates=(size + 1) // 2)
        np.testing.assert_array_equal(half[1], whole[1])
        one = index.search(queries[0], 10, tenant, vectors=vectors, candidates=(size + 1) // 2)
        np.testing.assert_array_equal(one[1][0], whole[1][0])


@pytest.mark.parametrize("flat", [True, False])
def test_ranking_all_lists_and_walking_the_tree_find_the_same_neighbours(
    data: tuple[NDArray[np.float32], Access, NDArray[np.bool_], NDArray[np.float32]],
    flat: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    vectors, access, alive, queries = data
    if not flat:  # as for a tree too large to score every node per query
        monkeypatch.setattr(tenancy, "_FLAT_NODES", 0)
    index = small_tree(vectors, access, alive, "cosine")
    recalls = []
    for tenant in TENANTS:
        rows = visible(access, alive, tenant)
        _, truth = exact(queries, vectors, rows, 10, "cosine")
        budget = max(48, len(rows) // 4)
        _, found = index.search(queries, 10, tenant, vectors=vectors, candidates=budget)
        assert np.isin(found[found >= 0], rows).all()
        recalls.append(recall(found, truth))
        for i in range(0, len(queries), 7):
            _, one = index.search(queries[i], 10, tenant, vectors=vectors, candidates=budget)
            assert set(one[0].tolist()) == set(found[i].tolist())
    # a quarter of each tenant's rows, chosen at random, would hold about 0.25 of its top 10
    assert float(np.mean(recalls)) >= 0.8


def test_searches_see_every_write_since_the_last_search(
    data: tuple[NDArray[np.float32], Access, NDArray[np.bool_], NDArray[np.float32]],
) -> None:
    vectors, access, alive, _ = data
    index = small_tree(vectors, access, alive, "cosine")
    tenant = TENANTS[2]
    rows = visible(access, alive, tenant)
    target = vectors[rows[0]] * 1.0
    for budget in (None, 24):  # the whole tenant in one block, or a few of its lists
        assert (
            index.search(target, 1, tenant, vectors=vectors, candidates=budget)[1][0, 0] == rows[0]
        )
        index.revoke(tenant, rows[:1])
        found = index.search(target, 5, tenant, vectors=vectors, candidates=budget)[1]
        assert rows[0] not in found
        index.grant(tenant, rows[:1])
        assert (
            index.search(target, 1, tenant, vectors=vectors, candidates=budget)[1][0, 0] == rows[0]
        )
    grown = np.vstack([vectors, target[None, :] + 0.01])
    index.insert([ROWS], grown[ROWS:], [(tenant,)])
    found = index.search(target, 2, tenant, vectors=grown)[1]
    assert set(found[0].tolist()) == {rows[0], ROWS}
    index.delete([rows[0], ROWS])
    found = index.search(target, 5, tenant, vectors=grown)[1]
    assert rows[0] not in found and ROWS not in found
    index.check_consistency()


def test_allowed_mask_is_exact_and_complete(
    data: tuple[NDArray[np.float32], Access, NDArray[np.bool_], NDArray[np.float32]],
) -> None:
    vectors, access, alive, queries = data
    index = small_tree(vectors, access, alive, "l2")
    rng = np.random.default_rng(6)
    tenant = TENANTS[0]
    rows = visible(access, alive, tenant)
    # a very selective filter: only 6 of the tenant's rows pass, and the mask is short
    keep = rng.choice(rows, size=6, replace=False)
    allowed = np.zeros(int(keep.max()) + 1, np.bool_)
    allowed[keep] = True
    scores, found = index.search(queries, 10, tenant, vectors=vectors, allowed=allowed)
    for i in range(len(queries)):
        assert set(found[i][found[i] >= 0].tolist()) == set(keep.tolist())  # widened to all
        assert (found[i][6:] == -1).all() and np.isinf(scores[i][6:]).all()
        assert (scores[i][6:] > 0).all()  # l2 pads with +inf
    # a broad filter: results obey it and match exact search over tenant AND filter
    allowed = rng.random(ROWS) < 0.5
    scores, found = index.search(queries, 10, tenant, vectors=vectors, allowed=allowed)
    assert allowed[found[found >= 0]].all()
    _, truth = exact(queries, vectors, rows[allowed[rows]], 10, "l2")
    assert recall(found, truth) >= 0.97


def test_inserts_split_and_searches_keep_recall() -> None:
    vectors = clustered(ROWS, seed=7)
    access = zipf_access(ROWS, seed=8)
    queries = clustered(30, seed=9)
    half = ROWS // 2
    index = small_tree(vectors[:half], access[:half], None, "cosine")
    lists_before = index.describe()["shortlists"]
    for start in range(half, ROWS, 250):  # batches of new rows, as a collection would send
        span = np.arange(start, min(ROWS, start + 250))
        index.insert(span, vectors[span], [access[r] for r in span.tolist()])
        index.check_consistency()
    assert index.describe()["shortlists"] > lists_before  # lists past the cap were split
    alive = np.ones(ROWS, np.bool_)
    recalls = []
    for tenant in TENANTS:
        rows = visible(access, alive, tenant)
        assert np.array_equal(index.tenant_rows(tenant), rows)
        _, truth = exact(queries, vectors, rows, 10, "cosine")
        budget = max(48, len(rows) // 4)
        _, found = index.search(queries, 10, tenant, vectors=vectors, candidates=budget)
        recalls.append(recall(found, truth))
    assert float(np.mean(recalls)) >= 0.8


def test_recall_holds_after_mixed_updates() -> None:
    """Deletes, grants, revokes and inserts in batches, then the walk must still find neighbours."""
    vectors = clustered(ROWS + 600, seed=20)
    access = zipf_access(ROWS + 600, seed=21)
    queries = clustered(30, seed=22)
    index = small_tree(vectors[:ROWS], access[:ROWS], None, "l2")
    model = [set(a) for a in access[:ROWS]]
    rng = np.random.default_rng(23)
    for step in range(12):
        rows = rng.choice(ROWS, size=120, replace=False)
        tenant = TENANTS[int(rng.integers(len(TENANTS)))]
        if step % 4 == 0:
            index.delete(rows)
            for row in rows.tolist():
                model[row] = set()
        elif step % 4 == 1:
            index.grant(tenant, rows)
            for row in rows.tolist():
                if model[row] or row in index:
                    model[row].add(tenant)
        elif step % 4 == 2:
            index.revoke(tenant, rows)
            for row in rows.tolist():
                model[row].discard(tenant)
        else:
            new = np.arange(ROWS + 150 * (step // 4), ROWS + 150 * (step // 4 + 1))
            index.insert(new, vectors[new], [access[r] for r in new.tolist()])
            model.extend(set(access[r]) for r in new.tolist())
    index.check_consistency()
    recalls = []
    for tenant in TENANTS:
        rows = np.asarray([r for r, t in enumerate(model) if tenant in t], dtype=np.int64)
        assert np.array_equal(index.tenant_rows(tenant), rows)
        _, truth = exact(queries, vectors, rows, 10, "l2")
        _, found = index.search(
            queries, 10, tenant, vectors=vectors, candidates=max(48, len(rows) // 4)
        )
        recalls.append(recall(found, truth))
    assert float(np.mean(recalls)) >= 0.8


def test_deletes_merge_and_never_return_deleted_rows(
    data: tuple[NDArray[np.float32], Access, NDArray[np.bool_], NDArray[np.float32]],
) -> None:
    vectors, access, alive, queries = data
    index = small_tree(vectors, access, alive, "ip")
    big = TENANTS[0]
    rows = visible(access, alive, big)
    depth_before = len(index._holders[index._tenant_ids[big]].levels)
    # down to 6 rows, under the merge threshold (half the cap of 16)
    gone = rows[: len(rows) - 6]
    for start in range(0, len(gone), 200):
        index.delete(gone[start : start + 200])
        index.check_consistency()
    left = rows[len(rows) - 6 :]
    assert np.array_equal(index.tenant_rows(big), left)
    holder = index._holders[index._tenant_ids[big]]
    assert depth_before > 1 and len(holder.levels) == 1  # merged back into one root shortlist
    for tenant in TENANTS:
        _, found = index.search(queries, 10, tenant, vectors=vectors)
        assert not np.isin(found, gone).any()
    index.delete([10**9, -5])  # rows that were never here are ignored
    index.delete(gone[:5])  # as are rows deleted already


def test_grants_and_revokes(
    data: tuple[NDArray[np.float32], Access, NDArray[np.bool_], NDArray[np.float32]],
) -> None:
    vectors, access, alive, queries = data
    index = small_tree(vectors, access, alive, "cosine")
    newcomer = "newcomer"
    granted = np.flatnonzero(alive)[::7]
    index.grant(newcomer, granted)
    index.check_consistency()
    assert np.array_equal(index.tenant_rows(newcomer), granted)
    _, truth = exact(queries, vectors, granted, 10, "cosine")
    _, found = index.search(queries, 10, newcomer, vectors=vectors)
    assert recall(found, truth) >= 0.97
    # revoke every tenant of some rows: nobody sees them, yet a later grant still works
    orphans = granted[:20]
    for tenant in (*TENANTS, newcomer):
        index.revoke(tenant, orphans)
    index.check_consistency()
    for tenant in (*TENANTS, newcomer):
        assert not np.isin(index.tenant_rows(tenant), orphans).any()
    index.grant(TENANTS[3], orphans[:5])
    index.check_consistency()
    assert np.isin(orphans[:5], index.tenant_rows(TENANTS[3])).all()
    _, found = index.search(vectors[orphans[:5]], 1, TENANTS[3], vectors=vectors)
    assert np.array_equal(found[:, 0], orphans[:5])  # each finds itself
    assert index.drop_tenant(newcomer) == len(granted) - 20
    assert newcomer not in index.tenants()
    index.grant(TENANTS[0], [ROWS + 50])  # a row not in the index: ignored
    index.revoke("never-seen", granted)  # an unknown tenant: nothing to do


@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_save_then_load_gives_identical_results(
    data: tuple[NDArray[np.float32], Access, NDArray[np.bool_], NDArray[np.float32]],
    metric: str,
    tmp_path: Path,
) -> None:
    vectors, access, alive, queries = data
    index = small_tree(vectors, access, alive, metric)
    index.delete(np.arange(0, 300, 3))
    index.revoke(TENANTS[1], np.arange(ROWS))
    index.grant("late", np.arange(500, 900))
    index.save(tmp_path)
    loaded = TenantIndex.load(tmp_path)
    loaded.check_consistency()
    assert loaded.tenants() == index.tenants()
    assert loaded.memory_bytes() > 0
    for tenant in (*TENANTS, "late"):
        for candidates in (None, 40):
            expected = index.search(queries, 10, tenant, vectors=vectors, candidates=candidates)
            got = loaded.search(queries, 10, tenant, vectors=vectors, candidates=candidates)
            np.testing.assert_array_equal(got[1], expected[1])
            np.testing.assert_array_equal(got[0], expected[0])
    # and the loaded index keeps taking updates
    loaded.insert([ROWS], vectors[:1], [("late",)])
    loaded.check_consistency()
    with pytest.raises(FileExistsError):
        index.save(tmp_path)  # not empty any more


def test_an_index_saved_with_signed_codes_loads_unchanged(
    data: tuple[NDArray[np.float32], Access, NDArray[np.bool_], NDArray[np.float32]],
    tmp_path: Path,
    rank_codes: bool,
) -> None:
    """Earlier saves hold codes as int8 levels -128..127; they load as the same levels 0..255."""
    vectors, access, alive, queries = data
    index = small_tree(vectors, access, alive, "cosine")
    index.save(tmp_path)
    with np.load(tmp_path / "arrays.npz") as saved:
        arrays = {name: saved[name] for name in saved.files}
    assert arrays["list_codes"].dtype == np.uint8
    arrays["list_codes"] = (arrays["list_codes"].astype(np.int16) - 128).astype(np.int8)
    np.savez(tmp_path / "arrays.npz", **arrays)
    loaded = TenantIndex.load(tmp_path)
    loaded.check_consistency()
    for tenant in TENANTS[:4]:
        expected = index.search(queries, 10, tenant, vectors=vectors, candidates=40)
        got = loaded.search(queries, 10, tenant, vectors=vectors, candidates=40)
        np.testing.assert_array_equal(got[1], expected[1])


def test_padding_unknown_tenants_and_small_tenants(
    data: tuple[NDArray[np.float32], Access, NDArray[np.bool_], NDArray[np.float32]],
) -> None:
    vectors, access, alive, queries = data
    index = small_tree(vectors, access, alive, "cosine")
    scores, rows = index.search(queries[:3], 5, "nobody", vectors=vectors)
    assert rows.shape == (3, 5) and (rows == -1).all() and np.isneginf(scores).all()
    assert not alive[4]
    index.grant("tiny", [3, 4, 5, 6])  # row 4 is not in the index: ignored
    scores, rows = index.search(queries[:2], 10, "tiny", vectors=vectors)
    assert set(rows[0][:3].tolist()) == {3, 5, 6} and (rows[:, 3:] == -1).all()
    assert np.isneginf(scores[:, 3:]).all() and np.isfinite(scores[:, :3]).all()
    l2 = small_tree(vectors, access, alive, "l2")
    l2.grant("tiny", [3])
    scores, rows = l2.search(queries[:1], 4, "tiny", vectors=vectors)
    assert rows[0].tolist() == [3, -1, -1, -1] and np.isposinf(scores[0, 1:]).all()
    assert scores[0, 0] == pytest.approx(float(((queries[0] - vectors[3]) ** 2).sum()), rel=1e-4)


def test_the_exact_rerank_takes_any_matrix_layout() -> None:
    """Non-unit cosine rows and a non-contiguous matrix go through numpy instead of faiss."""
    vectors = clustered(1_500, seed=10)
    access = zipf_access(1_500, seed=11)
    queries = clustered(20, seed=12)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    for matrix in (vectors, unit):
        index = small_tree(matrix, access, None, "cosine")
        for tenant in TENANTS[:3]:
            fast = index.search(queries, 10, tenant, vectors=matrix, candidates=50)
            slow = index.search(
                queries, 10, tenant, vectors=np.asfortranarray(matrix), candidates=50
            )
            np.testing.assert_allclose(
                np.sort(fast[0], axis=1), np.sort(slow[0], axis=1), rtol=1e-5
            )
            assert all(
                set(a) == set(b) for a, b in zip(fast[1].tolist(), slow[1].tolist(), strict=True)
            )


def test_bad_arguments_are_refused(
    data: tuple[NDArray[np.float32], Access, NDArray[np.bool_], NDArray[np.float32]],
    tmp_path: Path,
) -> None:
    vectors, access, _, queries = data
    index = small_tree(vectors[:200], access[:200], None, "ip")
    with pytest.raises(ValueError, match="k 0"):
        index.search(queries, 0, TENANTS[0], vectors=vectors)
    with pytest.raises(ValueError, match="expected"):
        index.search(queries[:, :5], 3, TENANTS[0], vectors=vectors)
    with pytest.raises(ValueError, match="vectors must be"):
        index.search(queries, 3, TENANTS[0], vectors=vectors[:, :5])
    with pytest.raises(ValueError, match="candidates"):
        index.search(queries, 3, TENANTS[0], vectors=vectors, candidates=0)
    with pytest.raises(ValueError, match="must match"):
        index.insert([500, 501], vectors[:1], [(), ()])
    with pytest.raises(ValueError, match="twice"):
        index.insert([500, 500], vectors[:2], [(), ()])
    with pytest.raises(ValueError, match="metric"):
        TenantIndex.build(vectors[:10], access[:10], None, metric="hamming")
    with pytest.raises(ValueError, match="tenant"):
        index.grant("", [1])
    (tmp_path / "stray").write_text("x")
    with pytest.raises(FileExistsError):
        index.save(tmp_path)


def test_defaults_follow_the_collection_size() -> None:
    million = default_config(1_000_000, 384)
    assert (million.fanout, million.depth, million.shortlist_cap) == (16, 2, 128)
    assert million.reduced_dim == 96
    assert default_config(5_000, 384).depth == 1
    assert default_config(100, 3).reduced_dim == 3
    assert million.candidates_for(100) == 1_024
    assert million.candidates_for(100_000) == 7_000


def test_memory_grows_with_shared_rows_not_with_vectors() -> None:
    vectors = clustered(2_000, seed=13, dim=64)
    plain: Sequence[tuple[str, ...]] = [(TENANTS[r % 3],) for r in range(2_000)]
    shared = [(*a, TENANTS[5]) for a in plain]
    one = TenantIndex.build(vectors, plain, None, metric="cosine", reduced_dim=16)
    two = TenantIndex.build(vectors, shared, None, metric="cosine", reduced_dim=16)
    assert one.memory_bytes() < vectors.nbytes / 4  # codes, not copies of the vectors
    # a shared row costs a second code and a record of its extra tenant, a few hundred bytes
    assert 0 < two.memory_bytes() - one.memory_bytes() < 300 * 2_000


@pytest.mark.parametrize("width", [3, 24, 96, 97])
def test_the_code_ranker_keeps_the_codes_numpy_ranks_best(width: int) -> None:
    """faiss ranks byte codes in place (a holder's packed block, or a thread's scratch block)."""
    rng = np.random.default_rng(width)
    codes = rng.integers(0, 256, (700, width)).astype(np.uint8)
    probe = rng.standard_normal(width).astype(np.float32)
    expected = np.argsort(-(codes.astype(np.float64) @ probe), kind="stable")[:30]
    in_place = tenancy._CodeRanker(width, codes)
    np.testing.assert_array_equal(in_place.best(probe, 30), expected)
    gathered = tenancy._CodeRanker(width)
    for count in (700, 90, 700):  # the scratch block grows and is reused
        block = gathered.block(count)
        block[:] = codes[:count]
        best = np.argsort(-(codes[:count].astype(np.float64) @ probe), kind="stable")[:30]
        np.testing.assert_array_equal(gathered.best(probe, 30), best)
