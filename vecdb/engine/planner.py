"""The search planner: per query, pick how to honour a filter / tenant without losing recall.

Plans:

- ``exact``: brute force over the matching rows. Perfect recall; cheap when few rows match.
- ``index+selector``: the approximate index searched with the matching rows as an id selector.
  On an IVF each query probes, in centroid order, only the lists holding matching rows, until it
  has covered as many matching rows as keep the recall the index was tuned for (see
  :mod:`vecdb.engine.ann`); a query still short of ``k`` widens, then falls back to exact.
  From ``FILTER_WIDEN_MIN_SHARE`` of the rows matching, it scans the nearest lists instead,
  widened to cover as many matching rows, with no per-query counting or ranking of lists, where
  the index's calibration found that scan on target (``IndexShape.widen_min_share``).
- ``index+postfilter``: the index searched unfiltered with over-fetch, then non-matching results
  dropped, falling back to the selector plan if fewer than ``k`` remain.
- ``index``: no filter, or one every live row passes: the plain index search.

The choice is a cost model in absolute terms: an estimate of the seconds each plan takes per
query from the rows it scores exactly (times d), the codes it scans in the probed lists (times d'), the
candidates it reranks (times d) and its fixed work per query (projection, centroid ranking, the
selector bitmap, counting the matching rows per list). The constants are calibrated by
measurement on a 2-core x86-64 machine, one thread (numpy + faiss 1.15, 1M 384-d float32 rows):

- exact: gathering a matching row and scoring it cost 0.9-2.6 ns per row-dim (100 to 100k rows;
  more once the gathered rows leave the caches); 1.5 is used;
- IVF scan: 4-bit fast-scan PQ codes (d' = 128) cost 15-18 ns per code scanned within a
  filtered search probing 64-700 lists of about 350 codes (the work per list included; a scan of
  mostly empty lists alone measured 2.4 ns), i.e. 0.12 ns per code-dim; 8-bit scalar codes
  (d' = 96) 14 ns per code, 0.15 ns per code-dim;
- counting the matching rows per list (``bincount`` of their list ids): 3-4.5 ns per row counted;
- rerank: gathering and scoring a candidate from 1M rows, with the top-k and merge around it,
  about 1.1 µs per candidate at d = 384 (3 ns per dim) in the whole search (an isolated gather
  of 120 rows took 0.12 µs per row);
- postfilter over-fetch: 4.2 ns per candidate-dim (each candidate fetched costs a larger heap in
  the scan, then its gather and exact score); priced at the rerank's 3 ns the postfilter looked
  cheaper than the widened selector plan at 50% of the rows matching, where the forced plans of
  ``benchmarks/filtered.py`` (results at e824e7d) ran the selector at 490 queries/s and the
  postfilter at 421;
- fixed work of an index search (projection, probing, rerank, merging): about 0.4 ms per query;
  the selector plan adds about 0.8 ms (ranking every centroid, the selector bitmap, counting),
  its widened form for broad filters only the selector bitmap (about 0.1 ms per 1M rows);
  an exact scan's fixed work is about 50 µs.

The per-query figures came from whole searches on a machine shared with other jobs; they
decide between plans whose costs differ several-fold, which is where the choice matters.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

EXACT = "exact"
INDEX = "index"
INDEX_SELECTOR = "index+selector"
INDEX_POSTFILTER = "index+postfilter"
TENANT_TREE = "tenant-tree"
PLANS = (EXACT, INDEX_SELECTOR, INDEX_POSTFILTER)

# seconds, measured as the module docstring says
EXACT_PER_ROW_DIM = 1.5e-9
EXACT_FIXED = 50e-6
FAST_SCAN_PER_CODE_DIM = 0.12e-9
SCALAR_CODE_PER_CODE_DIM = 0.15e-9
COUNT_PER_ROW = 4.0e-9
# an HNSW search over 8-bit codes, one query per call: 50-54 ns per distance computed at 5k-10k
# rows (d' 32 and 64, efSearch 48-192, graph degree 16), 75-79 ns at 100k rows (the graph walk,
# not the code's dims, is most of it); the index build prices its HNSW candidates with it
HNSW_PER_DISTANCE = 50e-9
RERANK_PER_DIM = 3.0e-9
INDEX_FIXED = 400e-6
SELECTOR_FIXED = 800e-6
# a widened selector search's pass over the filter's mask: packing it into the selector's
# bitmap (with the faiss parameters around it) took 0.08-0.09 ms per query at 1M rows
MASK_PASS_PER_ROW = 0.1e-9
# from this selectivity a filtered IVF search scans the nearest lists widened by the coverage
# exponent instead of ranking the lists holding matches (see vecdb.engine.ann)
FILTER_WIDEN_MIN_SHARE = 0.05
# postfilter over-fetch: this many times the rows expected to hold k matches, plus k
POSTFILTER_OVERFETCH = 1.5
POSTFILTER_PER_CANDIDATE_DIM = 4.2e-9
# a filtered IVF search covers its unfiltered coverage * selectivity ** this many matching rows
# (measured: see vecdb.engine.ann); each IVF index calibrates its own, this is the default for
# one that has not
FILTER_COVERAGE_EXPONENT = 0.5


@dataclass(frozen=True)
class IndexShape:
    """What the cost model needs to know about the index."""

    structure: str  # "ivf" | "hnsw"
    rows: int
    dim: int
    reduced_dim: int
    code_bits: int
    lists: int
    nprobe: int
    ef_search: int
    rerank_factor: int
    # the index's own (calibrated) coverage exponents for filtered IVF searches:
    # (selectivity, exponent) points, see coverage_exponent
    filter_exponents: tuple[tuple[float, float], ...] = ((1.0, FILTER_COVERAGE_EXPONENT),)
    # from this share of the rows matching a filtered IVF search scans the nearest lists widened
    # (FILTER_WIDEN_MIN_SHARE, or never when the index's calibration found the widened scan short
    # of its recall target)
    widen_min_share: float = FILTER_WIDEN_MIN_SHARE


@dataclass(frozen=True)
class PlannerSettings:
    """Knobs of the planner, and the index shape its cost model prices plans with.

    ``force`` pins one plan (benchmarks, debugging). ``index`` is kept up to date by the
    collection whenever its index changes; without it the planner knows no costs and takes the
    selector plan past ``exact_rows``.
    """

    # always exact at or below this many matching rows (no index search is that cheap)
    exact_rows: int = 256
    # how far the selector plan may widen the index's search before falling back to exact
    max_widening: int = 16
    # one of PLANS to pin it whenever an index exists and a filter applies; None: cost-based
    force: str | None = None
    index: IndexShape | None = None


@dataclass(frozen=True)
class Plan:
    """The chosen plan and the estimates behind it (seconds per query for each plan)."""

    name: str
    selectivity: float
    reason: str
    estimates: dict[str, float] | None = None


def coverage_exponent(points: tuple[tuple[float, float], ...], selectivity: float) -> float:
    """Return the coverage exponent at ``selectivity`` from calibrated (selectivity, exponent)
    points (see :func:`by_selectivity`), the default without any."""
    if not points:
        return FILTER_COVERAGE_EXPONENT
    return by_selectivity(points, selectivity)


def by_selectivity(points: tuple[tuple[float, float], ...], selectivity: float) -> float:
    """Return the value at ``selectivity`` of calibrated (selectivity, value) points (at least
    one): linear in log selectivity between them, the nearest one's outside their range."""
    ordered = sorted(points)
    if len(ordered) == 1 or selectivity <= ordered[0][0]:
        return float(ordered[0][1])
    if selectivity >= ordered[-1][0]:
        return float(ordered[-1][1])
    for (low, low_value), (high, high_value) in itertools.pairwise(ordered):
        if selectivity <= high:
            weight = math.log(selectivity / low) / math.log(high / low)
            return float(low_value + weight * (high_value - low_value))
    return float(ordered[-1][1])


