"""Batch benchmark (issue 5, measure 2): a whole workload of hybrid queries planned at once (HQI).

A workload of 10,000 filtered queries (2,000 with ``--quick``) drawn from a few dozen predicate
templates — equality, range, keyword-list contains, ``in``, and their conjunctions, with
Zipf-skewed template and parameter use — runs against the generated SciFact-like set (1M points,
200k with ``--quick``), whose attributes are correlated with the vectors (derived from topic
membership plus noise), in these ways, all in one run and all single-threaded:

- ``sequential``: each query alone through ``Collection.search`` (the planner picks exact /
  index+selector / post-filter per query) — the baseline;
- ``batch, grouped``: ``run_batch`` without a partitioning: the queries sharing a filter answered
  together through the collection's own plan, each filter evaluated once (identical answers);
- ``batch, partitioned``: ``run_batch`` with a workload-aware partitioning learned from the batch
  (qd-tree + per-leaf IVF): per filter the cheapest of an exact scan, grouped cell scoring, a flat
  scan of reduced codes, or the collection's own plan. The partitioning is built, saved and
  loaded again before the run (a recurring workload reuses it); its build time is reported apart
  and also folded into a second throughput figure. So that the two are compared at equal
  recall, the partitioning is calibrated to the recall the sequential way measured (unless
  ``--recall-target`` is given); the batch's own recall is measured and reported beside it.

The sequential and partitioned ways (the headline ratio) run twice (``--passes``), alternating,
after the others, and each counts at its faster pass: the shared machine's speed drifts by tens
of percent over minutes. Recall@10 of every way is measured against exact search. A breakdown
then shows where the ratio comes from: the queries are banded by how many of the workload's
queries share their filter, and each band's sequential seconds (the counted pass's per-query
times) stand beside a batch of just that band's queries through the same partitioning. Run::

    python benchmarks/batch.py            # 1M points, 10,000 queries
    python benchmarks/batch.py --quick    # 200k points, 2,000 queries

Prints a markdown table, writes ``benchmarks/results/batch.json`` and ``batch.png``. The
collection (with its index) is the one ``benchmarks/filtered.py`` builds and caches under
``benchmarks/.cache/``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from filtered import SOURCES, TAGS, TOPICS, open_collection  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from vecdb.engine import Collection, SearchOptions  # noqa: E402
from vecdb.engine import filters as flt  # noqa: E402
from vecdb.engine.batch import (  # noqa: E402
    BatchQuery,
    BatchSettings,
    Partitioning,
    run_batch,
    workload_key,
)

RESULTS = HERE / "results"
K = 10
# bands of how many of the workload's queries share a query's filter (the breakdown)
SHARE_BANDS: tuple[tuple[int, int | None], ...] = ((1, 1), (2, 5), (6, 20), (21, 100), (101, None))


# --- workload --------------------------------------------------------------------------------


def templates() -> list[Callable[[int], flt.Filter | None]]:
    """Return the predicate templates; each takes a parameter index (drawn Zipf-skewed)."""

    def cat(p: int) -> str:
        return f"cat-{p % TOPICS:02d}"

    def tag(p: int) -> str:
        return f"tag-{p % TAGS:02d}"

    def source(p: int) -> str:
        return SOURCES[p % len(SOURCES)]

    def years(p: int, width: int) -> flt.Range:
        start = 1990 + (p * 3) % 30
        return flt.Range("year", gte=float(start), lt=float(start + width))

    return [
        lambda p: flt.Equals("category", cat(p)),
        lambda p: flt.Equals("category", cat(p + 7)),
        lambda p: flt.Equals("source", source(p)),
        lambda p: years(p, 2),
        lambda p: years(p, 5),
        lambda p: years(p, 12),
        lambda p: flt.Range("year", gte=float(2015 + p % 8)),
        lambda p: flt.Range("year", lt=float(2000 - p % 8)),
        lambda p: flt.Contains("tags", tag(p)),
        lambda p: flt.Contains("tags", tag(p + 11)),
        lambda p: flt.In("category", (cat(p), cat(p + 1), cat(p + 2))),
        lambda p: flt.In("source", (source(p), source(p + 1))),
        lambda p: flt.And((flt.Equals("category", cat(p)), flt.Range("year", gte=2005.0))),
        lambda p: flt.And((flt.Equals("category", cat(p)), years(p, 10))),
        lambda p: flt.And((flt.Contains("tags", tag(p)), flt.Equals("source", source(p)))),
        lambda p: flt.And((flt.Contains("tags", tag(p)), flt.Equals("source", "pubmed"))),
        lambda p: flt.And((years(p, 6), flt.Contains("tags", tag(p + 3)))),
        lambda p: flt.And((flt.Equals("source", source(p)), years(p, 8))),
        lambda p: flt.And((flt.Equals("category", cat(p)), flt.Contains("tags", tag(p)))),
        lambda p: flt.And(
            (flt.Equals("category", cat(p)), years(p, 15), flt.Contains("tags", tag(p)))
        ),
        lambda p: flt.And(
            (flt.In("category", (cat(p), cat(p + 5))), flt.Equals("source", "arxiv"))
        ),
        lambda p: flt.Or((flt.Equals("category", cat(p)), flt.Contains("tags", tag(p + 1)))),
        lambda p: flt.And((flt.Not(flt.Equals("source", "pubmed")), years(p, 10))),
        lambda p: flt.And((flt.Equals("source", "pubmed"), flt.Range("year", gte=2010.0))),
        lambda p: flt.And((flt.Equals("category", cat(p + 3)), flt.Equals("source", source(p)))),
        lambda p: flt.Range("year", gte=float(1995 + p % 20), lte=float(2005 + p % 20)),
        lambda p: flt.Contains("tags", tag(p + 23)),
        lambda p: flt.Equals("category", cat(p + 19)),
        lambda p: flt.And((flt.Contains("tags", tag(p)), flt.Contains("tags", tag(p + 2)))),
        lambda p: flt.And((flt.Equals("category", cat(p)), flt.Range("year", lt=2010.0))),
        lambda p: flt.And((flt.In("source", ("arxiv", "crossref")), flt.Contains("tags", tag(p)))),
        lambda p: None,
    ]


def workload(base: NDArray[np.float32], count: int, seed: int) -> list[BatchQuery]:
    """Return ``count`` queries: perturbed base vectors, Zipf-skewed templates and parameters."""
    rng = np.random.default_rng(seed + 1)
    shapes = templates()
    template_weights = 1.0 / np.arange(1, len(shapes) + 1) ** 1.1
    template_order = rng.permutation(len(shapes))
    chosen = template_order[
        rng.choice(len(shapes), count, p=template_weights / template_weights.sum())
    ]
    parameter_weights = 1.0 / np.arange(1, 25) ** 1.2
    parameters = rng.choice(24, count, p=parameter_weights / parameter_weights.sum())
    vectors = base[rng.integers(0, len(base), count)].astype(np.float64)
    noise = rng.standard_normal(vectors.shape)
    vectors += 0.3 * noise / np.linalg.norm(noise, axis=1, keepdims=True)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return [
        BatchQuery(
            f"q{i}", vectors[i].astype(np.float32), K, None, shapes[chosen[i]](int(parameters[i]))
        )
        for i in range(count)
    ]


# --- measuring -------------------------------------------------------------------------------


def exact_truth(collection: Collection, queries: Sequence[BatchQuery]) -> list[set[str]]:
    """Return each query's exact top-k ids (grouped by filter to share the scans)."""
    groups: dict[str, list[int]] = {}
    for i, query in enumerate(queries):
        key = json.dumps(
            None if query.filter is None else flt.to_json(query.filter), sort_keys=True
        )
        groups.setdefault(key, []).append(i)
    truth: list[set[str]] = [set() for _ in queries]
    for members in groups.values():
        for lo in range(0, len(members), 256):
            part = members[lo : lo + 256]
            hits = collection.search(
                np.stack([queries[i].vector for i in part]),
                K,
                filter=queries[part[0]].filter,
                options=SearchOptions(exact=True),
            )
            for i, found in zip(part, hits, strict=True):
                truth[i] = set(found.ids)
    return truth


def recall(
    results: dict[str, list[str]], queries: Sequence[BatchQuery], truth: list[set[str]]
) -> float:
    """Return mean recall@k of ``results`` against the exact answers."""
    values = [
        len(truth[i] & set(results[q.query_id])) / len(truth[i]) if truth[i] else 1.0
        for i, q in enumerate(queries)
    ]
    return float(np.mean(values))


@dataclass
class Timed:
    """Wall-clock and CPU seconds of one way of running the workload, and what it returned."""

    wall: float
    cpu: float
    ids: dict[str, list[str]]
    plans: Counter[str]
    # wall-clock seconds of each query (the sequential way only)
    each: dict[str, float] = field(default_factory=dict)


def sequential(collection: Collection, queries: Sequence[BatchQuery]) -> Timed:
    """Search each query alone through the collection's single-query path."""
    out: dict[str, list[str]] = {}
    plans: Counter[str] = Counter()
    each: dict[str, float] = {}
    wall, cpu = time.perf_counter(), time.process_time()
    for query in queries:
        started = time.perf_counter()
        (hits,) = collection.search(query.vector, query.k, tenant=query.tenant, filter=query.filter)
        each[query.query_id] = time.perf_counter() - started
        out[query.query_id] = hits.ids
        plans[hits.explain.plan if hits.explain else "?"] += 1
    return Timed(time.perf_counter() - wall, time.process_time() - cpu, out, plans, each)