def estimate(matching: int, k: int, dim: int, shape: IndexShape) -> dict[str, float]:
    """Return the estimated seconds per query of each plan for ``matching`` allowed rows."""
    rows = max(shape.rows, 1)
    selectivity = min(1.0, max(matching, 1) / rows)
    exact = EXACT_FIXED + matching * dim * EXACT_PER_ROW_DIM
    rerank = k * shape.rerank_factor * dim * RERANK_PER_DIM
    if shape.structure == "ivf":
        per_code = (
            FAST_SCAN_PER_CODE_DIM if shape.code_bits <= 4 else SCALAR_CODE_PER_CODE_DIM
        ) * shape.reduced_dim
        coverage = min(rows, shape.nprobe * rows / max(shape.lists, 1))
        # matching rows to cover; with matches spread evenly, the codes scanned to reach them
        power = coverage_exponent(shape.filter_exponents, selectivity)
        wanted = max(coverage * selectivity**power, k * shape.rerank_factor)
        scanned = min(rows, wanted / selectivity)
        counted = min(matching, 16 * shape.lists)
        if selectivity >= shape.widen_min_share:
            # the nearest lists, as many as cover that many matching rows spread evenly, scanned
            # with the filter as a selector: no ranking of the lists holding matches
            selector = INDEX_FIXED + rows * MASK_PASS_PER_ROW + scanned * per_code + rerank
        else:
            selector = (
                INDEX_FIXED + SELECTOR_FIXED + scanned * per_code + counted * COUNT_PER_ROW + rerank
            )
        unfiltered = INDEX_FIXED + coverage * per_code
    else:
        per_visit = SCALAR_CODE_PER_CODE_DIM * shape.reduced_dim * 32
        ef = shape.ef_search * selectivity**-FILTER_COVERAGE_EXPONENT
        selector = INDEX_FIXED + ef * per_visit / max(selectivity, 1e-6) ** 0.5 + rerank
        unfiltered = INDEX_FIXED + shape.ef_search * per_visit
    fetch = min(rows, math.ceil(k / selectivity * POSTFILTER_OVERFETCH) + k)
    postfilter = unfiltered + fetch * shape.rerank_factor * dim * POSTFILTER_PER_CANDIDATE_DIM
    if shape.structure != "ivf":
        postfilter += fetch * per_visit
    return {EXACT: exact, INDEX_SELECTOR: selector, INDEX_POSTFILTER: postfilter}