def batched(
    collection: Collection,
    queries: Sequence[BatchQuery],
    partitioning: Partitioning | None,
    settings: BatchSettings,
) -> Timed:
    """Run the whole batch through ``run_batch``."""
    out: dict[str, list[str]] = {}
    plans: Counter[str] = Counter()
    wall, cpu = time.perf_counter(), time.process_time()
    for query_id, hits in run_batch(
        collection, queries, partitioning=partitioning, settings=settings
    ):
        out[query_id] = hits.ids
        plans[hits.explain.plan if hits.explain else "?"] += 1
    return Timed(time.perf_counter() - wall, time.process_time() - cpu, out, plans)


def by_filter_share(
    collection: Collection,
    queries: Sequence[BatchQuery],
    alone: Timed,
    partitioning: Partitioning,
    settings: BatchSettings,
) -> list[dict[str, object]]:
    """Return, per band of how many of the workload's queries share a query's filter, the
    sequential way's seconds on those queries (its per-query times) beside a batch of just those
    queries through the same partitioning."""
    keys = [workload_key(q.tenant, q.filter) for q in queries]
    sharing = Counter(keys)
    rows: list[dict[str, object]] = []
    for low, high in SHARE_BANDS:
        picked = [
            i
            for i, key in enumerate(keys)
            if sharing[key] >= low and (high is None or sharing[key] <= high)
        ]
        if not picked:
            continue
        members = [queries[i] for i in picked]
        seconds = sum(alone.each[q.query_id] for q in members)
        band = batched(collection, members, partitioning, settings)
        rows.append(
            {
                "queries_per_filter": str(low)
                if low == high
                else (f"{low}+" if high is None else f"{low}-{high}"),
                "queries": len(members),
                "filters": len({keys[i] for i in picked}),
                "sequential_seconds": seconds,
                "batch_seconds": band.wall,
                "speedup": seconds / band.wall,
                "batch_plans": dict(band.plans),
            }
        )
    return rows


def plot(rows: list[dict[str, object]], path: Path, title: str, count: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), sharey=True)
    names = [str(r["way"]) for r in rows][::-1]
    colours = ["#8da0cb", "#66c2a5", "#fc8d62", "#e78ac3"][: len(rows)][::-1]
    for ax, key, label in (
        (axes[0], "seconds", "queries per wall-clock second (log)"),
        (axes[1], "cpu_seconds", "queries per CPU second (log)"),
    ):
        rates = [count / float(r[key]) for r in rows][::-1]  # type: ignore[arg-type]
        bars = ax.barh(names, rates, color=colours)
        for bar, row, rate in zip(bars, rows[::-1], rates, strict=True):
            ax.text(
                bar.get_width(),
                bar.get_y() + bar.get_height() / 2,
                f"  {rate:,.0f}, recall@10 {float(row['recall']):.3f}",  # type: ignore[arg-type]
                va="center",
                fontsize=8,
            )
        ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.set_xlim(right=max(rates) * 30)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="200k points, 2,000 queries")
    parser.add_argument("--size", type=int, default=None)
    parser.add_argument("--queries", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--chunk-size", type=int, default=BatchSettings().chunk_size)
    parser.add_argument("--rebuild", action="store_true", help="rebuild the cached collection")
    parser.add_argument(
        "--recall-target",
        type=float,
        default=None,
        help="recall@10 the partitioning is calibrated for (default: the sequential way's)",
    )
    parser.add_argument(
        "--passes",
        type=int,
        default=2,
        help="passes of the sequential and partitioned ways; each counts at its fastest",
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "batch.json")
    args = parser.parse_args()
    if args.passes < 1:
        parser.error(f"--passes {args.passes} is not allowed: use 1 or more")
    size = args.size or (200_000 if args.quick else 1_000_000)
    count = args.queries or (2_000 if args.quick else 10_000)

    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    prepared = open_collection(size, args.seed, args.rebuild)
    collection, base = prepared.collection, prepared.queries
    queries = workload(base, count, args.seed)
    distinct = len(
        {json.dumps(flt.to_json(q.filter) if q.filter else None, sort_keys=True) for q in queries}
    )
    say(f"{count:,} queries from {len(templates())} templates, {distinct} distinct filters")
    truth = exact_truth(collection, queries)
    matching = [
        int(np.count_nonzero(collection.candidate_mask(None, q.filter)))
        if q.filter is not None
        else len(collection)
        for q in queries[:: max(1, count // 500)]
    ]

    settings = BatchSettings(chunk_size=args.chunk_size)
    # one thread for every way (the machine may be shared and busy): CPU seconds then measure
    # each way's own work, and wall-clock seconds its throughput
    with threadpool_limits(limits=1):
        alone = sequential(collection, queries)
        say(f"sequential: {alone.wall:.1f}s wall, {alone.cpu:.1f}s cpu")
        grouped = batched(collection, queries, None, settings)
        say(f"batch, grouped: {grouped.wall:.1f}s wall, {grouped.cpu:.1f}s cpu")
        # equal recall: the partitioning aims at what the queries reach alone
        target = args.recall_target or round(recall(alone.ids, queries, truth), 3)
        wall, cpu = time.perf_counter(), time.process_time()
        partitioning = Partitioning.build(
            collection, queries, settings=settings, seed=args.seed, recall_target=target
        )
        build = Timed(time.perf_counter() - wall, time.process_time() - cpu, {}, Counter())
        say(
            f"partitioning built in {build.wall:.1f}s wall, {build.cpu:.1f}s cpu: "
            f"{partitioning.leaf_count} leaves, {partitioning.cell_count} cells"
        )
        with tempfile.TemporaryDirectory() as folder:
            started = time.perf_counter()
            partitioning.save(Path(folder) / "partitioning")
            saved = time.perf_counter() - started
            started = time.perf_counter()
            partitioning = Partitioning.load(Path(folder) / "partitioning", collection)
            loaded = time.perf_counter() - started
        say(f"partitioning saved in {saved:.1f}s, loaded in {loaded:.1f}s (reused below)")
        planned = batched(collection, queries, partitioning, settings)
        say(f"batch, partitioned: {planned.wall:.1f}s wall, {planned.cpu:.1f}s cpu")
        # the two ways the headline ratio compares run again, once the rest have run, and each
        # counts at its faster pass: the shared machine's speed drifts by tens of percent
        # over minutes, and a ratio of single passes would mostly measure that drift
        passes: dict[str, list[float]] = {"sequential": [alone.wall], "partitioned": [planned.wall]}
        for _ in range(args.passes - 1):
            again = sequential(collection, queries)
            say(f"sequential again: {again.wall:.1f}s wall, {again.cpu:.1f}s cpu")
            passes["sequential"].append(again.wall)
            alone = min(alone, again, key=lambda timed: timed.wall)
            again = batched(collection, queries, partitioning, settings)
            say(f"batch, partitioned again: {again.wall:.1f}s wall, {again.cpu:.1f}s cpu")
            passes["partitioned"].append(again.wall)
            planned = min(planned, again, key=lambda timed: timed.wall)
        # where the speedup comes from: each filter's work is shared by its queries, so the
        # ratio grows with how many queries share a filter
        shares = by_filter_share(collection, queries, alone, partitioning, settings)

    recalls = {
        name: recall(way.ids, queries, truth)
        for name, way in (("sequential", alone), ("grouped", grouped), ("partitioned", planned))
    }
    with_build = Timed(planned.wall + build.wall, planned.cpu + build.cpu, {}, Counter())
    rows: list[dict[str, object]] = []
    for way, timed, found in (
        ("sequential (Collection.search per query)", alone, recalls["sequential"]),
        ("batch, grouped (no partitioning)", grouped, recalls["grouped"]),
        ("batch, partitioned (HQI)", planned, recalls["partitioned"]),
        ("batch, partitioned incl. build", with_build, recalls["partitioned"]),
    ):
        rows.append(
            {
                "way": way,
                "seconds": timed.wall,
                "cpu_seconds": timed.cpu,
                "qps": count / timed.wall,
                "recall": found,
                "speedup": alone.wall / timed.wall,
                "cpu_speedup": alone.cpu / timed.cpu,
            }
        )

    print(
        f"\n### Batch of {count:,} hybrid queries on {size:,} points (k={K}, one run; "
        f"sequential and partitioned at the faster of {args.passes} passes)\n"
    )
    print("| way | wall s | queries/s | recall@10 | speedup (wall) | cpu s | speedup (cpu) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        print(
            f"| {row['way']} | {row['seconds']:.2f} | {row['qps']:,.0f} | {row['recall']:.4f} | "
            f"{row['speedup']:.1f}x | {row['cpu_seconds']:.2f} | {row['cpu_speedup']:.1f}x |"
        )
    print("\n| queries per filter | filters | queries | sequential s | batch s | speedup |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for share in shares:
        print(
            f"| {share['queries_per_filter']} | {share['filters']} | {share['queries']:,} | "
            f"{share['sequential_seconds']:.2f} | {share['batch_seconds']:.2f} | "
            f"{share['speedup']:.1f}x |"
        )
    print(
        f"\nPartitioning: {partitioning.leaf_count} leaves, {partitioning.cell_count} cells, "
        f"reduced dim {partitioning.reduced_dim}, calibrated recall "
        f"{partitioning.measured_recall}; batch plans {dict(planned.plans)}; sequential plans "
        f"{dict(alone.plans)}."
    )

    result = {
        "batch_speedup_vs_sequential": alone.wall / planned.wall,
        "batch_speedup_vs_sequential_cpu": alone.cpu / planned.cpu,
        "batch_speedup_including_build": alone.wall / with_build.wall,
        "batch_speedup_including_build_cpu": alone.cpu / with_build.cpu,
        "batch_grouped_speedup_vs_sequential": alone.wall / grouped.wall,
        "recall_sequential": recalls["sequential"],
        "recall_batch": recalls["partitioned"],
        "recall_batch_grouped": recalls["grouped"],
        "partitioning_recall_target": target,
        "rows": rows,
        "speedup_by_queries_per_filter": shares,
        "partitioning_build_seconds": build.wall,
        "partitioning_save_seconds": saved,
        "partitioning_load_seconds": loaded,
        "points": size,
        "queries": count,
        "templates": len(templates()),
        "distinct_filters": distinct,
        "median_matching_fraction": float(np.median(matching)) / max(len(collection), 1),
        "batch_plans": dict(planned.plans),
        "batch_grouped_plans": dict(grouped.plans),
        "sequential_plans": dict(alone.plans),
        "chunk_size": args.chunk_size,
        "partitioning": {k: v for k, v in partitioning.describe().items() if k != "leaf_paths"},
        "index": collection.index_info(),
        "protocol": "one run; every way single-threaded (BLAS/OpenMP limited to 1 thread); "
        "the sequential and partitioned ways run --passes times (alternating, after the rest) "
        "and count at their fastest pass, the others once; recall@10 against exact search; "
        "the partitioning calibrated to the sequential way's recall (or --recall-target); "
        "speedups are sequential time / batch time; by queries per filter: the sequential way's "
        "per-query times (its counted pass) summed per band beside one batch of the band's "
        "queries through the same partitioning",
        "wall_seconds_passes": passes,
        "quick": bool(args.quick),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "command": "python benchmarks/batch.py" + (" --quick" if args.quick else ""),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    plot(
        rows,
        args.out.with_suffix(".png"),
        f"{count:,} filtered queries, {size:,} points — {result['command']}",
        count,
    )
    say(f"wrote {args.out} and {args.out.with_suffix('.png')}")
    prepared.database.close()


if __name__ == "__main__":
    main()