def choose(
    matching: int,
    indexed: int,
    k: int,
    *,
    filtered: bool,
    has_index: bool,
    settings: PlannerSettings = PlannerSettings(),
    shape: IndexShape | None = None,
) -> Plan:
    """Return the plan for a query that ``matching`` of ``indexed`` live rows may answer.

    ``shape`` describes the index (default: ``settings.index``).
    """
    shape = shape or settings.index
    selectivity = matching / indexed if indexed else 0.0
    if not has_index:
        return Plan(EXACT, selectivity, "no index built: exact scan")
    if settings.force is not None and filtered:
        return Plan(settings.force, selectivity, f"plan {settings.force} forced by the settings")
    if not filtered or matching >= indexed:
        return Plan(INDEX, selectivity, "every live row allowed: plain index search")
    if matching <= max(settings.exact_rows, k):
        return Plan(
            EXACT,
            selectivity,
            f"{matching} matching rows (<= {max(settings.exact_rows, k)}): exact scan",
        )
    if shape is None:
        return Plan(INDEX_SELECTOR, selectivity, "index search restricted to matching rows")
    costs = estimate(matching, k, shape.dim, shape)
    name = min(costs, key=lambda plan: costs[plan])
    summary = ", ".join(f"{plan} {seconds * 1e3:.3f} ms" for plan, seconds in costs.items())
    return Plan(
        name,
        selectivity,
        f"{matching} matching rows (selectivity {selectivity:.4g}); estimated per query: {summary}",
        costs,
    )
